package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cloudwego/shmipc-go"

	"github.com/ringwire/ringwire/bench"
)

// shmipcTransport is cloudwego/shmipc-go v0.2.0: messages are written into
// buffer slices in shared memory, described in a shared queue, and the peer
// is woken through a unix socket. The parent is the shmipc server and the
// peer the client (through shmipc's SessionManager, its client API). The
// shared memory is a memfd passed over the socket, so nothing of it has a
// name in /dev/shm; the socket file lives in a private temporary directory
// removed at the end.
type shmipcTransport struct{}

const levelNoPrint = 5 // shmipc's silent log level

func init() { shmipc.SetLogLevel(levelNoPrint) }

func (shmipcTransport) Name() string { return "shmipc" }

// config sizes shmipc's buffer slices for the message size, as shmipc's own
// benchmarks do.
func config(size int) *shmipc.Config {
	c := shmipc.DefaultConfig()
	c.MemMapType = shmipc.MemMapTypeMemFd
	c.LogOutput = io.Discard
	c.ShareMemoryBufferCap = 64 << 20
	c.BufferSliceSizes = []*shmipc.SizePercentPair{
		{Size: uint32(size) + 256, Percent: 70},
		{Size: 16 << 10, Percent: 20},
		{Size: 64 << 10, Percent: 10},
	}
	if size+256 > 64<<10 {
		c.BufferSliceSizes[2].Size = uint32(size) + 256
	}
	return c
}

type shmipcSetup struct {
	env      bench.Env
	dir      string
	ln       *net.UnixListener
	mu       sync.Mutex
	session  *shmipc.Session
	accepted chan acceptResult
	once     sync.Once
	err      error
	rmOnce   sync.Once
}

func randomHex() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (shmipcTransport) Setup(env bench.Env) (bench.Setup, error) {
	// A socket path must fit in 108 bytes: keep it short, in a private
	// directory under the system's temporary one.
	dir, err := os.MkdirTemp("", "rw-shmipc-")
	if err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, randomHex()+".sock"), Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &shmipcSetup{env: env, dir: dir, ln: ln, accepted: make(chan acceptResult, 1)}
	go s.serve(30 * time.Second)
	return s, nil
}

func (s *shmipcSetup) Addr() string      { return s.ln.Addr().String() }
func (s *shmipcSetup) Files() []*os.File { return nil }

// serve accepts the peer and runs shmipc's server handshake; it must run
// while the peer attaches, since the peer's attach waits for it.
func (s *shmipcSetup) serve(timeout time.Duration) {
	c, err := func() (bench.Conn, error) {
		if err := s.ln.SetDeadline(time.Now().Add(timeout)); err != nil {
			return nil, err
		}
		conn, err := s.ln.Accept()
		if err != nil {
			return nil, err
		}
		session, err := shmipc.Server(conn, config(s.env.Size))
		if err != nil {
			conn.Close()
			return nil, err
		}
		s.mu.Lock()
		s.session = session
		s.mu.Unlock()
		st, err := session.AcceptStream()
		if err != nil {
			return nil, err
		}
		c := &shmipcConn{stream: st}
		// shmipc tells the server of a new stream with its first data:
		// the peer's hello, which is not part of the case.
		if _, err := c.Recv(make([]byte, s.env.Size)); err != nil {
			return nil, fmt.Errorf("shmipc hello: %w", err)
		}
		return c, nil
	}()
	s.accepted <- acceptResult{c, err}
}

type acceptResult struct {
	c   bench.Conn
	err error
}

func (s *shmipcSetup) Accept(timeout time.Duration) (bench.Conn, error) {
	select {
	case r := <-s.accepted:
		return r.c, r.err
	case <-time.After(timeout):
		return nil, fmt.Errorf("shmipc: no peer within %v", timeout)
	}
}

func (s *shmipcSetup) Remove() error {
	s.rmOnce.Do(func() { s.err = os.RemoveAll(s.dir) })
	return s.err
}

func (s *shmipcSetup) Close() error {
	var err error
	s.once.Do(func() {
		s.mu.Lock()
		if s.session != nil {
			err = s.session.Close()
		}
		s.mu.Unlock()
		err = errors.Join(err, s.ln.Close(), s.Remove())
	})
	return err
}

func (shmipcTransport) Attach(env bench.Env, addr string, _ []*os.File) (bench.Conn, error) {
	conf := shmipc.DefaultSessionManagerConfig()
	conf.Config = config(env.Size)
	conf.Network = "unix"
	conf.Address = addr
	conf.SessionNum = 1
	conf.MaxStreamNum = 1
	sm, err := shmipc.NewSessionManager(conf)
	if err != nil {
		return nil, err
	}
	st, err := sm.GetStream()
	if err != nil {
		sm.Close()
		return nil, err
	}
	c := &shmipcConn{stream: st, sm: sm}
	if err := c.Send(make([]byte, env.Size)); err != nil {
		c.Close()
		return nil, fmt.Errorf("shmipc hello: %w", err)
	}
	return c, nil
}

// shmipcConn moves one message per Flush: WriteBytes copies it into shared
// memory, Flush hands it over (and wakes the peer through the socket if it
// sleeps); ReadBytes waits for it and returns it in place where it is
// contiguous.
type shmipcConn struct {
	stream  *shmipc.Stream
	sm      *shmipc.SessionManager
	pending bool
}

func (c *shmipcConn) Send(p []byte) error {
	if _, err := c.stream.BufferWriter().WriteBytes(p); err != nil {
		return err
	}
	return c.stream.Flush(false)
}

func (c *shmipcConn) Recv(buf []byte) ([]byte, error) {
	r := c.stream.BufferReader()
	if c.pending {
		r.ReleasePreviousRead()
		c.pending = false
	}
	m, err := r.ReadBytes(len(buf))
	if err != nil {
		return nil, err
	}
	c.pending = true
	return m, nil
}

func (c *shmipcConn) Close() error {
	if c.pending {
		c.stream.BufferReader().ReleasePreviousRead()
		c.pending = false
	}
	err := c.stream.Close()
	if c.sm != nil {
		err = errors.Join(err, c.sm.Close())
	}
	return err
}
