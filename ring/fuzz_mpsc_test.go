package ring

import (
	"errors"
	"testing"
	"time"
)

// FuzzCorruptMPSC writes fuzz-chosen bytes anywhere in an MPSC ring that
// holds committed records, a dead producer's open claim and a live
// producer, then lets the consumer drain it and a producer send: every
// outcome must be a message within bounds or an error, never a panic or a
// hang.
func FuzzCorruptMPSC(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x00, 0x10, 4, 0xf0, 0xff, 0xff, 0xff})                         // a negative length at the data region's start
	f.Add([]byte{0x08, 0x04, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) // a slot claim of all ones
	f.Add([]byte{0x10, 0x04, 4, 0x00, 0x00, 0x01, 0x00})                         // a huge claim length
	f.Add([]byte{0x80, 0x00, 8, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}) // tail far ahead
	f.Add([]byte{0x00, 0x01, 8, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}) // head moved
	f.Add([]byte{0x04, 0x10, 2, 0x02, 0x00})                                     // a data frame turned into padding
	f.Fuzz(func(t *testing.T, muts []byte) {
		r, err := Create("", Options{Mode: MPSC, Slots: 4, Capacity: minCapacity, Checksum: true, MaxMessage: 300,
			Wait: Wait{Unblock: time.Nanosecond, PeerCheck: time.Millisecond}})
		if err != nil {
			t.Skipf("skipping: no shared memory here: %v", err)
		}
		defer r.Unlink()
		defer r.Close()
		c, _ := r.Consumer()
		c.probeEvery = 0
		live, _ := r.Producer()
		dead, _ := r.Producer()
		for i := range 6 {
			live.TrySend(make([]byte, 40*i))
		}
		if _, err := dead.Reserve(100); err != nil {
			t.Fatal(err)
		}
		die(dead)
		live.TrySend([]byte("behind the dead claim"))
		hostileMutate(r.seg.Bytes(), muts)

		var fault error
		func() {
			defer func() {
				if v := recover(); v != nil {
					t.Fatalf("panic after mutations %x: %v", muts, v)
				}
			}()
			for range r.geo.capacity/8 + 16 {
				m, err := c.TryRecv()
				if err == nil && len(m) > r.MaxMessage() {
					t.Fatalf("a %d-byte message from a ring whose max is %d", len(m), r.MaxMessage())
				}
				if err != nil && !errors.Is(err, ErrEmpty) {
					fault = err
					break
				}
				if i := live.TrySend([]byte("more")); i != nil && !errors.Is(i, ErrFull) && !errors.Is(i, ErrCorrupt) && !errors.Is(i, ErrSkipped) {
					t.Fatalf("send into the mutated ring: %v", i)
				}
			}
		}()
		if fault != nil && !errors.Is(fault, ErrCorrupt) {
			t.Fatalf("receive from the mutated ring: %v, want ErrCorrupt or a message", fault)
		}
	})
}
