package ring_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ringwire/ringwire/ring"
)

// BenchmarkPoller measures a Poller over 1, 16 and 128 rings.
//
// msg: a goroutine sends 64-byte messages round-robin over the rings as
// fast as it can; the Poller's goroutine Waits and drains every ready
// consumer. ns/msg is the cost per message through the Poller, and
// syscalls are none while the rings are busy (Adaptive).
//
// wakeup: the Poller parks (Block) and a goroutine sends one message on
// one ring, then waits for the Poller's goroutine to say it received it
// (a channel) before the next. us/wakeup is the round: the commit, the
// futex wake of the parked Poller, its Wait returning the consumer, the
// receive, and the channel hand-back.
func BenchmarkPoller(b *testing.B) {
	for _, n := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("rings=%d/msg", n), func(b *testing.B) { benchPollerMsg(b, n) })
		b.Run(fmt.Sprintf("rings=%d/wakeup", n), func(b *testing.B) { benchPollerWakeup(b, n) })
	}
}

func benchPollerMsg(b *testing.B, n int) {
	_, ps, _, pl := pollerRings(b, n, ring.Options{Capacity: 1 << 16}, ring.Wait{})
	total := b.N
	done := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() {
		msg := make([]byte, 64)
		for i := range total {
			if err := ps[i%n].Send(msg); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	got, waits := 0, 0
	ctx := context.Background()
	for got < total {
		ready, err := pl.Wait(ctx)
		if err != nil {
			b.Fatal(err)
		}
		waits++
		for _, c := range ready {
			k, err := c.TryDrain(1024, func([]byte) error { return nil })
			if err != nil && err != ring.ErrEmpty {
				b.Fatal(err)
			}
			got += k
		}
	}
	el := time.Since(start)
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(el.Nanoseconds())/float64(total), "ns/msg")
	b.ReportMetric(float64(total)/float64(waits), "msgs/wait")
}

func benchPollerWakeup(b *testing.B, n int) {
	_, ps, _, pl := pollerRings(b, n, ring.Options{Capacity: 1 << 16}, blockForever)
	ack := make(chan struct{})
	total := b.N
	done := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() {
		msg := make([]byte, 64)
		for i := range total {
			if err := ps[(i*7)%n].Send(msg); err != nil {
				done <- err
				return
			}
			<-ack
		}
		done <- nil
	}()
	ctx := context.Background()
	for got := 0; got < total; {
		ready, err := pl.Wait(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range ready {
			if _, err := c.TryRecv(); err != nil {
				b.Fatal(err)
			}
			got++
			ack <- struct{}{}
		}
	}
	el := time.Since(start)
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(el.Microseconds())/float64(total), "us/wakeup")
}
