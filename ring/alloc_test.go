package ring_test

import (
	"testing"

	"github.com/ringwire/ringwire/ring"
)

// TestHotPathsAllocateNothing: sending and the append and zero-copy
// receives allocate nothing, with and without checksums.
func TestHotPathsAllocateNothing(t *testing.T) {
	for _, checksum := range []bool{false, true} {
		r := newRing(t, ring.Options{Capacity: 1 << 16, Checksum: checksum})
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
				t.Fatalf("%s (checksum %v): %v", tc.name, checksum, err)
			}
			if allocs != 0 {
				t.Errorf("%s (checksum %v): %v allocations per message, want 0", tc.name, checksum, allocs)
			}
		}
	}
}
