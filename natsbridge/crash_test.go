package natsbridge

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/ringwire/ringwire/ring"
)

func kills() int {
	if *flagKills > 0 {
		return *flagKills
	}
	return 50
}

// TestOutKilled: the outbound bridge, a real child process, is SIGKILLed
// again and again while a producer streams into ring A, and restarted.
// Every message whose Send returned nil reaches the stream, exactly once
// (stream message count == distinct ids == messages sent), in order.
func TestOutKilled(t *testing.T) {
	const n = 20_000
	dir, store := t.TempDir(), t.TempDir()
	s := startServer(t, store, -1, nil)
	defer stopServer(s)
	createRing(t, dir, "a", ring.Options{Capacity: 64 << 10})
	nc := connect(t, s.ClientURL(), nil)
	st := ensureStream(t, nc, "S", "k.{lane}")
	args := []string{"out", "-ring", "a", "-dir", dir, "-nats", s.ClientURL(), "-subject", "k.{lane}", "-stream", "S", "-create-stream=false", "-max-in-flight", "256"}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prodDone := make(chan error, 1)
	go func() {
		p, err := ring.OpenProducer("a", ring.AttachOptions{Dir: dir})
		if err != nil {
			prodDone <- err
			return
		}
		defer p.Close()
		prodDone <- producePaced(ctx, p, 0, n, 256, 2, 3)
	}()
	msgs := func() uint64 {
		info, err := st.Info(ctx)
		if err != nil {
			return 0
		}
		return info.State.Msgs
	}
	k := kills()
	rng := rand.New(rand.NewPCG(3, 4))
	start := time.Now()
	mid := 0
	for i := range k {
		cmd, out := startChild(t, args...)
		// Kill at a random moment, mostly mid-stream: after connecting
		// and publishing, or while still starting.
		time.Sleep(time.Duration(20+rng.IntN(150)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if msgs() < n {
			mid++
		}
		if i == 0 || i == k-1 {
			t.Logf("kill %d at %d stored; child said:\n%s", i+1, msgs(), lastLines(out.String(), 3))
		}
	}
	killed := time.Since(start)
	stored := msgs()
	cmd, out := startChild(t, args...)
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	if err := <-prodDone; err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "every message in the stream", func() bool { return msgs() >= n })
	time.Sleep(200 * time.Millisecond) // anything beyond n would be a duplicate
	ids, data := streamIDs(t, nc, "S")
	distinct := map[string]bool{}
	for i, id := range ids {
		distinct[id] = true
		if _, seq := parse(t, data[i]); seq != uint64(i) {
			t.Fatalf("stream message %d carries message %d: lost, reordered or duplicated", i+1, seq)
		}
	}
	t.Logf("%d kills (%d mid-stream) in %v (%d of %d messages stored by then); stream: %d messages, %d distinct ids; last bridge said:\n%s",
		k, mid, killed.Round(time.Millisecond), stored, n, len(ids), len(distinct), lastLines(out.String(), 2))
	if len(ids) != n || len(distinct) != n {
		t.Fatalf("stream has %d messages, %d distinct ids; want %d of each", len(ids), len(distinct), n)
	}
}

// TestInKilled: the inbound bridge, a real child process, is SIGKILLed
// again and again while it feeds ring B, and restarted. Nothing is lost,
// order holds, and each crash puts at most one duplicate into the ring
// (the bound with a state file).
func TestInKilled(t *testing.T) {
	const n = 20_000
	dir, store := t.TempDir(), t.TempDir()
	s := startServer(t, store, -1, nil)
	defer stopServer(s)
	rB := createRing(t, dir, "b", ring.Options{Capacity: 64 << 10})
	nc := connect(t, s.ClientURL(), nil)
	ensureStream(t, nc, "S", "k.0")
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	buf := make([]byte, 0, 256)
	rng := rand.New(rand.NewPCG(5, 6))
	for seq := range uint64(n) {
		if err := publishAsync(js, "k.0", payload(buf, 0, seq, hdrLen+rng.IntN(248))); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		t.Fatal("publishing timed out")
	}
	cB, err := rB.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	chk := newChecker(t, n, true)
	go consumePaced(ctx, cB, chk, 3)
	args := []string{"in", "-ring", "b", "-dir", dir, "-nats", s.ClientURL(), "-subject", "k.0", "-stream", "S",
		"-create-stream=false", "-durable", "d", "-state", dir + "/in.seq", "-batch", "256"}
	k := kills()
	start := time.Now()
	mid := 0
	for i := range k {
		cmd, out := startChild(t, args...)
		time.Sleep(time.Duration(20+rng.IntN(150)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		chk.mu.Lock()
		if chk.total < n {
			mid++
		}
		chk.mu.Unlock()
		if i == k-1 {
			t.Logf("kill %d; child said:\n%s", i+1, lastLines(out.String(), 3))
		}
	}
	killed := time.Since(start)
	chk.mu.Lock()
	got := chk.total
	chk.mu.Unlock()
	cmd, out := startChild(t, args...)
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	chk.wait(t, 2*time.Minute, func() string { return out.String() })
	time.Sleep(200 * time.Millisecond)
	chk.mu.Lock()
	defer chk.mu.Unlock()
	t.Logf("%d kills (%d mid-stream) in %v (%d of %d in ring B by then); %d duplicates in ring B (bound: %d, one per kill)",
		k, mid, killed.Round(time.Millisecond), got, n, chk.dups, k)
	if chk.dups > k {
		t.Fatalf("%d duplicates after %d kills: the bound is one per kill", chk.dups, k)
	}
}

// TestNATSRestart: the server stops mid-stream and starts again on the same
// port and store; the bridges reconnect and every message arrives once, in
// order.
func TestNATSRestart(t *testing.T) {
	n := 60_000
	if raceOn {
		n = 20_000
	}
	dir, store := t.TempDir(), t.TempDir()
	s := startServer(t, store, -1, nil)
	port := s.Addr().(*net.TCPAddr).Port
	createRing(t, dir, "a", ring.Options{Capacity: 256 << 10})
	rB := createRing(t, dir, "b", ring.Options{Capacity: 256 << 10})
	url := s.ClientURL()
	func() {
		nc := connect(t, url, nil)
		defer nc.Close()
		ensureStream(t, nc, "S", "r.{lane}")
	}()
	cB, err := rB.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	chk := newChecker(t, n, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go consume(ctx, cB, chk)
	outStats, inStats, stop := bridges(t, url, dir, "a", "b", "S", "r.{lane}", dir+"/in.seq")
	defer stop()
	prodDone := make(chan error, 1)
	go func() {
		p, err := ring.OpenProducer("a", ring.AttachOptions{Dir: dir})
		if err != nil {
			prodDone <- err
			return
		}
		defer p.Close()
		prodDone <- produce(ctx, p, 0, n, 512, 7)
	}()
	waitFor(t, time.Minute, "a third of the messages", func() bool {
		chk.mu.Lock()
		defer chk.mu.Unlock()
		return chk.total >= n/3
	})
	chk.mu.Lock()
	at := chk.total
	chk.mu.Unlock()
	stopServer(s)
	time.Sleep(500 * time.Millisecond)
	s = startServer(t, store, port, nil)
	defer stopServer(s)
	restarted := time.Now()
	chk.wait(t, 2*time.Minute, func() string { return "out " + outStats.String() + "; in " + inStats.String() })
	if err := <-prodDone; err != nil {
		t.Fatal(err)
	}
	t.Logf("server restarted at %d of %d; the rest took %v; out %s; in %s", at, n, time.Since(restarted).Round(time.Millisecond), outStats, inStats)
	if outStats.Reconnects.Load() == 0 || inStats.Reconnects.Load() == 0 {
		t.Errorf("reconnects: out %d, in %d; want both > 0", outStats.Reconnects.Load(), inStats.Reconnects.Load())
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return fmt.Sprintf("  %s", strings.Join(lines, "\n  "))
}
