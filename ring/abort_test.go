package ring_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ringwire/ringwire/ring"
)

// TestAbort: an aborted reservation is never seen by the consumer, after
// partial writes, at the lane's end after a wrap's padding, and followed by
// a normal Send that reuses its space.
func TestAbort(t *testing.T) {
	for _, o := range []ring.Options{{Capacity: 4096}, {Capacity: 4096, Checksum: true}, {Capacity: 4096, Mode: ring.MPSC, Slots: 2}} {
		t.Run(fmt.Sprintf("%v/checksum=%v", o.Mode, o.Checksum), func(t *testing.T) {
			r := newRing(t, o)
			p, c := roles(t, r)
			if err := p.Abort(); !errors.Is(err, ring.ErrPending) {
				t.Fatalf("Abort without a reservation: %v", err)
			}
			// Partial writes, then abort; the next Send takes the space.
			buf, err := p.Reserve(100)
			if err != nil {
				t.Fatal(err)
			}
			copy(buf[:40], "half-written bytes that must never show")
			if err := p.Abort(); err != nil {
				t.Fatal(err)
			}
			if err := p.Abort(); !errors.Is(err, ring.ErrPending) {
				t.Fatalf("Abort twice: %v", err)
			}
			if err := p.Commit(); !errors.Is(err, ring.ErrPending) {
				t.Fatalf("Commit after Abort: %v", err)
			}
			if _, err := c.TryRecv(); !errors.Is(err, ring.ErrEmpty) {
				t.Fatalf("receive after Abort: %v", err)
			}
			if err := p.Send([]byte("after abort")); err != nil {
				t.Fatal(err)
			}
			m, err := c.TryNext()
			if err != nil || string(m.Data) != "after abort" {
				t.Fatalf("TryNext: %q %v", m.Data, err)
			}
			if m.ID.Pos != 0 {
				t.Fatalf("the Send after the Abort is at position %d, want 0 (the aborted space)", m.ID.Pos)
			}
			c.ReleaseThrough(m.ID)
			// Fill to near the lane's end, then reserve a frame that does
			// not fit there: padding is written, and the reservation is
			// aborted. The consumer steps over the padding and sees only
			// the next Send, at the lane's start.
			for i := 0; ; i++ {
				if err := p.Send(pattern(i, 600)); err != nil {
					t.Fatal(err)
				}
				if _, err := c.TryRecv(); err != nil {
					t.Fatal(err)
				}
				if st := r.Stats(); st.Head >= 3000 || i > 10 {
					break
				}
			}
			for i := 0; ; i++ {
				buf, err := p.Reserve(1500)
				if err != nil {
					t.Fatal(err)
				}
				for k := range buf {
					buf[k] = 0xAA
				}
				if err := p.Abort(); err != nil {
					t.Fatal(err)
				}
				if _, err := c.TryRecv(); !errors.Is(err, ring.ErrEmpty) {
					t.Fatalf("receive after an abort at the lane's end: %v", err)
				}
				if i == 3 {
					break
				}
			}
			if err := p.Send([]byte("wrapped")); err != nil {
				t.Fatal(err)
			}
			m, err = c.TryNext()
			if err != nil || string(m.Data) != "wrapped" {
				t.Fatalf("after aborts at the lane's end: %q %v", m.Data, err)
			}
			if m.ID.Pos%4096 != 0 {
				t.Fatalf("the Send after the wrap is at offset %d, want 0", m.ID.Pos%4096)
			}
			if err := c.ReleaseThrough(m.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := c.TryRecv(); !errors.Is(err, ring.ErrEmpty) {
				t.Fatalf("an aborted reservation was delivered: %v", err)
			}
		})
	}
}
