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

// LineTransport is the bare cache line: one 64-byte line in a shared-memory
// segment, bounced between the two processes with plain atomic loads and
// stores, no framing, no wait strategy but busy polling. The parent writes
// the first word of the line, the peer the second; each polls the other's.
// A message is its first 8 bytes (the harness puts its sequence number
// there): the rest of the message is not carried, whatever the size, so
// the line is the same at every size: the latency of the interconnect
// alone. FloorTransport is the same signal carrying the whole message. It
// runs in pingpong mode only.
type LineTransport struct{}

// Name implements Transport.
func (LineTransport) Name() string { return "line" }

// Supports implements Modes: pingpong only.
func (LineTransport) Supports(m Mode) bool { return m == PingPong }

// WordOnly implements WordOnly: the line carries the control word only.
func (LineTransport) WordOnly() bool { return true }

// pollSilence is how long a busy-polling side (line, floor) polls without
// news before it gives up.
const pollSilence = 10 * time.Second

type lineSetup struct {
	seg        *shm.Segment
	removeOnce sync.Once
	removeErr  error
	closeOnce  sync.Once
	closeErr   error
}

// Setup implements Transport.
func (LineTransport) Setup(env Env) (Setup, error) {
	seg, err := shm.Create("", os.Getpagesize(), shmOpts(env.Dir)...)
	if err != nil {
		return nil, err
	}
	return &lineSetup{seg: seg}, nil
}

func (s *lineSetup) Addr() string      { return s.seg.Name() }
func (s *lineSetup) Files() []*os.File { return nil }

func (s *lineSetup) Accept(time.Duration) (Conn, error) {
	return newLineConn(s.seg.Bytes(), 0)
}

func (s *lineSetup) Remove() error {
	s.removeOnce.Do(func() { s.removeErr = s.seg.Unlink() })
	return s.removeErr
}

func (s *lineSetup) Close() error {
	s.closeOnce.Do(func() { s.closeErr = errors.Join(s.Remove(), s.seg.Close()) })
	return s.closeErr
}

// Attach implements Transport.
func (LineTransport) Attach(env Env, addr string, _ []*os.File) (Conn, error) {
	seg, err := shm.Open(addr, shmOpts(env.Dir)...)
	if err != nil {
		return nil, err
	}
	c, err := newLineConn(seg.Bytes(), 1)
	if err != nil {
		seg.Close()
		return nil, err
	}
	c.seg = seg
	return c, nil
}

type lineConn struct {
	out, in *atomic.Uint64
	last    uint64
	seg     *shm.Segment // the peer's own attachment, closed with the Conn
}

// newLineConn lays the conn over the line at buf[0:64]: side 0 writes word
// 0 and reads word 1, side 1 the reverse.
func newLineConn(buf []byte, side int) (*lineConn, error) {
	w0, err := shm.Ptr[atomic.Uint64](buf, 0)
	if err != nil {
		return nil, err
	}
	w1, err := shm.Ptr[atomic.Uint64](buf, 8)
	if err != nil {
		return nil, err
	}
	if side == 0 {
		return &lineConn{out: w0, in: w1}, nil
	}
	return &lineConn{out: w1, in: w0}, nil
}

func (c *lineConn) Send(p []byte) error {
	if len(p) < 8 {
		return fmt.Errorf("%w: line messages carry 8 bytes, got %d", ErrBadMessage, len(p))
	}
	c.out.Store(binary.LittleEndian.Uint64(p))
	return nil
}

// Recv polls until the peer's word changes. The harness never sends the
// same word twice in a row.
func (c *lineConn) Recv(buf []byte) ([]byte, error) {
	var quiet silence
	for spins := 0; ; spins++ {
		if v := c.in.Load(); v != c.last {
			c.last = v
			binary.LittleEndian.PutUint64(buf, v)
			return buf, nil
		}
		if spins&(1<<16-1) == 0 && spins > 0 {
			if quiet.silent(c.last) {
				return nil, fmt.Errorf("line: %w for %v", ErrPeerSilent, pollSilence)
			}
		}
	}
}

func (c *lineConn) Close() error {
	if c.seg != nil {
		return c.seg.Close()
	}
	return nil
}
