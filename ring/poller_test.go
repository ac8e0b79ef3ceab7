package ring_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringwire/ringwire/ring"
)

// blockForever parks at once and never wakes for a peer check: only a
// futex wake-up (or ctx) ends its waits.
var blockForever = ring.Wait{Mode: ring.Block, PeerCheck: time.Hour}

// pollerRings makes n rings with their producers and consumers, the
// consumers added to a new Poller.
func pollerRings(t testing.TB, n int, o ring.Options, w ring.Wait) ([]*ring.Ring, []*ring.Producer, []*ring.Consumer, *ring.Poller) {
	t.Helper()
	if o.Capacity == 0 {
		o.Capacity = 1 << 16
	}
	dir := t.TempDir()
	o.Dir = dir
	rs, ps, cs := make([]*ring.Ring, n), make([]*ring.Producer, n), make([]*ring.Consumer, n)
	pl := ring.NewPoller()
	pl.SetWait(w)
	t.Cleanup(func() { pl.Close() })
	for i := range n {
		rs[i] = newRing(t, o)
		ps[i], cs[i] = roles(t, rs[i])
		if err := pl.Add(cs[i]); err != nil {
			t.Fatal(err)
		}
	}
	return rs, ps, cs, pl
}

// forEachParking runs f with futex_waitv and with the fallback forced.
func forEachParking(t *testing.T, f func(t *testing.T)) {
	t.Run("waitv", f)
	t.Run("fallback", func(t *testing.T) {
		ring.ForceNoWaitv(t)
		f(t)
	})
}

// sender sends a message on ps[k], after a pause that lets the Poller
// park, for each k it receives; one goroutine owns the producers.
func sender(t *testing.T, ps []*ring.Producer) chan<- int {
	ch := make(chan int)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for k := range ch {
			time.Sleep(2 * time.Millisecond)
			if err := ps[k].Send([]byte("wake")); err != nil {
				t.Error(err)
			}
		}
	}()
	t.Cleanup(func() { close(ch); <-done })
	return ch
}

func waitReady(t *testing.T, pl *ring.Poller, d time.Duration) []*ring.Consumer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	ready, err := pl.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return ready
}

// wokenReady is waitReady for a Wait that only a wake-up can end in time:
// it fails if the Wait took a second or more (the deadline's own wake-up,
// at 2 s, would find the message too late).
func wokenReady(t *testing.T, pl *ring.Poller) []*ring.Consumer {
	t.Helper()
	start := time.Now()
	ready := waitReady(t, pl, 2*time.Second)
	if d := time.Since(start); d >= time.Second {
		t.Fatalf("Wait returned after %v: the commit's wake-up was lost", d)
	}
	return ready
}

func TestPollerBasics(t *testing.T) {
	forEachParking(t, func(t *testing.T) {
		_, ps, cs, pl := pollerRings(t, 3, ring.Options{}, ring.Wait{PeerCheck: 10 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		if ready, err := pl.Wait(ctx); err != context.DeadlineExceeded || len(ready) != 0 {
			t.Fatalf("Wait on idle rings: %v, %v", ready, err)
		}
		if ready, err := pl.TryWait(); err != nil || len(ready) != 0 {
			t.Fatalf("Wait(nil) on idle rings: %v, %v", ready, err)
		}
		ps[1].Send([]byte("one"))
		if ready := waitReady(t, pl, 5*time.Second); len(ready) != 1 || ready[0] != cs[1] {
			t.Fatalf("ready %v, want consumer 1", ready)
		}
		if m, err := cs[1].TryRecv(); err != nil || string(m) != "one" {
			t.Fatalf("TryRecv: %q %v", m, err)
		}
		ps[0].Send([]byte("zero"))
		ps[2].Send([]byte("two"))
		if ready := waitReady(t, pl, 5*time.Second); len(ready) != 2 || ready[0] != cs[0] || ready[1] != cs[2] {
			t.Fatalf("ready %v, want consumers 0 and 2 in order", ready)
		}
		cs[0].TryRecv()
		cs[2].TryRecv()
		// End of stream: the message first, then io.EOF, once.
		ps[2].Send([]byte("last"))
		ps[2].Close()
		if ready := waitReady(t, pl, 5*time.Second); len(ready) != 1 || ready[0] != cs[2] {
			t.Fatalf("ready %v, want consumer 2", ready)
		}
		if m, err := cs[2].TryRecv(); err != nil || string(m) != "last" {
			t.Fatalf("TryRecv: %q %v", m, err)
		}
		if _, err := cs[2].TryRecv(); err != ring.ErrEmpty {
			t.Fatalf("TryRecv after the last message: %v", err)
		}
		// The next Wait finds the end of the stream.
		if ready := waitReady(t, pl, 5*time.Second); len(ready) != 1 || ready[0] != cs[2] {
			t.Fatalf("ready %v, want consumer 2 at its end", ready)
		}
		if _, err := cs[2].TryRecv(); err != io.EOF {
			t.Fatalf("TryRecv at the end: %v, want io.EOF", err)
		}
		if err := pl.Remove(cs[2]); err != nil {
			t.Fatal(err)
		}
		if err := pl.Remove(cs[2]); !errors.Is(err, ring.ErrUnknownConsumer) {
			t.Fatalf("Remove twice: %v", err)
		}
		if err := pl.Add(cs[0]); !errors.Is(err, ring.ErrUnknownConsumer) {
			t.Fatalf("Add twice: %v", err)
		}
		// A consumer closed from another goroutine while Wait sleeps is
		// ready, and its receives say ErrClosed.
		go func() { time.Sleep(20 * time.Millisecond); cs[1].Close() }()
		if ready := waitReady(t, pl, 5*time.Second); len(ready) != 1 || ready[0] != cs[1] {
			t.Fatalf("ready %v, want the closed consumer 1", ready)
		}
		if _, err := cs[1].TryRecv(); !errors.Is(err, ring.ErrClosed) {
			t.Fatalf("TryRecv on the closed consumer: %v", err)
		}
		if err := pl.Add(cs[1]); !errors.Is(err, ring.ErrClosed) {
			t.Fatalf("Add of a closed consumer: %v", err)
		}
	})
}

// TestPollerWakesParked: a Poller parked in Block mode, with a peer check
// of an hour, is woken by a commit on any one of its rings, within a
// second, many times over: only the commit's wake-up can end the sleep.
func TestPollerWakesParked(t *testing.T) {
	forEachParking(t, func(t *testing.T) {
		for _, n := range []int{1, 5, 130} {
			t.Run(strconv.Itoa(n), func(t *testing.T) {
				_, ps, cs, pl := pollerRings(t, n, ring.Options{Capacity: 4096}, blockForever)
				send := sender(t, ps)
				for round := range 20 {
					k := (round * 7) % n
					send <- k
					ready := wokenReady(t, pl)
					if len(ready) != 1 || ready[0] != cs[k] {
						t.Fatalf("round %d: ready %d consumers, want consumer %d", round, len(ready), k)
					}
					if _, err := cs[k].TryRecv(); err != nil {
						t.Fatal(err)
					}
				}
			})
		}
	})
}

// TestPollerWakesParkedMPSC: the same through the ready set of a cold
// lane of an MPSC ring.
func TestPollerWakesParkedMPSC(t *testing.T) {
	forEachParking(t, func(t *testing.T) {
		rs, _, cs, pl := pollerRings(t, 2, ring.Options{Mode: ring.MPSC, Slots: 8}, blockForever)
		var ps []*ring.Producer
		for range 7 {
			p, err := rs[1].Producer()
			if err != nil {
				t.Fatal(err)
			}
			ps = append(ps, p)
		}
		send := sender(t, ps)
		for round := range 20 {
			send <- round % len(ps)
			ready := wokenReady(t, pl)
			if len(ready) != 1 || ready[0] != cs[1] {
				t.Fatalf("round %d: ready %v", round, ready)
			}
			if _, err := cs[1].TryRecv(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestPollerCancel: ctx's end and Collect end a Wait parked with a peer
// check of an hour.
func TestPollerCancel(t *testing.T) {
	forEachParking(t, func(t *testing.T) {
		for _, n := range []int{0, 1, 3} {
			_, _, _, pl := pollerRings(t, n, ring.Options{}, blockForever)
			ctx, cancel := context.WithCancel(context.Background())
			go func() { time.Sleep(20 * time.Millisecond); cancel() }()
			start := time.Now()
			if _, err := pl.Wait(ctx); err != context.Canceled {
				t.Fatalf("%d consumers: Wait: %v, want context.Canceled", n, err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("%d consumers: cancel took %v", n, d)
			}
			// The same context's end is seen by later Waits at once.
			if _, err := pl.Wait(ctx); err != context.Canceled {
				t.Fatalf("%d consumers: Wait after cancel: %v", n, err)
			}
			ch := pl.WaitChan(context.Background())
			time.Sleep(20 * time.Millisecond)
			select {
			case <-ch:
				t.Fatalf("%d consumers: WaitChan fired on idle rings", n)
			default:
			}
			if ready, err := pl.Collect(); err != nil || len(ready) != 0 {
				t.Fatalf("%d consumers: Collect: %v, %v", n, ready, err)
			}
		}
	})
}

func TestPollerWaitChan(t *testing.T) {
	_, ps, cs, pl := pollerRings(t, 4, ring.Options{}, blockForever)
	send := sender(t, ps)
	for round := range 10 {
		ch := pl.WaitChan(context.Background())
		k := round % 4
		send <- k
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatal("WaitChan did not fire")
		}
		ready, err := pl.Collect()
		if err != nil || len(ready) != 1 || ready[0] != cs[k] {
			t.Fatalf("Collect: %v, %v", ready, err)
		}
		cs[k].TryRecv()
	}
	if _, err := pl.Collect(); !errors.Is(err, ring.ErrPending) {
		t.Fatalf("Collect without WaitChan: %v", err)
	}
}

// TestPollerPeerDead: a dead SPSC producer makes its consumer ready;
// its receive gives ErrPeerDead after the messages.
func TestPollerPeerDead(t *testing.T) {
	dir := t.TempDir()
	r := newRing(t, ring.Options{Dir: dir})
	idle := newRing(t, ring.Options{})
	_, ci := roles(t, idle)
	c, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	pl := ring.NewPoller()
	defer pl.Close()
	pl.SetWait(ring.Wait{Mode: ring.Block, PeerCheck: 20 * time.Millisecond})
	pl.Add(ci)
	pl.Add(c)
	cmd := startChild(t, r, dir, "stream", 0, ring.Block, true)
	got := 0
	var last error
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && last == nil {
		ready := waitReady(t, pl, 10*time.Second)
		for _, x := range ready {
			if x != c {
				t.Fatalf("the idle ring is ready")
			}
			for {
				_, err := c.TryRecv()
				if err == ring.ErrEmpty {
					break
				}
				if err != nil {
					last = err
					break
				}
				if got++; got == 100 {
					kill(t, cmd)
				}
			}
		}
	}
	if !errors.Is(last, ring.ErrPeerDead) {
		t.Fatalf("after %d messages: %v, want ErrPeerDead", got, last)
	}
}

// TestPollerFairness: a Poller over a busy ring and an idle one delivers
// the idle one's message promptly while the busy one never runs dry.
func TestPollerFairness(t *testing.T) {
	_, ps, cs, pl := pollerRings(t, 2, ring.Options{Capacity: 1 << 16}, ring.Wait{})
	stop := make(chan struct{})
	flood := make(chan error, 1)
	go func() {
		msg := make([]byte, 100)
		for {
			select {
			case <-stop:
				flood <- nil
				return
			default:
			}
			if err := ps[0].Send(msg); err != nil {
				flood <- err
				return
			}
		}
	}()
	defer func() { close(stop); cs[0].Close(); <-flood }()
	busy := 0
	var worst time.Duration
	for round := range 50 {
		var sent time.Time
		for got := false; !got; {
			if sent.IsZero() && busy > 2000*(round+1) {
				sent = time.Now()
				ps[1].Send([]byte("idle"))
			}
			for _, c := range waitReady(t, pl, 5*time.Second) {
				if c == cs[1] {
					if m, err := c.TryRecv(); err != nil || string(m) != "idle" {
						t.Fatalf("idle ring: %q %v", m, err)
					}
					got = true
					continue
				}
				n, err := c.TryDrain(256, func([]byte) error { return nil })
				if err != nil {
					t.Fatal(err)
				}
				busy += n
			}
		}
		worst = max(worst, time.Since(sent))
	}
	t.Logf("busy ring: %d messages; worst delay of the idle ring's message: %v", busy, worst)
	if worst > 50*time.Millisecond {
		t.Fatalf("the idle ring's message waited %v behind the busy ring", worst)
	}
}

func TestPollerAllocatesNothing(t *testing.T) {
	_, ps, cs, pl := pollerRings(t, 16, ring.Options{}, ring.Wait{})
	msg := make([]byte, 64)
	buf := make([]byte, 0, 128)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var err error
	k := 0
	allocs := testing.AllocsPerRun(1000, func() {
		k = (k + 5) % len(ps)
		ps[k].Send(msg)
		ready, e := pl.Wait(ctx)
		if e != nil || len(ready) != 1 || ready[0] != cs[k] {
			err = fmt.Errorf("Wait: %v, %v", ready, e)
		}
		if _, e := ready[0].TryRecvAppend(buf[:0]); e != nil {
			err = e
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if allocs != 0 {
		t.Fatalf("Send+Wait+TryRecvAppend over 16 rings: %v allocations, want 0", allocs)
	}
}

func init() {
	// pollsend: send one message after a pause, then stay alive (a Close
	// would wake the consumer on its own).
	childRoles["pollsend"] = func(o ring.AttachOptions, name string, n int) error {
		p, err := ring.OpenProducer(name, o)
		if err != nil {
			return err
		}
		fmt.Println("ready")
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			if err := p.Send([]byte("from " + strconv.Itoa(os.Getpid()) + " " + in.Text())); err != nil {
				return err
			}
		}
		select {}
	}
}

// TestPollerCrossProcess: child producers on some of several rings wake a
// Poller parked in Block mode with a peer check of an hour.
func TestPollerCrossProcess(t *testing.T) {
	forEachParking(t, func(t *testing.T) {
		dir := t.TempDir()
		const n = 6
		pl := ring.NewPoller()
		defer pl.Close()
		pl.SetWait(blockForever)
		var cs []*ring.Consumer
		var ins []io.WriteCloser
		for i := range n {
			r := newRing(t, ring.Options{Dir: dir, Capacity: 4096})
			c, err := r.Consumer()
			if err != nil {
				t.Fatal(err)
			}
			cs = append(cs, c)
			pl.Add(c)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), envRole+"=pollsend", envDir+"="+dir, envName+"="+r.Name(),
				envWait+"=block", "GORACE=atexit_sleep_ms=0")
			cmd.Stderr = os.Stderr
			out, _ := cmd.StdoutPipe()
			in, _ := cmd.StdinPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Signal(syscall.SIGKILL); cmd.Wait() })
			if line, _ := bufio.NewReader(out).ReadString('\n'); strings.TrimSpace(line) != "ready" {
				t.Fatalf("child %d: %q", i, line)
			}
			ins = append(ins, in)
		}
		for round := range 30 {
			k := (round * 5) % n
			ch := make(chan struct{})
			go func() {
				<-ch
				time.Sleep(time.Millisecond)
				fmt.Fprintf(ins[k], "%d\n", round)
			}()
			close(ch)
			ready := wokenReady(t, pl)
			if len(ready) != 1 || ready[0] != cs[k] {
				t.Fatalf("round %d: %d ready, want ring %d", round, len(ready), k)
			}
			m, err := cs[k].TryRecv()
			if err != nil || !strings.HasSuffix(string(m), " "+strconv.Itoa(round)) {
				t.Fatalf("round %d: %q %v", round, m, err)
			}
		}
	})
}
