package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// fdTransport is a kernel byte stream read and written with plain blocking
// system calls, the fastest way to use one (Go's net package would add its
// poller's wake-ups): a unix-domain socket pair ("uds"), a pair of pipes
// ("pipe"), or a loopback TCP connection with TCP_NODELAY ("tcp").
// Messages have a fixed size known to both ends, so they carry no framing.
type fdTransport struct{ name string }

func (t fdTransport) Name() string { return t.name }

type fdSetup struct {
	parent []*os.File // the parent's end: [read, write] (one file for a socket)
	child  []*os.File // handed to the peer
	ln     *net.TCPListener
	once   sync.Once
	err    error
}

// cloexecSocketpair makes a connected pair of unix stream sockets, closed on
// exec (the peer receives its end through ExtraFiles, which dups it).
func cloexecSocketpair() (*os.File, *os.File, error) {
	syscall.ForkLock.RLock()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err == nil {
		unix.CloseOnExec(fds[0])
		unix.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "uds-parent"), os.NewFile(uintptr(fds[1]), "uds-peer"), nil
}

func (t fdTransport) Setup(Env) (Setup, error) {
	s := &fdSetup{}
	switch t.name {
	case "uds":
		a, b, err := cloexecSocketpair()
		if err != nil {
			return nil, err
		}
		s.parent, s.child = []*os.File{a}, []*os.File{b}
	case "pipe":
		pr, cw, err := os.Pipe() // peer to parent
		if err != nil {
			return nil, err
		}
		cr, pw, err := os.Pipe() // parent to peer
		if err != nil {
			pr.Close()
			cw.Close()
			return nil, err
		}
		s.parent, s.child = []*os.File{pr, pw}, []*os.File{cr, cw}
	case "tcp":
		ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, err
		}
		s.ln = ln
	default:
		return nil, fmt.Errorf("%w %q", ErrUnknownTransport, t.name)
	}
	return s, nil
}

func (s *fdSetup) Addr() string {
	if s.ln != nil {
		return s.ln.Addr().String()
	}
	return ""
}

func (s *fdSetup) Files() []*os.File { return s.child }

func (s *fdSetup) Accept(timeout time.Duration) (Conn, error) {
	if s.ln == nil {
		// The peer has its own copies now.
		for _, f := range s.child {
			f.Close()
		}
		s.child = nil
		return newFdConn(s.parent...)
	}
	if err := s.ln.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	c, err := s.ln.AcceptTCP()
	if err != nil {
		return nil, err
	}
	return tcpConn(c)
}

// tcpConn turns a net.TCPConn into a blocking descriptor with TCP_NODELAY.
func tcpConn(c *net.TCPConn) (Conn, error) {
	defer c.Close()
	if err := c.SetNoDelay(true); err != nil {
		return nil, err
	}
	f, err := c.File() // a dup; Fd below makes it blocking
	if err != nil {
		return nil, err
	}
	return newFdConn(f)
}

func (s *fdSetup) Remove() error { return nil } // nothing has a name

func (s *fdSetup) Close() error {
	s.once.Do(func() {
		for _, f := range append(s.parent, s.child...) {
			f.Close() // the Conn may have closed them already
		}
		if s.ln != nil {
			s.err = s.ln.Close()
		}
	})
	return s.err
}

func (t fdTransport) Attach(_ Env, addr string, files []*os.File) (Conn, error) {
	switch t.name {
	case "uds":
		if len(files) != 1 {
			return nil, fmt.Errorf("uds: want 1 file, got %d", len(files))
		}
		return newFdConn(files[0])
	case "pipe":
		if len(files) != 2 {
			return nil, fmt.Errorf("pipe: want 2 files, got %d", len(files))
		}
		return newFdConn(files...)
	case "tcp":
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			return nil, err
		}
		return tcpConn(c.(*net.TCPConn))
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownTransport, t.name)
}

// fdConn reads and writes whole messages with blocking system calls.
type fdConn struct {
	files  []*os.File // kept so their finalizers do not close the descriptors
	rd, wr int
}

// newFdConn takes one file (a socket: read and write) or two (read, write).
func newFdConn(files ...*os.File) (*fdConn, error) {
	c := &fdConn{files: files}
	// Fd puts the descriptor in blocking mode.
	c.rd = int(files[0].Fd())
	c.wr = c.rd
	if len(files) > 1 {
		c.wr = int(files[1].Fd())
	}
	return c, nil
}

func (c *fdConn) Send(p []byte) error {
	for len(p) > 0 {
		n, err := unix.Write(c.wr, p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

func (c *fdConn) Recv(buf []byte) ([]byte, error) {
	for got := 0; got < len(buf); {
		n, err := unix.Read(c.rd, buf[got:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			if got == 0 {
				return nil, io.EOF
			}
			return nil, io.ErrUnexpectedEOF
		}
		got += n
	}
	return buf, nil
}

func (c *fdConn) Close() error {
	var err error
	for _, f := range c.files {
		err = errors.Join(err, f.Close())
	}
	return err
}
