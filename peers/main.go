// Command peers is pingpong with the peers that need modules of their own:
// cloudwego/shmipc-go v0.2.0. It lives in a nested module so that ringwire's
// own go.mod never lists them, and pingpong builds and runs it when asked
// for -transport shmipc. It takes pingpong's flags and runs every transport,
// ringwire's ring included, so that all are measured side by side in one
// run:
//
//	cd peers && go run . -transport ring,floor,uds,shmipc
package main

import (
	"os"

	"github.com/ringwire/ringwire/bench"
)

func transports() []bench.Transport {
	return append(bench.Builtin(), shmipcTransport{})
}

func main() {
	if bench.IsPeer() {
		os.Exit(bench.PeerMain(transports()))
	}
	p := &bench.Program{Name: "pingpong", Transports: transports()}
	os.Exit(p.Main(os.Args[1:], os.Stdout, os.Stderr))
}
