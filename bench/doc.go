// Package bench is the benchmark harness behind cmd/pingpong (and the
// nested peers module): it measures message transports between two
// processes on one host, side by side in one run.
//
// A Transport carries fixed-size messages between the parent, which
// measures, and a peer, normally the same binary re-executed (see IsPeer
// and PeerMain). Builtin returns the transports this module has: the ring
// (two SPSC rings, one each way, with the chosen wait strategy), the floor
// (one cache line bounced through shared memory with plain atomics, the
// hardware's limit), a unix-domain socket, pipes, loopback TCP, a Go
// channel, and memcpy as the bandwidth reference.
//
// Two modes: pingpong times round trips, one sample per round trip, with
// the TSC calibrated against CLOCK_MONOTONIC, into an HdrHistogram; stream
// counts one-way messages per second and takes one-way latency from
// CLOCK_MONOTONIC timestamps that the sender writes into the messages.
// Each case has a warm-up. Results are a Report, whose JSON form (schema
// "ringwire.bench/v1") is documented on its types; WriteTable prints the
// table cmd/pingpong shows, with every row's ratio to the floor and to the
// unix socket at the same size, and Plot draws percentile curves.
//
// Program.Main is the whole command line of cmd/pingpong. The package is
// tested without timing assertions: its tests check percentiles, ordering,
// JSON and each transport's correctness in a short run.
//
// This package imports github.com/loov/hrtime, whose init calibrates a
// timer; the library packages (shm, futex, codec, ring) never import it.
package bench
