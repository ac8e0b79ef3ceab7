package ring_test

import (
	"fmt"
	"testing"

	"github.com/ringwire/ringwire/ring"
)

// TestHotPathsAllocateNothing: sending and the append and zero-copy
// receives allocate nothing, with and without checksums.
func TestHotPathsAllocateNothing(t *testing.T) {
	for _, o := range []ring.Options{{}, {Checksum: true}, {Mode: ring.MPSC}, {Mode: ring.MPSC, Checksum: true}} {
		o.Capacity = 1 << 16
		checksum := fmt.Sprintf("%v, checksum %v", o.Mode, o.Checksum)
		r := newRing(t, o)
		p, c := roles(t, r)
		msg := make([]byte, 100)
		buf := make([]byte, 0, 256)
		for _, tc := range []struct {
			name string
			fn   func() error
		}{
			{"TrySend+TryRecvAppend", func() error {
				if err := p.TrySend(msg); err != nil {
					return err
				}
				_, err := c.TryRecvAppend(buf[:0])
				return err
			}},
			{"Send+RecvAppend", func() error {
				if err := p.Send(msg); err != nil {
					return err
				}
				_, err := c.RecvAppend(buf[:0])
				return err
			}},
			{"Reserve+Commit+Peek+Release", func() error {
				b, err := p.Reserve(len(msg))
				if err != nil {
					return err
				}
				copy(b, msg)
				if err := p.Commit(); err != nil {
					return err
				}
				if _, err := c.Peek(); err != nil {
					return err
				}
				return c.Release()
			}},
			{"TryReserve+Commit+TryPeek+Release", func() error {
				b, err := p.TryReserve(len(msg))
				if err != nil {
					return err
				}
				copy(b, msg)
				if err := p.Commit(); err != nil {
					return err
				}
				if _, err := c.TryPeek(); err != nil {
					return err
				}
				return c.Release()
			}},
			{"TryRecv on empty", func() error {
				if _, err := c.TryRecvAppend(buf[:0]); err != ring.ErrEmpty {
					return err
				}
				return nil
			}},
		} {
			var err error
			allocs := testing.AllocsPerRun(1000, func() {
				if e := tc.fn(); e != nil {
					err = e
				}
			})
			if err != nil {
				t.Fatalf("%s (%s): %v", tc.name, checksum, err)
			}
			if allocs != 0 {
				t.Errorf("%s (%s): %v allocations per message, want 0", tc.name, checksum, allocs)
			}
		}
	}
}
