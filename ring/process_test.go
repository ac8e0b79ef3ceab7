package ring_test

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringwire/ringwire/ring"
)

// The test binary re-executes itself as the peer process. The child's job
// comes in environment variables.
const (
	envRole  = "RINGWIRE_RING_CHILD" // what the child does
	envDir   = "RINGWIRE_RING_DIR"
	envName  = "RINGWIRE_RING_NAME"
	envCount = "RINGWIRE_RING_COUNT"
	envWait  = "RINGWIRE_RING_WAIT"
	envSize  = "RINGWIRE_RING_SIZE"
)

var messages = flag.Int("ring.messages", 10_000_000,
	"messages in the cross-process exactly-once test, for each wait strategy")

func TestMain(m *testing.M) {
	if role := os.Getenv(envRole); role != "" {
		if err := child(role); err != nil {
			fmt.Fprintf(os.Stderr, "child %s: %v\n", role, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// seqSizes yields the sizes of the messages of the exactly-once test:
// random in [0, max], the same sequence on both sides.
type seqSizes struct{ x uint64 }

func (s *seqSizes) next(max int) int {
	s.x ^= s.x << 13
	s.x ^= s.x >> 7
	s.x ^= s.x << 17
	return int(s.x % uint64(max+1))
}

// stamp writes message i's content: its index in the first 8 bytes if it
// has room, then the pattern.
func stamp(buf []byte, i int) {
	copy(buf, pattern(i, len(buf)))
	if len(buf) >= 8 {
		for k := range 8 {
			buf[k] = byte(uint64(i) >> (8 * k))
		}
	}
}

// childRoles are child roles defined by other test files, which add to
// it from init functions.
var childRoles = map[string]func(o ring.AttachOptions, name string, n int) error{}

func child(role string) error {
	wm, err := ring.ParseWaitMode(os.Getenv(envWait))
	if err != nil {
		wm = ring.Adaptive
	}
	o := ring.AttachOptions{Dir: os.Getenv(envDir), Wait: ring.Wait{Mode: wm, PeerCheck: 20 * time.Millisecond}}
	name := os.Getenv(envName)
	n, _ := strconv.Atoi(os.Getenv(envCount))
	if fn, ok := childRoles[role]; ok {
		return fn(o, name, n)
	}
	switch role {
	case "produce": // n messages of random sizes, through Reserve/Commit
		p, err := ring.OpenProducer(name, o)
		if err != nil {
			return err
		}
		sizes := seqSizes{x: 88172645463325252}
		for i := range n {
			buf, err := p.Reserve(sizes.next(p.MaxMessage()))
			if err != nil {
				return fmt.Errorf("message %d: %w", i, err)
			}
			stamp(buf, i)
			if err := p.Commit(); err != nil {
				return err
			}
		}
		return p.Close()
	case "bench": // n messages of the size in envSize with Send
		p, err := ring.OpenProducer(name, o)
		if err != nil {
			return err
		}
		size, _ := strconv.Atoi(os.Getenv(envSize))
		msg := make([]byte, size)
		for range n {
			if err := p.Send(msg); err != nil {
				return err
			}
		}
		return p.Close()
	case "stream": // numbered messages until killed
		p, err := ring.OpenProducer(name, o)
		if err != nil {
			return err
		}
		fmt.Println("ready")
		buf := make([]byte, 200)
		for i := 0; ; i++ {
			n := 8 + i%190
			stamp(buf[:n], i)
			if err := p.Send(buf[:n]); err != nil {
				return err
			}
		}
	case "hold-producer", "hold-consumer": // take the role, send n, say so, wait to be killed
		r, err := ring.Open(name, o)
		if err != nil {
			return err
		}
		if role == "hold-producer" {
			p, err := r.Producer()
			if err != nil {
				return err
			}
			for i := range n {
				if err := p.Send(pattern(i, 10)); err != nil {
					return err
				}
			}
		} else if _, err := r.Consumer(); err != nil {
			return err
		}
		fmt.Println("ready")
		time.Sleep(time.Minute)
		return errors.New("not killed")
	}
	return fmt.Errorf("unknown role %q", role)
}

// startBenchChild starts a child that sends n messages of size bytes.
func startBenchChild(b *testing.B, r *ring.Ring, dir string, size, n int) *exec.Cmd {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envRole+"=bench", envDir+"="+dir, envName+"="+r.Name(),
		envCount+"="+strconv.Itoa(n), envSize+"="+strconv.Itoa(size))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// startChild starts the test binary as a peer with a role on a ring. With
// ready it waits for the child's "ready" line.
func startChild(t *testing.T, r *ring.Ring, dir, role string, n int, wait ring.WaitMode, ready bool) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envRole+"="+role, envDir+"="+dir, envName+"="+r.Name(),
		envCount+"="+strconv.Itoa(n), envWait+"="+wait.String(), "GORACE=atexit_sleep_ms=0")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if ready {
		line, err := bufio.NewReader(out).ReadString('\n')
		if strings.TrimSpace(line) != "ready" {
			t.Fatalf("child %s: %q %v", role, line, err)
		}
	}
	return cmd
}

func kill(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
}

// TestCrossProcessExactlyOnce: a child process sends messages of random
// sizes from 0 to the maximum through a small ring that wraps at every
// alignment; this process checks that each arrives once, in order, byte
// for byte, with every wait strategy on both sides.
func TestCrossProcessExactlyOnce(t *testing.T) {
	for _, mode := range []ring.WaitMode{ring.Adaptive, ring.Spin, ring.Yield, ring.Block} {
		t.Run(mode.String(), func(t *testing.T) {
			n := *messages
			if testing.Short() {
				n = min(n, 100_000)
			}
			dir := t.TempDir()
			r := newRing(t, ring.Options{Dir: dir, Capacity: 8192, MaxMessage: 256, Checksum: mode == ring.Yield,
				Wait: ring.Wait{Mode: mode, PeerCheck: 20 * time.Millisecond}})
			c, err := r.Consumer()
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			cmd := startChild(t, r, dir, "produce", n, mode, false)
			sizes := seqSizes{x: 88172645463325252}
			want := make([]byte, 256)
			for i := range n {
				msg, err := c.Peek()
				if err != nil {
					t.Fatalf("message %d of %d: %v", i, n, err)
				}
				w := want[:sizes.next(r.MaxMessage())]
				stamp(w, i)
				if !bytes.Equal(msg, w) {
					t.Fatalf("message %d: %d bytes %x, want %d bytes %x", i, len(msg), msg[:min(len(msg), 16)], len(w), w[:min(len(w), 16)])
				}
				if err := c.Release(); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := c.Recv(); err != io.EOF {
				t.Fatalf("after %d messages: %v, want io.EOF", n, err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("producer process: %v", err)
			}
			s := r.Stats()
			t.Logf("%d messages, %d bytes in %v; %d laps of the ring", n, s.ReceivedBytes, time.Since(start).Round(time.Millisecond), s.Head/8192)
			if s.Sent != uint64(n) || s.Received != uint64(n) || s.Head != s.Tail {
				t.Fatalf("stats %+v after %d messages", s, n)
			}
		})
	}
}

// TestCrossProcessBusy: a role held by another process is busy until that
// process dies, and then free without any cleanup.
func TestCrossProcessBusy(t *testing.T) {
	for _, role := range []string{"producer", "consumer"} {
		t.Run(role, func(t *testing.T) {
			dir := t.TempDir()
			r := newRing(t, ring.Options{Dir: dir})
			cmd := startChild(t, r, dir, "hold-"+role, 0, ring.Adaptive, true)
			take := func() (io.Closer, error) {
				if role == "producer" {
					return r.Producer()
				}
				return r.Consumer()
			}
			if _, err := take(); !errors.Is(err, ring.ErrBusy) {
				t.Fatalf("%s held by another process: %v, want ErrBusy", role, err)
			}
			kill(t, cmd)
			h, err := take()
			if err != nil {
				t.Fatalf("%s after its holder was killed: %v", role, err)
			}
			h.Close()
		})
	}
}

// TestPeerDeadWhileWaiting: a side waiting for its peer returns
// ErrPeerDead soon after the peer is SIGKILLed, in every wait strategy;
// what the peer committed before it died is still delivered.
func TestPeerDeadWhileWaiting(t *testing.T) {
	for _, mode := range []ring.WaitMode{ring.Adaptive, ring.Spin, ring.Block} {
		t.Run("consumer/"+mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			r := newRing(t, ring.Options{Dir: dir, Wait: ring.Wait{Mode: mode, PeerCheck: 20 * time.Millisecond}})
			c, err := r.Consumer()
			if err != nil {
				t.Fatal(err)
			}
			cmd := startChild(t, r, dir, "hold-producer", 3, mode, true)
			time.AfterFunc(50*time.Millisecond, func() { cmd.Process.Signal(syscall.SIGKILL) })
			for i := range 3 {
				if got, err := c.Recv(); err != nil || !bytes.Equal(got, pattern(i, 10)) {
					t.Fatalf("message %d from the producer before it died: %v", i, err)
				}
			}
			start := time.Now()
			_, err = c.Recv()
			if !errors.Is(err, ring.ErrPeerDead) {
				t.Fatalf("Recv after the producer was killed: %v, want ErrPeerDead", err)
			}
			t.Logf("ErrPeerDead after %v", time.Since(start).Round(time.Millisecond))
		})
		t.Run("producer/"+mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			r := newRing(t, ring.Options{Dir: dir, Capacity: 4096, Wait: ring.Wait{Mode: mode, PeerCheck: 20 * time.Millisecond}})
			p, err := r.Producer()
			if err != nil {
				t.Fatal(err)
			}
			cmd := startChild(t, r, dir, "hold-consumer", 0, mode, true)
			for p.TrySend(make([]byte, 100)) == nil {
			}
			time.AfterFunc(50*time.Millisecond, func() { cmd.Process.Signal(syscall.SIGKILL) })
			if err := p.Send(make([]byte, 100)); !errors.Is(err, ring.ErrPeerDead) {
				t.Fatalf("Send to a full ring whose consumer was killed: %v, want ErrPeerDead", err)
			}
		})
	}
}

// TestProducerKilledMidStream: a producer process is SIGKILLed at random
// moments while it streams; every message it committed arrives intact and
// in order, nothing half-written is ever delivered, and a new producer
// takes over the ring where the dead one stopped.
func TestProducerKilledMidStream(t *testing.T) {
	dir := t.TempDir()
	r := newRing(t, ring.Options{Dir: dir, Capacity: 4096, Checksum: true, Wait: ring.Wait{PeerCheck: 10 * time.Millisecond}})
	c, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	buf := make([]byte, 0, 256)
	for round := range rounds {
		cmd := startChild(t, r, dir, "stream", 0, ring.Adaptive, true)
		// Let it run for a while that varies, then kill it wherever it is.
		delay := time.Duration(1+round*7%23) * time.Millisecond
		time.AfterFunc(delay, func() { cmd.Process.Signal(syscall.SIGKILL) })
		for i := 0; ; i++ {
			msg, err := c.RecvAppend(buf[:0])
			if errors.Is(err, ring.ErrPeerDead) {
				t.Logf("round %d: %d messages before the kill", round, i)
				break
			}
			if err != nil {
				t.Fatalf("round %d, message %d: %v", round, i, err)
			}
			want := make([]byte, 8+i%190)
			stamp(want, i)
			if !bytes.Equal(msg, want) {
				t.Fatalf("round %d, message %d: got %d bytes, want %d", round, i, len(msg), len(want))
			}
		}
		cmd.Wait()
	}
}
