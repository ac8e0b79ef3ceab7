package ring_test

import (
	"fmt"
	"io"
	"testing"

	"github.com/ringwire/ringwire/ring"
)

var benchSizes = []int{8, 64, 1024, 65536}

const benchCapacity = 1 << 20

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkSPSC streams messages one way, producer and consumer in two
// goroutines or two processes, with the default (Adaptive) wait strategy.
func BenchmarkSPSC(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("goroutines/copy/%d", size), func(b *testing.B) { benchGoroutines(b, size, false) })
	}
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("goroutines/zerocopy/%d", size), func(b *testing.B) { benchGoroutines(b, size, true) })
	}
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("processes/%d", size), func(b *testing.B) { benchProcesses(b, size) })
	}
}

// benchGoroutines: with zerocopy the producer fills a reservation
// (Reserve, copy, Commit) and the consumer reads in place (Peek, Release);
// otherwise Send and RecvAppend, a copy on each side.
func benchGoroutines(b *testing.B, size int, zerocopy bool) {
	r := newRing(b, ring.Options{Capacity: benchCapacity})
	p, c := roles(b, r)
	msg := make([]byte, size)
	buf := make([]byte, 0, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	done := make(chan error, 1)
	go func() {
		for range b.N {
			if zerocopy {
				w, err := p.Reserve(size)
				if err != nil {
					done <- err
					return
				}
				copy(w, msg)
				p.Commit()
			} else if err := p.Send(msg); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range b.N {
		if zerocopy {
			m, err := c.Peek()
			if err != nil || len(m) != size {
				b.Fatal(err)
			}
			c.Release()
		} else if _, err := c.RecvAppend(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	reportRate(b)
}

// benchProcesses: a child process sends b.N messages with Send; this one
// receives them with RecvAppend. The clock starts at the first message, so
// the child's start-up is not counted.
func benchProcesses(b *testing.B, size int) {
	dir := b.TempDir()
	r := newRing(b, ring.Options{Dir: dir, Capacity: benchCapacity})
	c, err := r.Consumer()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	cmd := startBenchChild(b, r, dir, size, b.N+1)
	buf := make([]byte, 0, size)
	if _, err := c.RecvAppend(buf[:0]); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := c.RecvAppend(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if _, err := c.Recv(); err != io.EOF {
		b.Fatalf("after %d messages: %v", b.N, err)
	}
	if err := cmd.Wait(); err != nil {
		b.Fatal(err)
	}
	reportRate(b)
}

// BenchmarkMemcpy is the machine's copy bandwidth for the same message
// sizes, over a region as large as the benchmarks' ring, so the ring's
// bytes/s can be compared with it from one run.
func BenchmarkMemcpy(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			src := make([]byte, size)
			dst := make([]byte, benchCapacity)
			b.SetBytes(int64(size))
			off := 0
			for range b.N {
				copy(dst[off:off+size], src)
				off += size
				if off+size > len(dst) {
					off = 0
				}
			}
		})
	}
}
