package ring

import (
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"
)

// TestFairness: one producer saturates its lane while another sends now
// and then. Each of the slow producer's messages is received after at most
// two turns of the fast lane (2*fairBatch of its messages) from its
// commit, however much the fast lane holds: round-robin, not first come.
// The slow producer's lane is lane 1 (hot from the start) in one case, and
// lane 10 (cold: found through the ready set) in the other.
func TestFairness(t *testing.T) {
	for _, idle := range []int{0, 9} {
		t.Run(map[int]string{0: "hot lane", 9: "cold lane"}[idle], func(t *testing.T) {
			r, err := Create("", Options{Dir: t.TempDir(), Mode: MPSC, Slots: 16, Capacity: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			c, err := r.Consumer()
			if err != nil {
				t.Fatal(err)
			}
			fast, err := r.Producer()
			if err != nil {
				t.Fatal(err)
			}
			for range idle {
				if _, err := r.Producer(); err != nil {
					t.Fatal(err)
				}
			}
			slow, err := r.Producer()
			if err != nil {
				t.Fatal(err)
			}
			if want := 1 + idle; slow.Lane() != want {
				t.Fatalf("slow producer on lane %d, want %d", slow.Lane(), want)
			}
			var fastReceived atomic.Int64
			stop := make(chan struct{})
			fastDone := make(chan error, 1)
			go func() {
				var m [64]byte
				for {
					select {
					case <-stop:
						fastDone <- nil
						return
					default:
					}
					if err := fast.TrySend(m[:]); err != nil && err != ErrFull {
						fastDone <- err
						return
					}
				}
			}()
			const slowCount = 40
			type sent struct{ fastSeen int64 }
			marks := make(chan sent, slowCount)
			slowDone := make(chan error, 1)
			go func() {
				var m [16]byte
				for i := range slowCount {
					time.Sleep(2 * time.Millisecond) // let the fast lane fill up
					binary.LittleEndian.PutUint64(m[:], 1)
					if err := slow.Send(m[:]); err != nil {
						slowDone <- err
						return
					}
					_ = i
					marks <- sent{fastReceived.Load()}
				}
				slowDone <- nil
			}()
			worst := int64(0)
			for got := 0; got < slowCount; {
				m, err := c.Recv()
				if err != nil {
					t.Fatal(err)
				}
				if len(m) == 64 {
					fastReceived.Add(1)
					continue
				}
				// The slow message: how many fast ones came after it was
				// committed (its mark is taken just after the commit, so it
				// can only undercount them).
				mk := <-marks
				worst = max(worst, fastReceived.Load()-mk.fastSeen)
				got++
			}
			close(stop)
			if err := <-fastDone; err != nil {
				t.Fatal(err)
			}
			if err := <-slowDone; err != nil {
				t.Fatal(err)
			}
			t.Logf("at most %d fast messages received between a slow message's commit and its receipt; %d fast in all",
				worst, fastReceived.Load())
			if worst > 2*fairBatch {
				t.Fatalf("a slow message waited behind %d fast ones, more than two turns (%d)", worst, 2*fairBatch)
			}
		})
	}
}
