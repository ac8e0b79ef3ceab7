package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"
)

// mpscRing makes an MPSC ring for the stall tests.
func mpscRing(t *testing.T, unblock time.Duration) *Ring {
	t.Helper()
	r, err := Create("", Options{Dir: t.TempDir(), Mode: MPSC, Slots: 4, Capacity: 4096,
		Wait: Wait{Unblock: unblock, PeerCheck: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// die makes a producer look like a process that died: its lock is dropped
// and nothing else happens, its claim stays as it was.
func die(p *Producer) { p.lock.Unlock() }

// recvWithin receives with a deadline.
func recvWithin(c *Consumer, d time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return c.RecvContext(ctx)
}

// TestStallCases: a record at the consumer's head that will never be
// committed is skipped, the ring goes on, and the skip is counted.
func TestStallCases(t *testing.T) {
	for _, tc := range []struct {
		name string
		// stall leaves an uncommitted record from producer p at the head.
		stall    func(t *testing.T, r *Ring, p *Producer)
		wantDead bool
		wantSlot bool
	}{
		{"dead producer, zero header after the tail moved", func(t *testing.T, r *Ring, p *Producer) {
			if _, err := p.Reserve(100); err != nil {
				t.Fatal(err)
			}
			die(p)
		}, true, true},
		{"dead producer, negative length", func(t *testing.T, r *Ring, p *Producer) {
			if _, err := p.Reserve(100); err != nil {
				t.Fatal(err)
			}
			neg := int32(-108)
			binary.LittleEndian.PutUint32(r.data[p.resOff:], uint32(neg))
			die(p)
		}, true, true},
		{"dead producer after the padding of a wrapped record", func(t *testing.T, r *Ring, p *Producer) {
			// Fill most of a lap and drain it, so the next claim wraps.
			c := r.handles[0].(*Consumer)
			for range 9 {
				if err := p.Send(make([]byte, 400)); err != nil {
					t.Fatal(err)
				}
				if _, err := c.TryRecv(); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := p.Reserve(1000); err != nil {
				t.Fatal(err)
			}
			if p.resOff != 0 {
				t.Fatalf("reservation at %d, want a wrap to 0", p.resOff)
			}
			die(p)
		}, true, true},
		{"claim with no slot, zero header", func(t *testing.T, r *Ring, p *Producer) {
			// A writer outside the slot protocol moved the tail and died.
			tl := le64(r.tail.Load())
			r.tail.Store(le64(tl + 64))
			die(p)
		}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mpscRing(t, 30*time.Millisecond)
			c, err := r.Consumer()
			if err != nil {
				t.Fatal(err)
			}
			var skips []Skip
			c.OnSkip(func(s Skip) { skips = append(skips, s) })
			p, _ := r.Producer()
			tc.stall(t, r, p)
			q, err := r.Producer() // a live producer sends after the stalled record
			if err != nil {
				t.Fatal(err)
			}
			if err := q.Send([]byte("after the stall")); err != nil {
				t.Fatal(err)
			}
			got, err := recvWithin(c, 5*time.Second)
			if err != nil || string(got) != "after the stall" {
				t.Fatalf("after the stalled record: %q %v", got, err)
			}
			if len(skips) != 1 || skips[0].OwnerDead != tc.wantDead || (skips[0].Slot >= 0) != tc.wantSlot {
				t.Fatalf("skips %+v", skips)
			}
			c.flushStats()
			if s := r.Stats(); s.Skipped != 1 {
				t.Fatalf("stats count %d skips", s.Skipped)
			}
			// The ring keeps working for many laps after the skip.
			for i := range 200 {
				if err := q.Send(make([]byte, i)); err != nil {
					t.Fatal(err)
				}
				if m, err := c.TryRecv(); err != nil || len(m) != i {
					t.Fatalf("message %d after the skip: %v", i, err)
				}
			}
		})
	}
}

// TestStalledLiveProducerCommitsLate: a live producer that holds a claim
// past Unblock has its record skipped; its late Commit fails with
// ErrSkipped and writes nothing anyone reads; the space it held comes back
// once it lets go, and the ring carries on.
func TestStalledLiveProducerCommitsLate(t *testing.T) {
	r := mpscRing(t, 20*time.Millisecond)
	c, _ := r.Consumer()
	var skips []Skip
	c.OnSkip(func(s Skip) { skips = append(skips, s) })
	slow, _ := r.Producer()
	fast, _ := r.Producer()
	buf, err := slow.Reserve(200)
	if err != nil {
		t.Fatal(err)
	}
	if err := fast.Send([]byte("fast")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got, err := recvWithin(c, 5*time.Second)
	if err != nil || string(got) != "fast" {
		t.Fatalf("%q %v", got, err)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Fatalf("skipped a live producer's record after %v, before Unblock", d)
	}
	if len(skips) != 1 || skips[0].OwnerDead {
		t.Fatalf("skips %+v", skips)
	}
	// The skipped space is pinned: the shared head stays before it.
	if h := le64(r.head.Load()); h > skips[0].Position {
		t.Fatalf("head %d moved past the pinned record at %d", h, skips[0].Position)
	}
	copy(buf, "late")
	if err := slow.Commit(); !errors.Is(err, ErrSkipped) {
		t.Fatalf("late Commit: %v, want ErrSkipped", err)
	}
	// Many laps: the pinned space is released and nothing is corrupted.
	for i := range 300 {
		p := []*Producer{slow, fast}[i%2]
		if err := p.Send(make([]byte, 50+i%100)); err != nil {
			t.Fatal(err)
		}
		if m, err := recvWithin(c, 5*time.Second); err != nil || len(m) != 50+i%100 {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if len(c.pins) != 0 {
		t.Fatal("pin never resolved")
	}
}

// TestMPSCGoroutines: many producer goroutines, one consumer; each
// producer's messages arrive in order, none lost or twice. Run with -race.
func TestMPSCGoroutines(t *testing.T) {
	for _, mode := range []WaitMode{Adaptive, Block} {
		t.Run(mode.String(), func(t *testing.T) {
			r, err := Create("", Options{Dir: t.TempDir(), Mode: MPSC, Slots: 8, Capacity: 8192, Checksum: true, Wait: Wait{Mode: mode}})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			c, _ := r.Consumer()
			const producers, each = 8, 5000
			var wg sync.WaitGroup
			for id := range producers {
				p, err := r.Producer()
				if err != nil {
					t.Fatal(err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					msg := make([]byte, 300)
					for seq := range each {
						n := 8 + (seq*7+id)%290
						binary.LittleEndian.PutUint32(msg, uint32(id))
						binary.LittleEndian.PutUint32(msg[4:], uint32(seq))
						if err := p.Send(msg[:n]); err != nil {
							t.Error(err)
							return
						}
					}
					p.Close()
				}()
			}
			next := make([]int, producers)
			for total := 0; ; total++ {
				m, err := recvWithin(c, 10*time.Second)
				if errors.Is(err, errEOF) {
					if total != producers*each {
						t.Fatalf("EOF after %d of %d", total, producers*each)
					}
					break
				}
				if err != nil {
					t.Fatalf("after %d: %v", total, err)
				}
				id, seq := binary.LittleEndian.Uint32(m), int(binary.LittleEndian.Uint32(m[4:]))
				if seq != next[id] || len(m) != 8+(seq*7+int(id))%290 {
					t.Fatalf("producer %d: got message %d (%d bytes), want %d", id, seq, len(m), next[id])
				}
				next[id]++
			}
			wg.Wait()
			if _, err := r.Producer(); err != nil {
				t.Fatalf("slots not free after Close: %v", err)
			}
		})
	}
}

func TestMPSCSlotsBusy(t *testing.T) {
	r, err := Create("", Options{Dir: t.TempDir(), Mode: MPSC, Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a, _ := r.Producer()
	if _, err := r.Producer(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Producer(); !errors.Is(err, ErrBusy) {
		t.Fatalf("third producer on two slots: %v, want ErrBusy", err)
	}
	a.Close()
	if _, err := r.Producer(); err != nil {
		t.Fatalf("slot not free after Close: %v", err)
	}
}

var errEOF = io.EOF

// TestAbandonedReservationUnalignedMax: a producer that closes with a
// reservation open leaves padding of the frame's aligned size, which the
// consumer accepts even when the max frame is not a multiple of 8.
func TestAbandonedReservationUnalignedMax(t *testing.T) {
	r, err := Create("", Options{Dir: t.TempDir(), Mode: MPSC, MaxMessage: 13, Capacity: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, _ := r.Consumer()
	p, _ := r.Producer()
	q, _ := r.Producer()
	if _, err := p.Reserve(13); err != nil {
		t.Fatal(err)
	}
	p.Close()
	q.Send([]byte("next"))
	if m, err := c.TryRecv(); err != nil || string(m) != "next" {
		t.Fatalf("after an abandoned reservation: %q %v", m, err)
	}
}

// TestTakeoverAfterPin: a consumer closes while a stalled producer's
// record is pinned; the producer's late commit fails; the next consumer
// skips exactly the marked span and never delivers the late payload.
func TestTakeoverAfterPin(t *testing.T) {
	dir := t.TempDir()
	r, err := Create("pin", Options{Dir: dir, Mode: MPSC, Capacity: 4096, Wait: Wait{Unblock: 20 * time.Millisecond, PeerCheck: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, _ := r.Consumer()
	slow, _ := r.Producer()
	fast, _ := r.Producer()
	buf, err := slow.Reserve(64)
	if err != nil {
		t.Fatal(err)
	}
	fast.Send([]byte("after"))
	if m, err := recvWithin(c, 5*time.Second); err != nil || string(m) != "after" {
		t.Fatalf("%q %v", m, err)
	}
	c.Close()
	for i := range buf {
		buf[i] = 'E' // a late writer's bytes, looking like anything
	}
	if err := slow.Commit(); !errors.Is(err, ErrSkipped) {
		t.Fatalf("late commit: %v", err)
	}
	c2, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	fast.Send([]byte("last"))
	var got []string
	for len(got) == 0 || got[len(got)-1] != "last" {
		m, err := recvWithin(c2, 5*time.Second)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, string(m))
	}
	// "after" was read but not released (it stood behind the pin), so it
	// may come again; the late payload never does.
	if len(got) > 2 || (len(got) == 2 && got[0] != "after") {
		t.Fatalf("the consumer that took over delivered %q", got)
	}
}

// TestTwoLiveClaims: while a producer that lost the CAS for a position
// still shows a claim on it, the consumer does not guess which of two live
// producers owns the stalled record, even past Unblock; once the loser
// clears its claim, the winner's record is skipped and pinned.
func TestTwoLiveClaims(t *testing.T) {
	r := mpscRing(t, time.Millisecond)
	c, _ := r.Consumer()
	c.probeEvery = 0
	winner, _ := r.Producer()
	loser, _ := r.Producer()
	if _, err := winner.Reserve(100); err != nil {
		t.Fatal(err)
	}
	// The loser announced the same start, with another length, and lost.
	loser.slot.length.Store(le32(64))
	loser.slot.claim.Store(winner.slot.claim.Load())
	deadline := time.Now().Add(20 * time.Millisecond)
	for time.Now().Before(deadline) {
		if _, err := c.TryRecv(); !errors.Is(err, ErrEmpty) {
			t.Fatalf("with two live claims on the record: %v", err)
		}
	}
	if s := r.Stats().Skipped; s != 0 || len(c.pins) != 0 {
		t.Fatalf("skipped (%d) or pinned (%d) with two live claims", s, len(c.pins))
	}
	loser.slot.claim.Store(le64(noClaim))
	for range 100 {
		c.TryRecv()
		time.Sleep(time.Millisecond)
		if len(c.pins) == 1 {
			break
		}
	}
	if len(c.pins) != 1 || c.pins[0].slot != winner.slot {
		t.Fatalf("pins %+v after the loser cleared its claim", c.pins)
	}
	if err := winner.Commit(); !errors.Is(err, ErrSkipped) {
		t.Fatalf("winner's late commit: %v", err)
	}
}

// TestMPSCStaleTail: many producers through a tiny ring, so a producer's
// tail is often stale by the time it reloads the head (the consumer may
// have passed it): that is a retry, never corruption.
func TestMPSCStaleTail(t *testing.T) {
	// More threads than cores: the OS preempts producers between their
	// loads of the tail and the head.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(12))
	r, err := Create("", Options{Dir: t.TempDir(), Mode: MPSC, Slots: 16, Capacity: minCapacity, Wait: Wait{Mode: Yield}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, _ := r.Consumer()
	const producers, each = 11, 30000
	errs := make(chan error, producers)
	for range producers {
		p, err := r.Producer()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			msg := make([]byte, 8)
			for range each {
				if err := p.Send(msg); err != nil {
					errs <- err
					return
				}
			}
			errs <- p.Close()
		}()
	}
	buf := make([]byte, 0, 64)
	for i := range producers * each {
		if _, err := c.RecvAppend(buf[:0]); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	for range producers {
		if err := <-errs; err != nil {
			t.Fatalf("producer: %v", err)
		}
	}
}

// TestRoomAtStaleTail: an MPSC producer whose tail is stale by the time it
// reloads the head retries; a head beyond the live tail is corruption.
func TestRoomAtStaleTail(t *testing.T) {
	r := mpscRing(t, time.Second)
	p, _ := r.Producer()
	r.tail.Store(le64(8192))
	r.head.Store(le64(6000))
	if room, stale, err := p.roomAt(4096, 64); err != nil || !stale || room {
		t.Fatalf("stale tail: room %v stale %v err %v; want a retry", room, stale, err)
	}
	if room, stale, err := p.roomAt(8192, 64); err != nil || stale || !room {
		t.Fatalf("fresh tail: room %v stale %v err %v", room, stale, err)
	}
	r.head.Store(le64(9000))
	if _, _, err := p.roomAt(4096, 64); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("head beyond the live tail: %v, want ErrCorrupt", err)
	}
}
