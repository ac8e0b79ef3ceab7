// Package ring moves framed messages between processes on one host
// through a lock-free ring in a named shared-memory segment.
//
// # Quick start
//
// One process creates the ring and owns it; others attach by name:
//
//	r, err := ring.Create("orders", ring.Options{Capacity: 1 << 20})
//	p, err := r.Producer()
//	err = p.Send([]byte("buy 10"))
//
//	c, err := ring.OpenConsumer("orders", ring.AttachOptions{}) // another process
//	msg, err := c.Recv() // io.EOF after the producer's Close and the last message
//
// # Modes
//
// An SPSC ring (the default) carries one producer and one consumer. An
// MPSC ring (Options.Mode = MPSC) carries up to Options.Slots producers,
// in any processes, and one consumer; each producer's messages arrive in
// the order it sent them. A Producer or Consumer is not safe for
// concurrent use: give each goroutine its own Producer.
//
// # Sending and receiving
//
// Producers: Send (waits while the ring is full), TrySend (ErrFull instead
// of waiting), SendContext, SendBatch, and zero-copy Reserve and Commit.
// Consumers: Recv (a copy), RecvAppend (into a caller's buffer), and
// zero-copy Peek and Release, each with a Try and a Context form. Every
// message arrives once, in order, byte for byte; zero-length messages are
// legal; a message larger than MaxMessage is ErrTooLarge and nothing is
// written. The hot paths allocate nothing.
//
// # Waiting
//
// Each side waits as its Wait says: Spin, Yield, Block (a futex), or the
// default Adaptive (spin, then yield, then park). A side wakes its peer
// with a futex system call only when the peer announced that it parked,
// so nothing makes a system call per message while messages flow. Every
// wait checks the peer's liveness each Wait.PeerCheck, so a dead peer
// gives ErrPeerDead rather than a hang; contexts end waits at once.
//
// # Lifecycle and crashes
//
// The process that calls Create owns the segment. Close never removes it,
// and neither does a process's exit: only Unlink, by the owner or by a
// tool that proved the owner dead (cmd/ringctl gc). Roles are held through
// open-file-description locks that the kernel drops when a process dies,
// so a second claimant gets ErrBusy only while the holder lives, and a
// waiting peer learns of a death (ErrPeerDead) without trusting PIDs.
// A producer's Close lets the consumer drain and then get io.EOF; a
// consumer's Close makes producers' sends fail with ErrClosed at once.
// In MPSC, the record of a producer that died before committing is skipped
// at once, and that of a live producer that stalls longer than
// Wait.Unblock is skipped and its late commit fails with ErrSkipped;
// committed messages are never lost, and a consumer that takes over after
// a crash delivers again only what the dead one had not released.
//
// # Trust
//
// Everything read from the segment was written by another process that may
// be buggy, dead or hostile. Open validates the header (ErrForeign,
// ErrVersion, ErrTruncated, ErrNotReady, ErrCorrupt), and the consumer
// validates every record before use: a bad ring gives ErrCorrupt with the
// position, never a panic, a read outside the segment or an endless loop.
//
// The segment's layout is a cross-language contract, the same on every
// GOARCH: see layout.go and docs/LAYOUT.md; docs/DESIGN.md explains the
// design and the delivery guarantee.
package ring
