package bench

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// ChanTransport is a reference inside one process: two goroutines handing
// buffers over Go channels (one copy per message, into a buffer from a free
// list). The harness runs its peer as a goroutine, pinned like a process.
type ChanTransport struct{}

// Name implements Transport.
func (ChanTransport) Name() string { return "chan" }

// InProcess implements InProcess.
func (ChanTransport) InProcess() bool { return true }

// chanDepth is how many messages may be in flight one way.
const chanDepth = 256

type chanPipe struct {
	data, free chan []byte
}

func newChanPipe(size int) chanPipe {
	p := chanPipe{data: make(chan []byte, chanDepth), free: make(chan []byte, chanDepth+1)}
	for range chanDepth + 1 {
		p.free <- make([]byte, size)
	}
	return p
}

var (
	chanMu    sync.Mutex
	chanPairs = map[string]*chanSetup{}
	chanSeq   int
)

type chanSetup struct {
	id     string
	ab, ba chanPipe // parent to peer, peer to parent
}

// Setup implements Transport.
func (ChanTransport) Setup(env Env) (Setup, error) {
	chanMu.Lock()
	defer chanMu.Unlock()
	chanSeq++
	s := &chanSetup{id: strconv.Itoa(chanSeq), ab: newChanPipe(env.Size), ba: newChanPipe(env.Size)}
	chanPairs[s.id] = s
	return s, nil
}

func (s *chanSetup) Addr() string      { return s.id }
func (s *chanSetup) Files() []*os.File { return nil }
func (s *chanSetup) Accept(time.Duration) (Conn, error) {
	return &chanConn{out: s.ab, in: s.ba}, nil
}
func (s *chanSetup) Remove() error { return nil }
func (s *chanSetup) Close() error {
	chanMu.Lock()
	delete(chanPairs, s.id)
	chanMu.Unlock()
	return nil
}

// Attach implements Transport: it works only in the process that made the
// setup.
func (ChanTransport) Attach(_ Env, addr string, _ []*os.File) (Conn, error) {
	chanMu.Lock()
	s := chanPairs[addr]
	chanMu.Unlock()
	if s == nil {
		return nil, errors.New("chan: no such pair in this process (chan is in-process only)")
	}
	return &chanConn{out: s.ba, in: s.ab}, nil
}

type chanConn struct {
	out, in chanPipe
	held    []byte // the buffer last returned by Recv
}

func (c *chanConn) Send(p []byte) error {
	b := <-c.out.free
	if len(p) != len(b) {
		c.out.free <- b
		return fmt.Errorf("%w: chan carries %d-byte messages, got %d", ErrBadMessage, len(b), len(p))
	}
	copy(b, p)
	c.out.data <- b
	return nil
}

func (c *chanConn) Recv([]byte) ([]byte, error) {
	if c.held != nil {
		c.in.free <- c.held
		c.held = nil
	}
	b := <-c.in.data
	c.held = b
	return b, nil
}

func (c *chanConn) Close() error {
	if c.held != nil {
		c.in.free <- c.held
		c.held = nil
	}
	return nil
}
