package natsbridge

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/ringwire/ringwire/ring"
)

// bridges runs Out from ring A and In into ring B, in this process, each
// with its own connection to url, until the returned stop is called.
func bridges(t *testing.T, url, dir, ringA, ringB, stream, subject string, inState string) (outStats, inStats *Counters, stop func()) {
	t.Helper()
	outStats, inStats = &Counters{}, &Counters{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	c, err := ring.OpenConsumer(ringA, ring.AttachOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ring.OpenProducer(ringB, ring.AttachOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	out, err := NewOut(c, connect(t, url, outStats), OutConfig{Subject: subject, Stream: stream, Logf: t.Logf, Counters: outStats})
	if err != nil {
		t.Fatal(err)
	}
	filter := streamSubjects(subject)[0]
	in, err := NewIn(p, connect(t, url, inStats), InConfig{Subject: filter, Stream: stream, Durable: "in", StatePath: inState, Logf: t.Logf, Counters: inStats})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := out.Run(ctx); err != nil {
			t.Errorf("out: %v", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := in.Run(ctx); err != nil {
			t.Errorf("in: %v", err)
		}
	}()
	return outStats, inStats, func() {
		cancel()
		wg.Wait()
		afterFuncGrace()
		c.Close()
		p.Close()
	}
}

func e2eCount() int {
	if *flagN > 0 {
		return *flagN
	}
	if raceOn {
		return 100_000
	}
	return 1_000_000
}

// TestEndToEnd: two producers on MPSC ring A ("host A"), Out, JetStream,
// In, ring B ("host B"): every message arrives once, in order per
// producer, byte for byte.
func TestEndToEnd(t *testing.T) {
	n := e2eCount()
	if raceOn && *flagN == 0 {
		t.Logf("-race: %d messages instead of 1M (-n raises it)", n)
	}
	testEndToEnd(t, n, "STREAM")
}

// TestEndToEndCore: the same over core NATS with no loss expected when
// nothing fails and In keeps up (the ring B consumer is fast).
func TestEndToEndCore(t *testing.T) {
	testEndToEnd(t, 20_000, "")
}

func testEndToEnd(t *testing.T, n int, stream string) {
	dir, store := t.TempDir(), t.TempDir()
	s := startServer(t, store, -1, nil)
	defer stopServer(s)
	rA := createRing(t, dir, "a", ring.Options{Mode: ring.MPSC, Slots: 4, Capacity: 1 << 20})
	rB := createRing(t, dir, "b", ring.Options{Capacity: 1 << 20})
	_ = rA
	subject := "orders.lane.{lane}"
	if stream != "" {
		ensureStream(t, connect(t, s.ClientURL(), nil), stream, subject)
	}
	cB, err := rB.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	chk := newChecker(t, n, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go consume(ctx, cB, chk)
	outStats, inStats, stop := bridges(t, s.ClientURL(), dir, "a", "b", stream, subject, dir+"/in.seq")
	if stream == "" {
		// Core NATS keeps nothing for a subscriber that is not there yet.
		waitFor(t, 10*time.Second, "the subscription", func() bool {
			sz, err := s.Subsz(&server.SubszOptions{Test: "orders.lane.0", Subscriptions: true})
			return err == nil && sz.Total > 0
		})
	}
	start := time.Now()
	var wg sync.WaitGroup
	for prod := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := ring.OpenProducer("a", ring.AttachOptions{Dir: dir})
			if err != nil {
				t.Error(err)
				return
			}
			defer p.Close()
			if err := produce(ctx, p, byte(prod), n/2, 512, 1); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	chk.wait(t, 3*time.Minute, func() string { return "out " + outStats.String() + "; in " + inStats.String() })
	el := time.Since(start)
	stop()
	cancel()
	t.Logf("%d messages (0-512 B) in %v: %.0f msgs/s; out %s; in %s", n, el.Round(time.Millisecond), float64(n)/el.Seconds(), outStats, inStats)
	if chk.dups != 0 {
		t.Errorf("%d duplicates", chk.dups)
	}
	if d := outStats.DroppedTotal() + inStats.DroppedTotal(); d != 0 {
		t.Errorf("%d drops", d)
	}
	if stream != "" && outStats.Acknowledged.Load() < uint64(n) {
		t.Errorf("out acknowledged %d of %d", outStats.Acknowledged.Load(), n)
	}
}
