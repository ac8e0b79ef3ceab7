package bench

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// Errors returned by the harness. They are wrapped with context, so test for
// them with errors.Is.
var (
	// ErrUnsupported: the transport cannot run in this mode (the floor and
	// the line are round-trip references, memcpy a bandwidth one).
	ErrUnsupported = errors.New("bench: transport does not support this mode")
	// ErrUnknownTransport: no transport of that name is registered.
	ErrUnknownTransport = errors.New("bench: unknown transport")
	// ErrTooLarge: the message size exceeds what the transport carries.
	ErrTooLarge = errors.New("bench: message too large for the transport")
	// ErrBadMessage: a message came back with the wrong length or content.
	ErrBadMessage = errors.New("bench: bad message")
	// ErrPeerSilent: the peer stopped answering (the floor and the line
	// have no other way to notice a dead peer).
	ErrPeerSilent = errors.New("bench: peer silent")
)

// Env is what a transport needs to know to set up one case.
type Env struct {
	// Dir is the directory for segments and socket files; "" means the
	// transport's default (/dev/shm for segments).
	Dir string
	// Mode is the benchmark mode: the direction of traffic.
	Mode Mode
	// Size is the message size in bytes: every message has exactly it.
	Size int
	// Capacity is the ring's data region (ring transport only).
	Capacity int
	// Wait is the ring's wait strategy: spin, yield, block or adaptive.
	Wait string
	// ZeroCopy makes the ring's receiver read in place (Peek/Release)
	// rather than copy out (RecvAppend).
	ZeroCopy bool
}

// A Transport carries fixed-size messages between two ends: the parent
// (this process, which measures) and the peer (normally a second process,
// the same binary re-executed).
//
// A transport is set up in three steps: Setup in the parent makes the
// resources (segments, sockets) and says how to reach them; Attach in the
// peer connects to them; Setup.Accept in the parent returns its end.
// Nothing the transport leaves on the system may outlive Setup.Close, and
// Setup.Remove must remove names without disturbing ends still in use (it
// runs from a signal handler while the benchmark loop may be running).
type Transport interface {
	// Name is the transport's name in -transport and in results.
	Name() string
	// Setup prepares the parent's side for one case.
	Setup(env Env) (Setup, error)
	// Attach makes the peer's end from what Setup published: its Addr,
	// and its Files, which the peer receives as open files in the same
	// order.
	Attach(env Env, addr string, files []*os.File) (Conn, error)
}

// InProcess is implemented by transports whose two ends live in one process
// (the Go channel): the harness runs the peer as a goroutine, not a process.
type InProcess interface {
	InProcess() bool
}

// Setup is the parent's side of one case.
type Setup interface {
	// Addr tells the peer where to attach (segment names, an address).
	Addr() string
	// Files are handed to the peer process, in order.
	Files() []*os.File
	// Accept returns the parent's end once the peer has been started.
	// It gives up after timeout.
	Accept(timeout time.Duration) (Conn, error)
	// Remove removes every name the setup made (segments, socket files)
	// without closing anything in use. It is safe to call concurrently
	// with the ends, and more than once.
	Remove() error
	// Close releases everything, Remove included. It is safe to call more
	// than once.
	Close() error
}

// Conn is one end of a transport. It is used by one goroutine.
type Conn interface {
	// Send sends p as one message. The transport may not keep p.
	Send(p []byte) error
	// Recv returns the next message. buf, of the message size, may serve
	// as its storage; the returned slice is valid until the next Recv or
	// Close. A zero-copy transport returns memory it owns.
	Recv(buf []byte) ([]byte, error)
	// Close releases the end.
	Close() error
}

// WordOnly is implemented by references that carry only a message's first
// 8 bytes (the line): the harness then checks that word and not the rest.
type WordOnly interface {
	WordOnly() bool
}

// SelfTimed is implemented by references that are not transports between
// two ends but measure themselves in-process (memcpy). Measure runs one
// round: c.N messages or c.Duration after c.Warmup.
type SelfTimed interface {
	Measure(c Case, progress *Progress) (Result, error)
}

// Modes reports the modes a transport runs in; transports that do not
// implement it run in every mode.
type Modes interface {
	Supports(m Mode) bool
}

// Mode is the benchmark's traffic pattern.
type Mode string

// The modes.
const (
	// PingPong: the parent sends a message, the peer sends it back; the
	// round trip is timed in the parent.
	PingPong Mode = "pingpong"
	// Stream: the peer sends messages one way as fast as the transport
	// takes them; the parent counts them and times one-way latency from
	// CLOCK_MONOTONIC timestamps carried in them.
	Stream Mode = "stream"
)

// ParseMode reads a mode name.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case PingPong, Stream:
		return Mode(s), nil
	}
	return "", fmt.Errorf("unknown mode %q (want pingpong or stream)", s)
}

// Builtin returns the transports of this module: ring, floor, line, uds,
// pipe, tcp, chan and memcpy. shmipc lives in the nested module peers/.
func Builtin() []Transport {
	return []Transport{
		RingTransport{},
		FloorTransport{},
		LineTransport{},
		fdTransport{name: "uds"},
		fdTransport{name: "pipe"},
		fdTransport{name: "tcp"},
		ChanTransport{},
		MemcpyReference{},
	}
}

// Lookup finds a transport by name.
func Lookup(ts []Transport, name string) (Transport, error) {
	for _, t := range ts {
		if t.Name() == name {
			return t, nil
		}
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownTransport, name)
}

func supports(t Transport, m Mode) bool {
	if s, ok := t.(Modes); ok {
		return s.Supports(m)
	}
	return true
}
