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
// A ring is a set of lanes, each an SPSC ring with one writer. An SPSC
// ring (the default) is one lane: one producer, one consumer. An MPSC ring
// (Options.Mode = MPSC) has Options.Slots lanes (16 by default) of
// Options.Capacity bytes each: up to that many producers, in any
// processes, each on a lane of its own, and one consumer that serves the
// lanes round-robin. Each producer's messages arrive in the order it sent
// them; there is no order between producers.
//
// A Producer or Consumer is used by one goroutine at a time: give each
// goroutine its own Producer. Close is the exception: it may be called
// from any goroutine, and makes a call blocked in the handle return
// ErrClosed, as net.Conn's Close does for a Read. Ring.Close does the same
// for every role taken from the Ring, and the segment is unmapped only
// after the last call using it has returned.
//
// # Sending and receiving
//
// Every call that may wait comes in three forms: the plain one waits as
// the side's Wait strategy says, the Context form gives up when its
// context ends, and the Try form returns ErrFull or ErrEmpty instead of
// waiting. (Drain and Next take a context; a nil one means the Try form.)
//
// Producers: Send, SendContext, TrySend; SendBatch (a context, several
// messages); zero-copy Reserve, ReserveContext, TryReserve, then Commit,
// or Abort to give the room back unseen.
//
// Consumers: Recv (a copy), RecvAppend (into a caller's buffer), Peek then
// Release (in place, one message), Drain (in place, a batch, heads stored
// once), each with its Context and Try forms; and read-ahead: Next
// returns a Message in place with its MessageID (the ring's instance, the
// lane, the position) without releasing it, successive calls reading
// further, and ReleaseThrough(id) releases a lane's messages up to id. The
// MessageID is stable across consumers: a consumer that takes over after
// a crash delivers an unreleased message again with the same id, which
// lets a forwarder deduplicate downstream.
//
// Every message arrives once, in order per producer, byte for byte;
// zero-length messages are legal; a message larger than MaxMessage is
// ErrTooLarge and nothing is written. ErrPending means one thing: a call
// out of order (Commit without Reserve, Recv while a Peek or messages read
// ahead are unreleased, ReleaseThrough of a message already released). The
// hot paths allocate nothing.
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
// A Poller waits on many consumers at once, with no goroutine per ring:
// it polls them all, then parks in one futex_waitv system call over their
// rings (Linux 5.16 and later; see Poller for more than 128 rings and for
// the fallback), and returns the consumers that have a message, reached
// their end, or lost their producer. WaitChan offers the same wait as a
// channel for select loops.
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
// In MPSC each producer writes its own lane, so a producer that dies or
// stalls holds up nothing but its own lane; committed messages are never
// lost, and a consumer that takes over after a crash delivers again only
// what the dead one had not released.
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
