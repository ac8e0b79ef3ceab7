package ring_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ringwire/ringwire/ring"
)

// Close from another goroutine. A blocked call must return ErrClosed
// promptly, whatever the wait strategy, and the role must be free once it
// has returned. The PeerCheck of an hour means no periodic check ends a
// park: only Close's own wake-up can.

// closePrompt bounds how long a blocked call may take to notice Close.
const closePrompt = 5 * time.Second

var closeWaits = []ring.WaitMode{ring.Block, ring.Adaptive, ring.Spin}

// closeCall is a call that blocks: a receive on an empty ring, or a send
// into a full lane.
type closeCall struct {
	name     string
	producer bool // blocks for room; otherwise for a message
	call     func(p *ring.Producer, c *ring.Consumer) error
}

var closeCalls = []closeCall{
	{"Recv", false, func(_ *ring.Producer, c *ring.Consumer) error { _, err := c.Recv(); return err }},
	{"RecvContext", false, func(_ *ring.Producer, c *ring.Consumer) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		_, err := c.RecvContext(ctx)
		return err
	}},
	{"RecvAppend", false, func(_ *ring.Producer, c *ring.Consumer) error {
		_, err := c.RecvAppend(make([]byte, 0, 64))
		return err
	}},
	{"RecvAppendContext", false, func(_ *ring.Producer, c *ring.Consumer) error {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, err := c.RecvAppendContext(ctx, nil)
		return err
	}},
	{"Peek", false, func(_ *ring.Producer, c *ring.Consumer) error { _, err := c.Peek(); return err }},
	{"PeekContext", false, func(_ *ring.Producer, c *ring.Consumer) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		_, err := c.PeekContext(ctx)
		return err
	}},
	{"Drain", false, func(_ *ring.Producer, c *ring.Consumer) error {
		n, err := c.Drain(context.Background(), 16, func([]byte) error { return nil })
		if n != 0 {
			return fmt.Errorf("Drain delivered %d messages from an empty ring", n)
		}
		return err
	}},
	{"Send", true, func(p *ring.Producer, _ *ring.Consumer) error { return p.Send(make([]byte, 100)) }},
	{"SendContext", true, func(p *ring.Producer, _ *ring.Consumer) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		return p.SendContext(ctx, make([]byte, 100))
	}},
	{"Reserve", true, func(p *ring.Producer, _ *ring.Consumer) error {
		_, err := p.Reserve(100)
		return err
	}},
	{"ReserveContext", true, func(p *ring.Producer, _ *ring.Consumer) error {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, err := p.ReserveContext(ctx, 100)
		return err
	}},
	{"SendBatch", true, func(p *ring.Producer, _ *ring.Consumer) error {
		n, err := p.SendBatch(context.Background(), [][]byte{make([]byte, 100), make([]byte, 100)})
		if n != 0 {
			return fmt.Errorf("SendBatch wrote %d messages into a full lane", n)
		}
		return err
	}},
}

// fillLane sends 100-byte messages until the lane is full.
func fillLane(t *testing.T, p *ring.Producer) int {
	t.Helper()
	n := 0
	for ; ; n++ {
		err := p.TrySend(make([]byte, 100))
		if errors.Is(err, ring.ErrFull) {
			return n
		}
		if err != nil {
			t.Fatalf("filling the lane: %v", err)
		}
	}
}

// startBlocked runs call in a goroutine and checks that it is still
// blocked a little later.
func startBlocked(t *testing.T, what string, call func() error) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		t.Fatalf("%s returned %v before Close, want it blocked", what, err)
	case <-time.After(20 * time.Millisecond):
	}
	return done
}

// take returns a role or fails the test.
func take[T any](t *testing.T, role func() (T, error)) T {
	t.Helper()
	h, err := role()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// wantClosed waits for a blocked call to return ErrClosed.
func wantClosed(t *testing.T, what string, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if !errors.Is(err, ring.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", what, err)
		}
	case <-time.After(closePrompt):
		t.Fatalf("%s still blocked %v after Close", what, closePrompt)
	}
}

// TestCloseUnblocksEveryCall: Close on another goroutine ends every
// blocking call, in every wait strategy, whether it is the role's own
// Close or the Ring's; the role is free afterwards.
func TestCloseUnblocksEveryCall(t *testing.T) {
	for _, mode := range closeWaits {
		for _, cc := range closeCalls {
			for _, closer := range []string{"handle", "ring"} {
				t.Run(fmt.Sprintf("%s/%s/%s", mode, cc.name, closer), func(t *testing.T) {
					dir := t.TempDir()
					w := ring.Wait{Mode: mode, PeerCheck: time.Hour}
					owner := newRing(t, ring.Options{Dir: dir, Capacity: 4096, Wait: w})
					// The roles come from a handle of their own, so that
					// closing it leaves the ring to check the roles with.
					h, err := ring.Open(owner.Name(), ring.AttachOptions{Dir: dir, Wait: w})
					if err != nil {
						t.Fatal(err)
					}
					defer h.Close()
					// The blocked role comes from h, its peer from the
					// owner: Ring.Close of h closes the blocked role only.
					// (TestRingCloseBlockedRecvSeesEOF is the case of
					// both roles on one handle.)
					var p *ring.Producer
					var c *ring.Consumer
					if cc.producer {
						p = take(t, h.Producer)
						c = take(t, owner.Consumer)
					} else {
						p = take(t, owner.Producer)
						c = take(t, h.Consumer)
					}
					if cc.producer {
						fillLane(t, p)
					}
					done := startBlocked(t, cc.name, func() error { return cc.call(p, c) })
					switch {
					case closer == "ring":
						err = h.Close()
					case cc.producer:
						err = p.Close()
					default:
						err = c.Close()
					}
					if err != nil {
						t.Errorf("Close: %v", err)
					}
					wantClosed(t, cc.name, done)
					// The closed handle refuses further calls at once.
					if err := cc.call(p, c); !errors.Is(err, ring.ErrClosed) {
						t.Errorf("%s on the closed handle: %v, want ErrClosed", cc.name, err)
					}
					// The role was given up when the call returned.
					var role io.Closer
					if cc.producer {
						p.Close()
						role, err = owner.Producer()
					} else {
						c.Close()
						role, err = owner.Consumer()
					}
					if err != nil {
						t.Fatalf("taking the role after Close: %v", err)
					}
					role.Close()
				})
			}
		}
	}
}

// TestCloseRingWithBlockedRoles: Ring.Close on one goroutine while role
// calls are blocked on others: a Recv on an empty ring, and two Sends on
// the full lanes of an MPSC ring. (One ring cannot have both a receive and
// a send blocked: a full lane holds messages for the receive. So the
// receive blocks on ring A and the sends on ring B, each through a handle
// closed at the same moment as the other.) Every blocked call returns
// ErrClosed, nothing faults when the mappings go, and new handles on the
// same names take every role.
func TestCloseRingWithBlockedRoles(t *testing.T) {
	for _, mode := range closeWaits {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			w := ring.Wait{Mode: mode, PeerCheck: time.Hour}
			ownerA := newRing(t, ring.Options{Dir: dir, Capacity: 4096, Wait: w})
			ownerB := newRing(t, ring.Options{Dir: dir, Capacity: 4096, Mode: ring.MPSC, Slots: 2, Wait: w})
			hA, err := ring.Open(ownerA.Name(), ring.AttachOptions{Dir: dir, Wait: w})
			if err != nil {
				t.Fatal(err)
			}
			hB, err := ring.Open(ownerB.Name(), ring.AttachOptions{Dir: dir, Wait: w})
			if err != nil {
				t.Fatal(err)
			}
			// The peers come from the owners: Ring.Close of hA and hB
			// closes the blocked roles only.
			pA := take(t, ownerA.Producer) // idle: the ring stays empty
			cA := take(t, hA.Consumer)
			cB := take(t, ownerB.Consumer) // holds the role; never receives
			pB0 := take(t, hB.Producer)
			pB1 := take(t, hB.Producer)
			fillLane(t, pB0)
			fillLane(t, pB1)
			recv := startBlocked(t, "Recv", func() error { _, err := cA.Recv(); return err })
			send0 := startBlocked(t, "Send lane 0", func() error { return pB0.Send(make([]byte, 100)) })
			send1 := startBlocked(t, "Send lane 1", func() error { return pB1.Send(make([]byte, 100)) })

			var wg sync.WaitGroup
			for _, h := range []*ring.Ring{hA, hB} {
				wg.Go(func() {
					if err := h.Close(); err != nil {
						t.Errorf("Ring.Close: %v", err)
					}
				})
			}
			wantClosed(t, "Recv", recv)
			wantClosed(t, "Send lane 0", send0)
			wantClosed(t, "Send lane 1", send1)
			wg.Wait()
			if _, err := cA.Recv(); !errors.Is(err, ring.ErrClosed) {
				t.Errorf("Recv after Ring.Close: %v, want ErrClosed", err)
			}
			if st := hA.Stats(); st != (ring.Stats{}) {
				t.Errorf("Stats of a closed handle: %+v, want zero", st)
			}

			pA.Close()
			cB.Close()
			// Every role of both rings is free for a new handle.
			for _, name := range []string{ownerA.Name(), ownerB.Name()} {
				h, err := ring.Open(name, ring.AttachOptions{Dir: dir})
				if err != nil {
					t.Fatal(err)
				}
				c, err := h.Consumer()
				if err != nil {
					t.Fatalf("consumer of %s after Ring.Close: %v", name, err)
				}
				for range h.Lanes() {
					if _, err := h.Producer(); err != nil {
						t.Fatalf("producer of %s after Ring.Close: %v", name, err)
					}
				}
				// The messages sent before the close are all there.
				n := 0
				for {
					if _, err := c.TryRecv(); err != nil {
						break
					}
					n++
				}
				if name == ownerB.Name() && n == 0 {
					t.Errorf("ring B: no message after the close, want the two full lanes")
				}
				h.Close()
			}
		})
	}
}

// TestCloseRacesHotLoop: Ring.Close of the producer's and the consumer's
// handles, at a random moment, while both run flat out, over and over.
// Nothing faults, and every message whose Send returned nil is received
// exactly once and in order: by the consumer of the round, or by a fresh
// one afterwards.
func TestCloseRacesHotLoop(t *testing.T) {
	rounds := 150
	if testing.Short() {
		rounds = 30
	}
	dir := t.TempDir()
	owner := newRing(t, ring.Options{Dir: dir, Capacity: 4096, MaxMessage: 256})
	rng := rand.New(rand.NewPCG(1, 2))
	next := uint64(0) // the number of the next message to send
	for round := range rounds {
		hp, err := ring.Open(owner.Name(), ring.AttachOptions{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		hc, err := ring.Open(owner.Name(), ring.AttachOptions{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		p, err := hp.Producer()
		if err != nil {
			t.Fatalf("round %d: producer: %v", round, err)
		}
		c, err := hc.Consumer()
		if err != nil {
			t.Fatalf("round %d: consumer: %v", round, err)
		}
		var sent uint64 // Sends that returned nil this round
		var got []uint64
		var sendErr, recvErr error
		var wg sync.WaitGroup
		first := next
		wg.Go(func() {
			buf := make([]byte, 256)
			for i := first; ; i++ {
				n := 8 + int(i%249)
				binary.LittleEndian.PutUint64(buf, i)
				if err := p.Send(buf[:n]); err != nil {
					sendErr = err
					return
				}
				sent++
			}
		})
		wg.Go(func() {
			buf := make([]byte, 0, 256)
			for {
				m, err := c.RecvAppend(buf[:0])
				if err != nil {
					recvErr = err
					return
				}
				if len(m) < 8 {
					recvErr = fmt.Errorf("message of %d bytes", len(m))
					return
				}
				got = append(got, binary.LittleEndian.Uint64(m))
			}
		})
		time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
		// Close the two handles at once, in either order.
		var cwg sync.WaitGroup
		hs := []*ring.Ring{hp, hc}
		if rng.IntN(2) == 0 {
			hs[0], hs[1] = hs[1], hs[0]
		}
		for _, h := range hs {
			cwg.Go(func() { h.Close() })
		}
		cwg.Wait()
		wg.Wait()
		if !errors.Is(sendErr, ring.ErrClosed) {
			t.Fatalf("round %d: Send ended with %v, want ErrClosed", round, sendErr)
		}
		if !errors.Is(recvErr, ring.ErrClosed) && recvErr != io.EOF {
			t.Fatalf("round %d: Recv ended with %v, want ErrClosed or io.EOF", round, recvErr)
		}
		// A fresh consumer takes the rest.
		hf, err := ring.Open(owner.Name(), ring.AttachOptions{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		cf, err := hf.Consumer()
		if err != nil {
			t.Fatalf("round %d: consumer after the close: %v", round, err)
		}
		for {
			m, err := cf.TryRecv()
			if err != nil {
				if err != io.EOF && !errors.Is(err, ring.ErrEmpty) {
					t.Fatalf("round %d: fresh consumer: %v", round, err)
				}
				break
			}
			got = append(got, binary.LittleEndian.Uint64(m))
		}
		hf.Close()
		if uint64(len(got)) != sent {
			t.Fatalf("round %d: %d messages sent, %d received", round, sent, len(got))
		}
		for k, v := range got {
			if v != first+uint64(k) {
				t.Fatalf("round %d: message %d is number %d, want %d", round, k, v, first+uint64(k))
			}
		}
		next += sent
	}
	t.Logf("%d rounds, %d messages", rounds, next)
}

// TestRingCloseBlockedRecvGetsErrClosed: Ring.Close of a handle that
// holds both roles of an SPSC ring, while its Consumer is blocked in Recv.
// The Producer's close (state closed, consumer woken) must not reach the
// Recv as a clean end of stream: its own handle was closed, and it returns
// ErrClosed, never io.EOF. (Ring.Close closes consumers first, and a poll
// that sees the producer closed checks its own handle again.)
func TestRingCloseBlockedRecvGetsErrClosed(t *testing.T) {
	for _, mode := range closeWaits {
		t.Run(mode.String(), func(t *testing.T) {
			w := ring.Wait{Mode: mode, PeerCheck: time.Hour}
			dir := t.TempDir()
			owner := newRing(t, ring.Options{Dir: dir, Capacity: 4096, Wait: w})
			h, err := ring.Open(owner.Name(), ring.AttachOptions{Dir: dir, Wait: w})
			if err != nil {
				t.Fatal(err)
			}
			_, c := roles(t, h) // the Producer first, as a sender-and-receiver handle takes them
			done := startBlocked(t, "Recv", func() error { _, err := c.Recv(); return err })
			h.Close()
			wantClosed(t, "Recv", done)
		})
	}
}
