package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringwire/ringwire/shm"
)

// FloorTransport is the hardware's floor: one 64-byte cache line in a
// shared-memory segment, bounced between the two processes with plain
// atomic loads and stores, no framing, no wait strategy but busy polling.
// The parent writes the first word of the line, the peer the second; each
// polls the other's. A message is its first 8 bytes (the harness puts its
// sequence number there): the rest of the message is not carried, whatever
// the size, so the floor is the same at every size. It runs in pingpong
// mode only.
type FloorTransport struct{}

// Name implements Transport.
func (FloorTransport) Name() string { return "floor" }

// Supports implements Modes: pingpong only.
func (FloorTransport) Supports(m Mode) bool { return m == PingPong }

// floorSilence is how long a side polls without news before it gives up.
const floorSilence = 10 * time.Second

type floorSetup struct {
	seg        *shm.Segment
	removeOnce sync.Once
	removeErr  error
	closeOnce  sync.Once
	closeErr   error
}

func shmOpts(dir string) []shm.Option {
	if dir == "" {
		return nil
	}
	return []shm.Option{shm.Dir(dir)}
}

// Setup implements Transport.
func (FloorTransport) Setup(env Env) (Setup, error) {
	seg, err := shm.Create("", os.Getpagesize(), shmOpts(env.Dir)...)
	if err != nil {
		return nil, err
	}
	return &floorSetup{seg: seg}, nil
}

func (s *floorSetup) Addr() string      { return s.seg.Name() }
func (s *floorSetup) Files() []*os.File { return nil }

func (s *floorSetup) Accept(time.Duration) (Conn, error) {
	return newFloorConn(s.seg.Bytes(), 0)
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
	c, err := newFloorConn(seg.Bytes(), 1)
	if err != nil {
		seg.Close()
		return nil, err
	}
	c.seg = seg
	return c, nil
}

type floorConn struct {
	out, in *atomic.Uint64
	last    uint64
	seg     *shm.Segment // the peer's own attachment, closed with the Conn
	// silence detection, off the fast path
	since     int64
	sinceLast uint64
}

// newFloorConn lays the conn over the line at buf[0:64]: side 0 writes word
// 0 and reads word 1, side 1 the reverse.
func newFloorConn(buf []byte, side int) (*floorConn, error) {
	w0, err := shm.Ptr[atomic.Uint64](buf, 0)
	if err != nil {
		return nil, err
	}
	w1, err := shm.Ptr[atomic.Uint64](buf, 8)
	if err != nil {
		return nil, err
	}
	if side == 0 {
		return &floorConn{out: w0, in: w1}, nil
	}
	return &floorConn{out: w1, in: w0}, nil
}

func (c *floorConn) Send(p []byte) error {
	if len(p) < 8 {
		return fmt.Errorf("%w: floor messages carry 8 bytes, got %d", ErrBadMessage, len(p))
	}
	c.out.Store(binary.LittleEndian.Uint64(p))
	return nil
}

// Recv polls until the peer's word changes. The harness never sends the
// same word twice in a row.
func (c *floorConn) Recv(buf []byte) ([]byte, error) {
	for spins := 0; ; spins++ {
		if v := c.in.Load(); v != c.last {
			c.last = v
			binary.LittleEndian.PutUint64(buf, v)
			return buf, nil
		}
		if spins&(1<<16-1) == 0 && spins > 0 {
			if c.silent() {
				return nil, fmt.Errorf("floor: %w for %v", ErrPeerSilent, floorSilence)
			}
		}
	}
}

// silent is the slow path of Recv's loop: it starts a deadline on its first
// call and reports when it passed; any message resets it.
func (c *floorConn) silent() bool {
	now := Mono()
	if c.since == 0 || c.sinceLast != c.last {
		c.since, c.sinceLast = now, c.last
		return false
	}
	return time.Duration(now-c.since) > floorSilence
}

func (c *floorConn) Close() error {
	if c.seg != nil {
		return c.seg.Close()
	}
	return nil
}
