// Command pingpong measures ringwire's ring between two processes, side by
// side with the physical limit and the usual transports: the floor (the
// message copied into shared memory, then a sequence word, read in place),
// the line (one cache line carrying 8 bytes), a unix-domain socket, pipes,
// loopback TCP, a Go channel, and cloudwego/shmipc-go.
//
// With no flags it runs, in some 20 seconds, round trips of 8 B, 64 B, 1 KiB
// and 64 KiB messages over the ring (default wait strategy), the floor, the
// line and a unix socket, in 20 interleaved rounds of 50 ms per transport,
// and prints one table: percentiles of the round trip, round trips per
// second, and each row's ratio to the floor, the line and the socket, as
// the median over the rounds of the per-round ratio, with its quartiles.
//
//	go run ./cmd/pingpong
//	go run ./cmd/pingpong -pin -wait spin -size 64
//	go run ./cmd/pingpong -mode stream -pin
//	go run ./cmd/pingpong -gap 1ms -transport ring,uds -size 64
//	go run ./cmd/pingpong -rounds 40 -round 25ms -size 64
//	go run ./cmd/pingpong -transport ring,floor,line,uds,pipe,tcp,chan,shmipc -plot rtt.svg
//
// It starts its peer itself, by re-executing its own binary. Its rings are
// created under unique names, and removed at the end and on SIGINT or
// SIGTERM.
//
// The shmipc transport lives in the nested module peers/ (so the library's
// go.mod never lists shmipc-go): a run that asks for it builds peers/ with
// the go command and hands the whole run over to that binary, which runs
// every transport, ring included, side by side. pingpong finds peers/ in
// the ringwire checkout that holds the working directory, or beside its own
// source; set RINGWIRE_PEERS_DIR to point elsewhere.
//
// The JSON schema (-json) is documented in package bench (type Report) and
// in docs/BENCHMARKS.md.
package main

import (
	"io"
	"os"

	"github.com/ringwire/ringwire/bench"
)

func main() {
	if bench.IsPeer() {
		os.Exit(bench.PeerMain(bench.Builtin()))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	p := &bench.Program{
		Name:       "pingpong",
		Transports: bench.Builtin(),
		Externals:  map[string]bench.External{"shmipc": runPeers},
	}
	return p.Main(args, stdout, stderr)
}
