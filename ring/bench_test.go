package ring_test

import (
	"fmt"
	"io"
	"os/exec"
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

// BenchmarkMPSC streams 64 B and 1 KiB messages from 1, 2, 4 and 16
// producers, a lane each, to one consumer, as goroutines and as processes.
// spsc/1p is the SPSC ring with the same work, for the side-by-side ratio.
func BenchmarkMPSC(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("goroutines/spsc/1p/%d", size), func(b *testing.B) { benchMany(b, ring.SPSC, 1, size) })
		for _, n := range []int{1, 2, 4, 16} {
			b.Run(fmt.Sprintf("goroutines/mpsc/%dp/%d", n, size), func(b *testing.B) { benchMany(b, ring.MPSC, n, size) })
		}
		b.Run(fmt.Sprintf("processes/spsc/1p/%d", size), func(b *testing.B) { benchProcesses(b, size) })
		for _, n := range []int{1, 2, 4, 16} {
			b.Run(fmt.Sprintf("processes/mpsc/%dp/%d", n, size), func(b *testing.B) { benchManyProcesses(b, n, size) })
		}
	}
}

// benchMany: n producer goroutines share b.N messages; the consumer
// receives them with RecvAppend.
func benchMany(b *testing.B, mode ring.Mode, n, size int) {
	o := ring.Options{Capacity: benchCapacity, Mode: mode}
	if mode == ring.MPSC {
		o.Slots = max(n, 4)
	}
	r := newRing(b, o)
	c, err := r.Consumer()
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, size)
	buf := make([]byte, 0, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	done := make(chan error, n)
	for i := range n {
		p, err := r.Producer()
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			for range b.N/n + boolInt(i < b.N%n) {
				if err := p.Send(msg); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range b.N {
		if _, err := c.RecvAppend(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
	for range n {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

// benchManyProcesses: n producer processes share b.N messages.
func benchManyProcesses(b *testing.B, n, size int) {
	dir := b.TempDir()
	r := newRing(b, ring.Options{Dir: dir, Capacity: benchCapacity, Mode: ring.MPSC, Slots: max(n, 4)})
	c, err := r.Consumer()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	cmds := make([]*exec.Cmd, n)
	for i := range n {
		// One extra message each, received before the clock starts.
		cmds[i] = startBenchChild(b, r, dir, size, 1+b.N/n+boolInt(i < b.N%n))
	}
	buf := make([]byte, 0, size)
	// io.EOF only says that every producer attached so far has closed;
	// the others may not have attached yet.
	recv := func() {
		for {
			_, err := c.RecvAppend(buf[:0])
			if err == nil {
				return
			}
			if err != io.EOF {
				b.Fatal(err)
			}
		}
	}
	for range n {
		recv()
	}
	b.ResetTimer()
	for range b.N {
		recv()
	}
	b.StopTimer()
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}

// BenchmarkIdleLanes streams 64 B messages from one producer goroutine
// while the other lanes of the ring are held by producers that send
// nothing. The consumer polls only its hot lanes and the ready set, so the
// cost per message should not grow with the number of idle lanes.
func BenchmarkIdleLanes(b *testing.B) {
	for _, lanes := range []int{1, 16, 128, 1024} {
		b.Run(fmt.Sprint(lanes), func(b *testing.B) {
			r := newRing(b, ring.Options{Capacity: 64 << 10, Mode: ring.MPSC, Slots: lanes})
			c, err := r.Consumer()
			if err != nil {
				b.Fatal(err)
			}
			for range lanes - 1 {
				if _, err := r.Producer(); err != nil {
					b.Fatal(err)
				}
			}
			p, err := r.Producer()
			if err != nil {
				b.Fatal(err)
			}
			msg := make([]byte, 64)
			buf := make([]byte, 0, 64)
			b.SetBytes(64)
			b.ReportAllocs()
			b.ResetTimer()
			done := make(chan error, 1)
			go func() {
				for range b.N {
					if err := p.Send(msg); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			for range b.N {
				if _, err := c.RecvAppend(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			reportRate(b)
		})
	}
}
