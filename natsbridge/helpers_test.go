package natsbridge

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ringwire/ringwire/ring"
)

var (
	flagN     = flag.Int("n", 0, "messages in the end-to-end test (0: 1M, or fewer under -race)")
	flagKills = flag.Int("kills", 50, "SIGKILLs in the crash tests")
)

// childEnv carries a child process's arguments for Main.
const childEnv = "NATSBRIDGE_TEST_CHILD"

func TestMain(m *testing.M) {
	if v := os.Getenv(childEnv); v != "" {
		var args []string
		if err := json.Unmarshal([]byte(v), &args); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		os.Exit(Main(args, os.Stderr))
	}
	os.Exit(m.Run())
}

// startServer runs nats-server in this process, with JetStream stored in
// dir, on port (-1: any).
func startServer(t testing.TB, dir string, port int, mod func(*server.Options)) *server.Server {
	t.Helper()
	o := &server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true}
	if mod != nil {
		mod(o)
	}
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	return s
}

func stopServer(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

func connect(t testing.TB, url string, stats *Counters, opts ...nats.Option) *nats.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := Connect(ctx, ConnConfig{URL: url}, stats, t.Logf, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func ensureStream(t testing.TB, nc *nats.Conn, name, subject string) jetstream.Stream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := EnsureStream(ctx, js, StreamConfig{Name: name, Subjects: streamSubjects(subject), Duplicates: 10 * time.Minute}, true); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func createRing(t testing.TB, dir, name string, o ring.Options) *ring.Ring {
	t.Helper()
	o.Dir = dir
	r, err := ring.Create(name, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		afterFuncGrace()
		r.Close()
		r.Unlink()
	})
	return r
}

// afterFuncGrace waits for the ring's wake-up callbacks to finish before a
// test unmaps a ring: a wait on a context that is cancelled at the end of a
// test leaves a context.AfterFunc (ring/wait.go) that may still be about to
// touch the mapping after the wait returned, and unmapping under it is a
// SIGSEGV in the test binary.
func afterFuncGrace() { time.Sleep(50 * time.Millisecond) }

// The test payload: producer (1 byte), sequence (8 bytes), then filler
// derived from both, so that a receiver can verify every byte.
const hdrLen = 9

func payload(buf []byte, prod byte, seq uint64, size int) []byte {
	size = max(size, hdrLen)
	buf = buf[:0]
	buf = append(buf, prod)
	buf = binary.LittleEndian.AppendUint64(buf, seq)
	for i := hdrLen; i < size; i++ {
		buf = append(buf, byte(seq)+byte(i)+prod)
	}
	return buf
}

func parse(t testing.TB, b []byte) (prod byte, seq uint64) {
	if len(b) < hdrLen {
		t.Fatalf("message of %d bytes, want at least %d", len(b), hdrLen)
	}
	prod, seq = b[0], binary.LittleEndian.Uint64(b[1:])
	for i := hdrLen; i < len(b); i++ {
		if b[i] != byte(seq)+byte(i)+prod {
			t.Fatalf("producer %d message %d: byte %d is %d, want %d", prod, seq, i, b[i], byte(seq)+byte(i)+prod)
		}
	}
	return prod, seq
}

// produce sends n messages of random sizes in [hdrLen, maxSize] from
// producer prod, retrying a send that failed because the consumer (the
// bridge) was killed: a send that returned nil is committed.
func produce(ctx context.Context, p *ring.Producer, prod byte, n int, maxSize int, seed uint64) error {
	return producePaced(ctx, p, prod, n, maxSize, seed, 0)
}

// producePaced is produce that sleeps a millisecond every pace messages
// (0: never), to stretch a stream over a test's crashes.
func producePaced(ctx context.Context, p *ring.Producer, prod byte, n int, maxSize int, seed uint64, pace int) error {
	rng := rand.New(rand.NewPCG(seed, uint64(prod)))
	buf := make([]byte, 0, maxSize)
	for seq := uint64(0); seq < uint64(n); seq++ {
		if pace > 0 && seq%uint64(pace) == 0 {
			time.Sleep(time.Millisecond)
		}
		msg := payload(buf, prod, seq, hdrLen+rng.IntN(maxSize-hdrLen+1))
		for {
			err := p.SendContext(ctx, msg)
			if err == nil {
				break
			}
			if errors.Is(err, ring.ErrPeerDead) || errors.Is(err, ring.ErrClosed) {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(5 * time.Millisecond):
				}
				continue
			}
			return fmt.Errorf("producer %d message %d: %w", prod, seq, err)
		}
	}
	return nil
}

// checker verifies arrival: per producer, in order, every message once
// (dups counts repeats of the previous message, allowed only if allowDup).
type checker struct {
	mu       sync.Mutex
	t        testing.TB
	next     map[byte]uint64
	dups     int
	allowDup bool
	total    int
	done     chan struct{}
	fail     chan struct{}
	want     int
	failed   error
}

func newChecker(t testing.TB, want int, allowDup bool) *checker {
	return &checker{t: t, next: map[byte]uint64{}, allowDup: allowDup, want: want, done: make(chan struct{}), fail: make(chan struct{})}
}

func (c *checker) add(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failed != nil {
		return
	}
	prod, seq := parse(c.t, b)
	n := c.next[prod]
	switch {
	case seq == n:
		c.next[prod] = n + 1
		c.total++
		if c.total == c.want {
			close(c.done)
		}
	case c.allowDup && n > 0 && seq == n-1:
		c.dups++
	default:
		c.failed = fmt.Errorf("producer %d: message %d arrived, want %d (out of order, lost or duplicated)", prod, seq, n)
		c.t.Error(c.failed)
		close(c.fail)
	}
}

// consume reads ring c into chk until ctx ends, tolerating producer deaths.
func consume(ctx context.Context, c *ring.Consumer, chk *checker) {
	consumePaced(ctx, c, chk, 0)
}

// consumePaced is consume that sleeps a millisecond every pace messages.
func consumePaced(ctx context.Context, c *ring.Consumer, chk *checker, pace int) {
	buf := make([]byte, 0, 64<<10)
	for i := 0; ctx.Err() == nil; i++ {
		if pace > 0 && i%pace == 0 {
			time.Sleep(time.Millisecond)
		}
		var err error
		buf, err = c.RecvAppendContext(ctx, buf[:0])
		if err == nil {
			chk.add(buf)
			continue
		}
		if errors.Is(err, io.EOF) || errors.Is(err, ring.ErrPeerDead) {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		if ctx.Err() == nil {
			chk.t.Errorf("consumer: %v", err)
		}
		return
	}
}

// startChild runs Main(args) in a re-executed test binary.
func startChild(t testing.TB, args ...string) (*exec.Cmd, *lockedWriter) {
	t.Helper()
	b, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	out := &lockedWriter{}
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

// lockedWriter collects a child's stderr.
type lockedWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// streamIDs reads every message of the stream and returns their
// Nats-Msg-Ids and payloads in stream order.
func streamIDs(t testing.TB, nc *nats.Conn, stream string) ([]string, [][]byte) {
	t.Helper()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := int(info.State.Msgs)
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	it, err := cons.Messages()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Stop()
	ids := make([]string, 0, n)
	data := make([][]byte, 0, n)
	for len(ids) < n {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			t.Fatalf("reading the stream after %d of %d: %v", len(ids), n, err)
		}
		ids = append(ids, m.Headers().Get(hdrMsgID))
		data = append(data, m.Data())
	}
	return ids, data
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wait waits for every message, or a failure, or d.
func (c *checker) wait(t testing.TB, d time.Duration, status func() string) {
	t.Helper()
	select {
	case <-c.done:
	case <-c.fail:
		t.Fatalf("stopped at the first wrong message; %s", status())
	case <-time.After(d):
		c.mu.Lock()
		got := c.total
		c.mu.Unlock()
		t.Fatalf("timed out after %v: %d of %d arrived; %s", d, got, c.want, status())
	}
}

// publishAsync publishes with flow control: when too many publishes await
// their acknowledgements, it waits for them and tries again.
func publishAsync(js jetstream.JetStream, subj string, data []byte) error {
	for {
		_, err := js.PublishAsync(subj, data)
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return err
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(time.Second):
		}
	}
}
