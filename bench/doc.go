// Package bench is the benchmark harness behind cmd/pingpong (and the
// nested peers module): it measures message transports between two
// processes on one host, side by side in one run.
//
// A Transport carries fixed-size messages between the parent, which
// measures, and a peer, normally the same binary re-executed (see IsPeer
// and PeerMain). Builtin returns the transports this module has: the ring
// (two SPSC rings, one each way, with the chosen wait strategy), the floor
// (the message copied into shared memory, then a sequence word; the least a
// transport can do to move it), the line (one cache line bounced with plain
// atomics, carrying 8 bytes: the interconnect alone), a unix-domain socket,
// pipes, loopback TCP, a Go channel, and memcpy (copy and read back) as the
// bandwidth reference.
//
// Two modes: pingpong times round trips, one sample per round trip, with
// the TSC calibrated against CLOCK_MONOTONIC, into an HdrHistogram; stream
// counts one-way messages per second and takes one-way latency from
// CLOCK_MONOTONIC timestamps that the sender writes into the messages. In
// both, the receiver reads every byte of every message and checks it
// against what the sender put there (see pattern): in pingpong inside the
// timed round trip.
//
// The transports of one size run side by side in interleaved rounds
// (RunSize): every case stays open, and each round runs each case once,
// briefly, while the other cases' peers wait blocked. Ratios to the
// references are computed round by round and reported as their median and
// spread, so that a change of the machine's speed between rounds cancels.
// Results are a Report, whose JSON form (schema "ringwire.bench/v2") is
// documented on its types; WriteTable prints the table cmd/pingpong shows,
// and Plot draws percentile curves.
//
// Program.Main is the whole command line of cmd/pingpong. The package is
// tested without timing assertions: its tests check percentiles, ordering,
// JSON and each transport's correctness in a short run.
//
// This package imports github.com/loov/hrtime, whose init calibrates a
// timer; the library packages (shm, futex, codec, ring) never import it.
package bench
