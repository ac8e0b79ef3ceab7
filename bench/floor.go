package bench

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringwire/ringwire/shm"
)

// FloorTransport is the least a transport can do to move a message between
// two processes: the sender copies the message into shared memory, then
// stores a sequence word; the receiver busy-polls the word, then reads the
// message in place (the harness reads every byte of what Recv returns). No
// framing, no queue, no wait strategy: one slot per direction in a
// shared-memory segment, each a sequence word followed by the message, at
// the start of a cache line, so a message of up to 56 bytes travels with
// its signal in one line (64 bytes take two, as a ring record's header and
// payload do). A transport's ratio to the floor at a size is its distance
// from the physical limit at that size; LineTransport is the bare signal.
// It runs in pingpong mode only.
type FloorTransport struct{}

// Name implements Transport.
func (FloorTransport) Name() string { return "floor" }

// Supports implements Modes: pingpong only.
func (FloorTransport) Supports(m Mode) bool { return m == PingPong }

// floorStride is the distance between the two slots for a message size:
// word and message rounded up to whole pairs of cache lines, so the slots
// never share a line or an adjacent-line prefetch.
func floorStride(size int) int { return (8 + size + 127) &^ 127 }

func shmOpts(dir string) []shm.Option {
	if dir == "" {
		return nil
	}
	return []shm.Option{shm.Dir(dir)}
}

type floorSetup struct {
	seg        *shm.Segment
	size       int
	removeOnce sync.Once
	removeErr  error
	closeOnce  sync.Once
	closeErr   error
}

// Setup implements Transport.
func (FloorTransport) Setup(env Env) (Setup, error) {
	seg, err := shm.Create("", 2*floorStride(env.Size), shmOpts(env.Dir)...)
	if err != nil {
		return nil, err
	}
	return &floorSetup{seg: seg, size: env.Size}, nil
}

func (s *floorSetup) Addr() string      { return s.seg.Name() }
func (s *floorSetup) Files() []*os.File { return nil }

func (s *floorSetup) Accept(time.Duration) (Conn, error) {
	return newFloorConn(s.seg.Bytes(), s.size, 0)
}

func (s *floorSetup) Remove() error {
	s.removeOnce.Do(func() { s.removeErr = s.seg.Unlink() })
	return s.removeErr
}

func (s *floorSetup) Close() error {
	s.closeOnce.Do(func() { s.closeErr = errors.Join(s.Remove(), s.seg.Close()) })
	return s.closeErr
}

// Attach implements Transport.
func (FloorTransport) Attach(env Env, addr string, _ []*os.File) (Conn, error) {
	seg, err := shm.Open(addr, shmOpts(env.Dir)...)
	if err != nil {
		return nil, err
	}
	c, err := newFloorConn(seg.Bytes(), env.Size, 1)
	if err != nil {
		seg.Close()
		return nil, err
	}
	c.seg = seg
	return c, nil
}

type floorConn struct {
	out, in       *atomic.Uint64
	outMsg, inMsg []byte
	sent, last    uint64
	seg           *shm.Segment // the peer's own attachment, closed with the Conn
}

// newFloorConn lays the conn over buf: slot 0 carries the parent's
// messages, slot 1 the peer's; side 0 (the parent) writes slot 0 and reads
// slot 1, side 1 the reverse.
func newFloorConn(buf []byte, size, side int) (*floorConn, error) {
	stride := floorStride(size)
	if len(buf) < 2*stride {
		return nil, fmt.Errorf("floor: segment of %d bytes, want %d", len(buf), 2*stride)
	}
	var words [2]*atomic.Uint64
	var msgs [2][]byte
	for i := range words {
		w, err := shm.Ptr[atomic.Uint64](buf, i*stride)
		if err != nil {
			return nil, err
		}
		words[i], msgs[i] = w, buf[i*stride+8:i*stride+8+size:i*stride+8+size]
	}
	c := &floorConn{out: words[side], outMsg: msgs[side], in: words[1-side], inMsg: msgs[1-side]}
	c.last = c.in.Load()
	c.sent = c.out.Load()
	return c, nil
}

// Send copies p into this side's slot, then publishes it by storing the next
// sequence number.
func (c *floorConn) Send(p []byte) error {
	if len(p) != len(c.outMsg) {
		return fmt.Errorf("%w: floor carries %d-byte messages, got %d", ErrBadMessage, len(c.outMsg), len(p))
	}
	copy(c.outMsg, p)
	c.sent++
	c.out.Store(c.sent)
	return nil
}

// Recv polls the peer's sequence word until it changes, then returns the
// peer's slot in place: valid until this side's next Send, after which the
// peer may write it again.
func (c *floorConn) Recv([]byte) ([]byte, error) {
	var quiet silence
	for spins := 0; ; spins++ {
		if v := c.in.Load(); v != c.last {
			c.last = v
			return c.inMsg, nil
		}
		if spins&(1<<16-1) == 0 && spins > 0 && quiet.silent(c.last) {
			return nil, fmt.Errorf("floor: %w for %v", ErrPeerSilent, pollSilence)
		}
	}
}

func (c *floorConn) Close() error {
	if c.seg != nil {
		return c.seg.Close()
	}
	return nil
}

// silence is the slow path of a busy-polling Recv, one per call: it starts
// a deadline on its first check and reports when it passed.
type silence struct {
	since int64
	word  uint64
}

func (s *silence) silent(word uint64) bool {
	now := Mono()
	if s.since == 0 || s.word != word {
		s.since, s.word = now, word
		return false
	}
	return time.Duration(now-s.since) > pollSilence
}
