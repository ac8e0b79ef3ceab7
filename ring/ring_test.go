package ring_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/ringwire/ringwire/ring"
)

// newRing creates a ring in a fresh directory and closes it at the end.
func newRing(t testing.TB, o ring.Options) *ring.Ring {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	r, err := ring.Create("", o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func roles(t testing.TB, r *ring.Ring) (*ring.Producer, *ring.Consumer) {
	t.Helper()
	p, err := r.Producer()
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	return p, c
}

// pattern is the deterministic content of message i with n bytes: both
// sides can make it, so the receiver checks every byte.
var patternBuf = func() []byte {
	b := make([]byte, 1<<17)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}()

func pattern(i, n int) []byte { return patternBuf[i%4096 : i%4096+n] }

func TestSendRecvSizes(t *testing.T) {
	for _, checksum := range []bool{false, true} {
		t.Run(fmt.Sprintf("checksum=%v", checksum), func(t *testing.T) {
			r := newRing(t, ring.Options{Capacity: 8192, Checksum: checksum})
			p, c := roles(t, r)
			sizes := []int{0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, r.MaxMessage()}
			for i, n := range sizes {
				if err := p.TrySend(pattern(i, n)); err != nil {
					t.Fatalf("send %d bytes: %v", n, err)
				}
				got, err := c.TryRecv()
				if err != nil {
					t.Fatalf("recv %d bytes: %v", n, err)
				}
				if !bytes.Equal(got, pattern(i, n)) {
					t.Fatalf("message of %d bytes came back as %d bytes, different", n, len(got))
				}
			}
			if _, err := c.TryRecv(); !errors.Is(err, ring.ErrEmpty) {
				t.Fatalf("TryRecv on a drained ring: %v", err)
			}
			if err := p.Close(); err != nil { // publishes the tail and counters
				t.Fatal(err)
			}
			s := r.Stats()
			if s.Sent != uint64(len(sizes)) {
				t.Errorf("stats sent %d after Close, want %d", s.Sent, len(sizes))
			}
			if s.Head != s.Tail {
				t.Errorf("head %d tail %d after draining", s.Head, s.Tail)
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	r := newRing(t, ring.Options{Capacity: 4096, MaxMessage: 100})
	p, c := roles(t, r)
	if r.MaxMessage() != 100 {
		t.Fatalf("MaxMessage %d", r.MaxMessage())
	}
	before := r.Stats().Tail
	for _, f := range []func() error{
		func() error { return p.TrySend(make([]byte, 101)) },
		func() error { return p.Send(make([]byte, 101)) },
		func() error { _, err := p.Reserve(101); return err },
		func() error {
			_, err := p.SendBatch(context.Background(), [][]byte{{1}, make([]byte, 101)})
			return err
		},
	} {
		if err := f(); !errors.Is(err, ring.ErrTooLarge) {
			t.Fatalf("oversized message: %v, want ErrTooLarge", err)
		}
	}
	// Only the batch's first message went in.
	if got, err := c.TryRecv(); err != nil || !bytes.Equal(got, []byte{1}) {
		t.Fatalf("after rejected sends: %v %v", got, err)
	}
	if _, err := c.TryRecv(); !errors.Is(err, ring.ErrEmpty) {
		t.Fatalf("an oversized message was written: %v", err)
	}
	// Nothing but the batch's first message (one 16-byte frame) moved the
	// tail, published exactly at Close.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if d := r.Stats().Tail - before; d != 16 {
		t.Fatalf("the tail moved %d bytes, want 16", d)
	}
}

func TestFullAndEmpty(t *testing.T) {
	r := newRing(t, ring.Options{Capacity: 4096})
	p, c := roles(t, r)
	msg := make([]byte, 100) // 112-byte frames
	n := 0
	for ; ; n++ {
		err := p.TrySend(msg)
		if errors.Is(err, ring.ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// 4096 bytes, 8 kept free for the next length word: 36 frames of 112.
	if n != (4096-8)/112 {
		t.Fatalf("%d messages fit, want %d", n, (4096-8)/112)
	}
	if _, err := p.TryReserve(100); !errors.Is(err, ring.ErrFull) {
		t.Fatalf("TryReserve on a full ring: %v", err)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := p.SendContext(ctx, msg); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SendContext on a full ring: %v", err)
	}
	if time.Since(start) < 30*time.Millisecond {
		t.Fatal("SendContext returned before its deadline")
	}
	for i := range n {
		if _, err := c.TryRecv(); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if _, err := c.TryRecv(); !errors.Is(err, ring.ErrEmpty) {
		t.Fatalf("the timed-out send wrote something: %v", err)
	}
	if s := r.Stats(); s.Full == 0 {
		t.Error("stats do not count the full ring")
	}
}

// TestWrapAtEveryAlignment sends runs of every frame size through a small
// ring, so records and padding land at every 8-byte offset of the data
// region, and checks every byte.
func TestWrapAtEveryAlignment(t *testing.T) {
	r := newRing(t, ring.Options{Capacity: 4096, Checksum: true})
	p, c := roles(t, r)
	i := 0
	for size := 0; size <= 600; size += 7 {
		for range 4096/(size+16) + 3 { // more than a lap per size
			if err := p.TrySend(pattern(i, size)); err != nil {
				t.Fatalf("message %d of %d bytes: %v", i, size, err)
			}
			got, err := c.TryRecv()
			if err != nil || !bytes.Equal(got, pattern(i, size)) {
				t.Fatalf("message %d of %d bytes: %v", i, size, err)
			}
			i++
		}
	}
	if s := r.Stats(); s.Head < 10*4096 {
		t.Fatalf("only %d bytes went through", s.Head)
	}
}

func TestPeekRelease(t *testing.T) {
	r := newRing(t, ring.Options{Capacity: 4096})
	p, c := roles(t, r)
	if err := c.Release(); !errors.Is(err, ring.ErrPending) {
		t.Fatalf("Release with nothing peeked: %v", err)
	}
	if _, err := c.TryPeek(); !errors.Is(err, ring.ErrEmpty) {
		t.Fatalf("TryPeek on an empty ring: %v", err)
	}
	for _, m := range []string{"one", "two"} {
		if err := p.Send([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.Peek()
	if err != nil || string(got) != "one" {
		t.Fatalf("Peek: %q %v", got, err)
	}
	if _, err := c.TryRecv(); !errors.Is(err, ring.ErrPending) {
		t.Fatalf("receive while a message is peeked: %v", err)
	}
	if _, err := c.TryPeek(); !errors.Is(err, ring.ErrPending) {
		t.Fatalf("peek while a message is peeked: %v", err)
	}
	if err := c.Release(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Recv(); err != nil || string(got) != "two" {
		t.Fatalf("after Release: %q %v", got, err)
	}
}

func TestReserveCommit(t *testing.T) {
	r := newRing(t, ring.Options{Capacity: 4096, Checksum: true})
	p, c := roles(t, r)
	if err := p.Commit(); !errors.Is(err, ring.ErrPending) {
		t.Fatalf("Commit without Reserve: %v", err)
	}
	buf, err := p.Reserve(5)
	if err != nil {
		t.Fatal(err)
	}
	if len(buf) != 5 || cap(buf) != 5 {
		t.Fatalf("reservation len %d cap %d", len(buf), cap(buf))
	}
	copy(buf, "hello")
	if _, err := c.TryRecv(); !errors.Is(err, ring.ErrEmpty) {
		t.Fatalf("a reserved message is visible before Commit: %v", err)
	}
	if _, err := p.Reserve(1); !errors.Is(err, ring.ErrPending) {
		t.Fatalf("second Reserve: %v", err)
	}
	if err := p.TrySend(nil); !errors.Is(err, ring.ErrPending) {
		t.Fatalf("send during a reservation: %v", err)
	}
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.TryRecv(); err != nil || string(got) != "hello" {
		t.Fatalf("committed message: %q %v", got, err)
	}
}

func TestSendBatch(t *testing.T) {
	r := newRing(t, ring.Options{Capacity: 4096})
	p, c := roles(t, r)
	var msgs [][]byte
	for i := range 200 { // several laps: the batch waits for room as it goes
		msgs = append(msgs, pattern(i, i%90))
	}
	done := make(chan error, 1)
	go func() {
		n, err := p.SendBatch(context.Background(), msgs)
		if err == nil && n != len(msgs) {
			err = fmt.Errorf("SendBatch sent %d of %d", n, len(msgs))
		}
		done <- err
	}()
	for i := range msgs {
		got, err := c.Recv()
		if err != nil || !bytes.Equal(got, msgs[i]) {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestCloseGivesEOF(t *testing.T) {
	r := newRing(t, ring.Options{Capacity: 4096})
	p, c := roles(t, r)
	for i := range 10 {
		if err := p.Send(pattern(i, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if err := p.Send(nil); !errors.Is(err, ring.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	for i := range 10 {
		got, err := c.Recv()
		if err != nil || !bytes.Equal(got, pattern(i, i)) {
			t.Fatalf("message %d after the producer closed: %v", i, err)
		}
	}
	if _, err := c.Recv(); err != io.EOF {
		t.Fatalf("Recv after the last message: %v, want io.EOF", err)
	}
}

// TestEOFWakesParkedConsumer: a consumer parked on the futex learns of the
// producer's Close at once, not at its next liveness check.
func TestEOFWakesParkedConsumer(t *testing.T) {
	r := newRing(t, ring.Options{Capacity: 4096, Wait: ring.Wait{Mode: ring.Block, PeerCheck: time.Hour}})
	p, c := roles(t, r)
	got := make(chan error, 1)
	go func() { _, err := c.Recv(); got <- err }()
	time.Sleep(20 * time.Millisecond) // let it park; the test holds either way
	p.Close()
	select {
	case err := <-got:
		if err != io.EOF {
			t.Fatalf("parked Recv: %v, want io.EOF", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the producer's Close did not wake the parked consumer")
	}
}

// TestConsumerCloseUnblocksSend: a producer waiting on a full ring returns
// ErrClosed as soon as the consumer closes, without writing half a message.
func TestConsumerCloseUnblocksSend(t *testing.T) {
	for _, mode := range []ring.WaitMode{ring.Adaptive, ring.Block, ring.Spin} {
		t.Run(mode.String(), func(t *testing.T) {
			r := newRing(t, ring.Options{Capacity: 4096, Wait: ring.Wait{Mode: mode, PeerCheck: time.Hour}})
			p, c := roles(t, r)
			sent := 0
			for p.TrySend(make([]byte, 500)) == nil {
				sent++
			}
			got := make(chan error, 1)
			go func() { got <- p.Send(make([]byte, 500)) }()
			time.Sleep(20 * time.Millisecond)
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-got:
				if !errors.Is(err, ring.ErrClosed) {
					t.Fatalf("blocked Send: %v, want ErrClosed", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the consumer's Close did not unblock Send")
			}
			if err := p.TrySend(nil); !errors.Is(err, ring.ErrClosed) {
				t.Fatalf("TrySend to a closed consumer: %v", err)
			}
			// A new consumer finds exactly the messages sent before.
			p.Close()
			c2, err := r.Consumer()
			if err != nil {
				t.Fatal(err)
			}
			for i := range sent {
				if m, err := c2.TryRecv(); err != nil || len(m) != 500 {
					t.Fatalf("message %d of %d: %d bytes, %v", i, sent, len(m), err)
				}
			}
			if m, err := c2.TryRecv(); !errors.Is(err, ring.ErrEmpty) {
				t.Fatalf("after the %d messages sent: %d bytes, %v: the unblocked Send wrote into the ring", sent, len(m), err)
			}
		})
	}
}

func TestRecvDeadlineAndCancel(t *testing.T) {
	for _, mode := range []ring.WaitMode{ring.Adaptive, ring.Spin, ring.Yield, ring.Block} {
		t.Run(mode.String(), func(t *testing.T) {
			r := newRing(t, ring.Options{Capacity: 4096, Wait: ring.Wait{Mode: mode}})
			_, c := roles(t, r)
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			if _, err := c.RecvContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("RecvContext on an empty ring: %v", err)
			}
			if d := time.Since(start); d < 20*time.Millisecond {
				t.Fatalf("returned after %v, before the deadline", d)
			}
			ctx, cancel = context.WithCancel(context.Background())
			time.AfterFunc(20*time.Millisecond, cancel)
			if _, err := c.PeekContext(ctx); !errors.Is(err, context.Canceled) {
				t.Fatalf("PeekContext cancelled: %v", err)
			}
		})
	}
}

func TestRoles(t *testing.T) {
	dir := t.TempDir()
	r := newRing(t, ring.Options{Dir: dir})
	p, c := roles(t, r)
	if _, err := r.Producer(); !errors.Is(err, ring.ErrBusy) {
		t.Fatalf("second producer: %v", err)
	}
	if _, err := r.Consumer(); !errors.Is(err, ring.ErrBusy) {
		t.Fatalf("second consumer: %v", err)
	}
	// Another handle on the same ring, as another process would have.
	if _, err := ring.OpenProducer(r.Name(), ring.AttachOptions{Dir: dir}); !errors.Is(err, ring.ErrBusy) {
		t.Fatalf("second producer through another handle: %v", err)
	}
	p.Close()
	c.Close()
	p2, err := ring.OpenProducer(r.Name(), ring.AttachOptions{Dir: dir})
	if err != nil {
		t.Fatal("producer role not free after Close:", err)
	}
	c2, err := ring.OpenConsumer(r.Name(), ring.AttachOptions{Dir: dir})
	if err != nil {
		t.Fatal("consumer role not free after Close:", err)
	}
	if err := p2.Send([]byte("again")); err != nil {
		t.Fatal(err)
	}
	if got, err := c2.Recv(); err != nil || string(got) != "again" {
		t.Fatalf("%q %v", got, err)
	}
	p2.Close()
	c2.Close()
}

// TestRingCloseKeepsSegment: closing every handle leaves the ring in place
// with its messages; only Unlink removes it.
func TestRingCloseKeepsSegment(t *testing.T) {
	dir := t.TempDir()
	r, err := ring.Create("keep", ring.Options{Dir: dir, Capacity: 4096})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := roles(t, r)
	p.Send([]byte("survives"))
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := ring.OpenConsumer("keep", ring.AttachOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Recv(); err != nil || string(got) != "survives" {
		t.Fatalf("%q %v", got, err)
	}
	c.Close()
	if err := r.Unlink(); err != nil {
		t.Fatal(err)
	}
	if _, err := ring.Open("keep", ring.AttachOptions{Dir: dir}); err == nil {
		t.Fatal("Open after Unlink succeeded")
	}
}

// TestConcurrentGoroutines runs a producer and a consumer goroutine
// through every wait strategy; under -race it checks the Go side of the
// handles.
func TestConcurrentGoroutines(t *testing.T) {
	for _, mode := range []ring.WaitMode{ring.Adaptive, ring.Spin, ring.Yield, ring.Block} {
		t.Run(mode.String(), func(t *testing.T) {
			r := newRing(t, ring.Options{Capacity: 4096, Wait: ring.Wait{Mode: mode}})
			p, c := roles(t, r)
			const n = 20000
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range n {
					if err := p.Send(pattern(i, i%300)); err != nil {
						t.Error(err)
						return
					}
				}
				p.Close()
			}()
			buf := make([]byte, 0, 512)
			for i := 0; ; i++ {
				got, err := c.RecvAppend(buf[:0])
				if err == io.EOF {
					if i != n {
						t.Fatalf("EOF after %d of %d", i, n)
					}
					break
				}
				if err != nil || !bytes.Equal(got, pattern(i, i%300)) {
					t.Fatalf("message %d: %v", i, err)
				}
			}
			wg.Wait()
		})
	}
}
