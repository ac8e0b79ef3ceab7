package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// PeerEnv is the environment variable that makes a binary a peer: it holds
// the peer's job, as JSON. A binary that runs cases must call PeerMain when
// it is set, before anything else (flag parsing included).
const PeerEnv = "RINGWIRE_BENCH_PEER"

type peerSpec struct {
	Transport string `json:"transport"`
	Addr      string `json:"addr"`
	Files     int    `json:"files"` // open files from descriptor 3 on
	Case      Case   `json:"case"`
}

// IsPeer reports whether this process was started as a peer.
func IsPeer() bool { return os.Getenv(PeerEnv) != "" }

// PeerMain runs this process as a peer and returns its exit status: it
// attaches to the transport named in PeerEnv, says "ready" on stdout, runs
// its side of each round the parent asks for on stdin (one line each) until
// stdin ends, and reports a failure on stderr. ts must include the parent's
// transports.
func PeerMain(ts []Transport) int {
	if err := peerMain(ts); err != nil {
		fmt.Fprintln(os.Stderr, "peer:", err)
		return 1
	}
	return 0
}

func peerMain(ts []Transport) error {
	var spec peerSpec
	if err := json.Unmarshal([]byte(os.Getenv(PeerEnv)), &spec); err != nil {
		return fmt.Errorf("bad %s: %w", PeerEnv, err)
	}
	t, err := Lookup(ts, spec.Transport)
	if err != nil {
		return err
	}
	files := make([]*os.File, spec.Files)
	for i := range files {
		files[i] = os.NewFile(uintptr(3+i), fmt.Sprintf("fd%d", 3+i))
	}
	conn, err := t.Attach(spec.Case.env(), spec.Addr, files)
	if err != nil {
		return fmt.Errorf("%s: attach: %w", t.Name(), err)
	}
	defer conn.Close()
	if spec.Case.Pin {
		unpin, err := pinThread(1)
		if err != nil {
			return err
		}
		defer unpin()
	}
	if _, err := fmt.Fprintln(os.Stdout, "ready"); err != nil {
		return err
	}
	return peerLoop(conn, spec.Case, stdinRounds(bufio.NewScanner(os.Stdin)))
}

// roundSpec is one round as the parent asks its peer for it.
type roundSpec struct {
	N        int64         `json:"n"`        // measured messages; 0: for Duration
	Duration time.Duration `json:"duration"` // measured time; 0: N messages
	Settle   time.Duration `json:"settle"`   // unrecorded time before measuring
}

// stdinRounds reads a process peer's rounds: one JSON line each.
func stdinRounds(sc *bufio.Scanner) func() (roundSpec, bool, error) {
	return func() (roundSpec, bool, error) {
		if !sc.Scan() {
			return roundSpec{}, false, sc.Err()
		}
		var r roundSpec
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return r, false, fmt.Errorf("bad round %q: %w", sc.Text(), err)
		}
		return r, true, nil
	}
}

// peerLoop runs the peer's side of each round that next returns, until
// there are no more.
func peerLoop(conn Conn, c Case, next func() (roundSpec, bool, error)) error {
	pat := newPattern(c.Size)
	msg := make([]byte, c.Size)
	buf := make([]byte, c.Size)
	pat.fill(msg)
	var key uint64 // stream: the number of the next message
	for {
		r, ok, err := next()
		if !ok {
			return err
		}
		if c.Mode == Stream {
			err = streamSend(conn, &pat, msg, &key, r)
		} else {
			err = echo(conn, buf)
		}
		if err != nil {
			return err
		}
	}
}

// peerHandle is a running peer: a process or a goroutine.
type peerHandle struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser // a process peer's rounds
	rounds chan roundSpec // a goroutine peer's rounds
	stderr *limitedBuffer
	done   chan error // receives the peer's outcome once
	once   sync.Once
	err    error
	ended  bool
}

// start asks the peer for one round.
func (p *peerHandle) start(r roundSpec) error {
	if p.rounds != nil {
		select {
		case p.rounds <- r:
			return nil
		case err := <-p.done:
			p.done <- err // for wait
			return fmt.Errorf("peer ended: %v", err)
		}
	}
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = p.stdin.Write(append(line, '\n'))
	return err
}

// end tells the peer there are no more rounds: it exits.
func (p *peerHandle) end() {
	if p.ended {
		return
	}
	p.ended = true
	if p.rounds != nil {
		close(p.rounds)
	} else {
		p.stdin.Close()
	}
}

// wait waits for the peer to end, killing it after timeout.
func (p *peerHandle) wait(timeout time.Duration) error {
	p.once.Do(func() {
		defer func() {
			live.Lock()
			delete(live.peers, p)
			live.Unlock()
		}()
		select {
		case p.err = <-p.done:
		case <-time.After(timeout):
			p.kill()
			p.err = fmt.Errorf("peer did not end within %v", timeout)
			if p.cmd != nil {
				<-p.done
			}
		}
		if p.err != nil && p.stderr != nil {
			if msg := strings.TrimSpace(p.stderr.String()); msg != "" {
				p.err = fmt.Errorf("%w: %s", p.err, msg)
			}
		}
	})
	return p.err
}

func (p *peerHandle) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Kill() // it may have exited already
	}
}

func startGoroutinePeer(t Transport, c Case, addr string) (*peerHandle, error) {
	conn, err := t.Attach(c.env(), addr, nil)
	if err != nil {
		return nil, err
	}
	p := &peerHandle{rounds: make(chan roundSpec), done: make(chan error, 1)}
	next := func() (roundSpec, bool, error) {
		r, ok := <-p.rounds
		return r, ok, nil
	}
	go func() {
		err := func() error {
			defer conn.Close()
			if c.Pin {
				unpin, err := pinThread(1)
				if err != nil {
					return err
				}
				defer unpin()
			}
			return peerLoop(conn, c, next)
		}()
		p.done <- err
	}()
	return p, nil
}

func startProcessPeer(t Transport, c Case, s Setup) (*peerHandle, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	spec, err := json.Marshal(peerSpec{Transport: t.Name(), Addr: s.Addr(), Files: len(s.Files()), Case: c})
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), PeerEnv+"="+string(spec))
	if _, ok := os.LookupEnv("GORACE"); !ok {
		// A race-enabled peer (under go test -race) would sleep 1 s at
		// exit, waiting for reports; it reports to stderr all the same.
		cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
	}
	cmd.ExtraFiles = s.Files()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	p := &peerHandle{cmd: cmd, stdin: stdin, stderr: &limitedBuffer{max: 8 << 10}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	peerAttr(cmd)
	live.Lock()
	err = cmd.Start()
	if err == nil {
		live.peers[p] = true
	}
	live.Unlock()
	if err != nil {
		return nil, err
	}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("peer said %q", line)
		}
		ready <- err
		_, _ = io.Copy(io.Discard, stdout) // until it exits
		p.done <- cmd.Wait()
	}()
	select {
	case err = <-ready:
	case <-time.After(peerTimeout):
		err = fmt.Errorf("peer not ready within %v", peerTimeout)
	}
	if err != nil {
		p.kill()
		if werr := p.wait(peerTimeout); werr != nil {
			err = werr
		}
		return nil, err
	}
	return p, nil
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
