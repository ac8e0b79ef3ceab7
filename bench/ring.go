package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ringwire/ringwire/ring"
)

// RingTransport is ringwire's SPSC ring: two rings, one per direction, made
// by the parent (their owner, which unlinks them) and attached by the peer.
type RingTransport struct{}

// Name implements Transport.
func (RingTransport) Name() string { return "ring" }

func ringWait(env Env) (ring.Wait, error) {
	if env.Wait == "" {
		return ring.Wait{}, nil
	}
	m, err := ring.ParseWaitMode(env.Wait)
	if err != nil {
		return ring.Wait{}, err
	}
	return ring.Wait{Mode: m}, nil
}

// RingMaxMessage reports the largest message a ring of this capacity takes,
// by making one in dir and removing it.
func RingMaxMessage(dir string, capacity int) (int, error) {
	r, err := ring.Create("", ring.Options{Capacity: capacity, Dir: dir})
	if err != nil {
		return 0, err
	}
	max := r.MaxMessage()
	err = errors.Join(r.Close(), r.Unlink())
	return max, err
}

type ringSetup struct {
	rings      [2]*ring.Ring // [0] parent to peer, [1] peer to parent
	env        Env
	removeOnce sync.Once
	removeErr  error
	closeOnce  sync.Once
	closeErr   error
}

// Setup implements Transport.
func (RingTransport) Setup(env Env) (Setup, error) {
	w, err := ringWait(env)
	if err != nil {
		return nil, err
	}
	s := &ringSetup{env: env}
	for i := range s.rings {
		r, err := ring.Create("", ring.Options{Capacity: env.Capacity, Dir: env.Dir, Wait: w})
		if err != nil {
			s.Close()
			return nil, err
		}
		s.rings[i] = r
		if env.Size > r.MaxMessage() {
			s.Close()
			return nil, fmt.Errorf("%w: %d B, the ring's largest message is %d B at capacity %d B (raise -capacity)",
				ErrTooLarge, env.Size, r.MaxMessage(), r.Capacity())
		}
	}
	return s, nil
}

func (s *ringSetup) Addr() string      { return s.rings[0].Name() + "," + s.rings[1].Name() }
func (s *ringSetup) Files() []*os.File { return nil }

func (s *ringSetup) Accept(time.Duration) (Conn, error) {
	p, err := s.rings[0].Producer()
	if err != nil {
		return nil, err
	}
	c, err := s.rings[1].Consumer()
	if err != nil {
		p.Close()
		return nil, err
	}
	return &ringConn{p: p, c: c, zeroCopy: s.env.ZeroCopy}, nil
}

func (s *ringSetup) Remove() error {
	s.removeOnce.Do(func() {
		for _, r := range s.rings {
			if r != nil {
				s.removeErr = errors.Join(s.removeErr, r.Unlink())
			}
		}
	})
	return s.removeErr
}

func (s *ringSetup) Close() error {
	s.closeOnce.Do(func() {
		err := s.Remove()
		for _, r := range s.rings {
			if r != nil {
				err = errors.Join(err, r.Close())
			}
		}
		s.closeErr = err
	})
	return s.closeErr
}

// Attach implements Transport.
func (RingTransport) Attach(env Env, addr string, _ []*os.File) (Conn, error) {
	w, err := ringWait(env)
	if err != nil {
		return nil, err
	}
	in, out, ok := strings.Cut(addr, ",")
	if !ok {
		return nil, fmt.Errorf("ring: bad address %q", addr)
	}
	o := ring.AttachOptions{Dir: env.Dir, Wait: w}
	c, err := ring.OpenConsumer(in, o)
	if err != nil {
		return nil, err
	}
	p, err := ring.OpenProducer(out, o)
	if err != nil {
		c.Close()
		return nil, err
	}
	return &ringConn{p: p, c: c, zeroCopy: env.ZeroCopy}, nil
}

type ringConn struct {
	p        *ring.Producer
	c        *ring.Consumer
	zeroCopy bool
	peeked   bool
	large    bool // messages too large to batch were seen
}

func (c *ringConn) Send(p []byte) error { return c.p.Send(p) }

func (c *ringConn) Recv(buf []byte) ([]byte, error) {
	if !c.zeroCopy {
		return c.c.RecvAppend(buf[:0])
	}
	if c.peeked {
		c.peeked = false
		if err := c.c.Release(); err != nil {
			return nil, err
		}
	}
	m, err := c.c.Peek()
	if err != nil {
		return nil, err
	}
	c.peeked = true
	return m, nil
}

// RecvBatch implements batchReceiver with Drain: every message ready now,
// up to 64, read in place, each lane's head stored once per batch. Large
// messages go one at a time (Peek and Release): a batch holds its space
// until it ends, and with messages of a good part of the lane that stalls
// the producer more than the head stores it saves.
func (c *ringConn) RecvBatch(fn func(m []byte) error) error {
	if c.large {
		m, err := c.Recv(nil)
		if err != nil {
			return err
		}
		return fn(m)
	}
	if c.peeked {
		c.peeked = false
		if err := c.c.Release(); err != nil {
			return err
		}
	}
	_, err := c.c.Drain(context.Background(), 64, func(m []byte) error {
		c.large = c.large || len(m) > 4096
		return fn(m)
	})
	return err
}

func (c *ringConn) Close() error {
	if c.peeked {
		c.peeked = false
		c.c.Release()
	}
	return errors.Join(c.p.Close(), c.c.Close())
}
