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

func TestMessageIDText(t *testing.T) {
	id := ring.MessageID{Instance: 0xab, Lane: 3, Pos: 4096}
	if s := id.String(); s != "00000000000000ab-3-4096" {
		t.Fatalf("String: %q", s)
	}
	for _, id := range []ring.MessageID{{}, id, {Instance: ^uint64(0), Lane: ^uint32(0), Pos: ^uint64(0)}} {
		got, err := ring.ParseMessageID(id.String())
		if err != nil || got != id {
			t.Fatalf("ParseMessageID(%q) = %v, %v", id.String(), got, err)
		}
	}
	for _, s := range []string{"", "ab-3-4096", "00000000000000ab-3", "00000000000000ab-x-1", "00000000000000ab-1-2-3"} {
		if _, err := ring.ParseMessageID(s); err == nil {
			t.Errorf("ParseMessageID(%q) accepted", s)
		}
	}
	buf := make([]byte, 0, 48)
	if n := testing.AllocsPerRun(100, func() { id.AppendText(buf[:0]) }); n != 0 {
		t.Errorf("AppendText: %v allocations", n)
	}
}

// TestReadAhead: Next reads ahead over two lanes, per-lane order kept;
// ReleaseThrough releases in order per lane and refuses what it must; the
// other receives refuse to run while messages are read ahead.
func TestReadAhead(t *testing.T) {
	r := newRing(t, ring.Options{Mode: ring.MPSC, Slots: 2, Capacity: 4096, Checksum: true})
	c, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	var ps [2]*ring.Producer
	for i := range ps {
		if ps[i], err = r.Producer(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.TryNext(); !errors.Is(err, ring.ErrEmpty) {
		t.Fatalf("TryNext on an empty ring: %v", err)
	}
	for i := range 10 {
		if err := ps[i%2].Send([]byte(fmt.Sprintf("m%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	var got [2][]ring.Message
	for range 10 {
		m, err := c.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if m.ID.Instance != r.Instance() || m.ID.Lane > 1 {
			t.Fatalf("id %v", m.ID)
		}
		got[m.ID.Lane] = append(got[m.ID.Lane], m)
	}
	if _, err := c.TryNext(); !errors.Is(err, ring.ErrEmpty) {
		t.Fatalf("TryNext after all: %v", err)
	}
	for lane := range got {
		if len(got[lane]) != 5 {
			t.Fatalf("lane %d: %d messages", lane, len(got[lane]))
		}
		first := int(got[lane][0].Data[1] - '0')
		for k, m := range got[lane] {
			if want := fmt.Sprintf("m%d", first+2*k); string(m.Data) != want {
				t.Fatalf("lane %d message %d: %q, want %q", lane, k, m.Data, want)
			}
			if k > 0 && m.ID.Pos <= got[lane][k-1].ID.Pos {
				t.Fatalf("lane %d: positions not increasing: %v after %v", lane, m.ID, got[lane][k-1].ID)
			}
		}
	}
	// The other receives refuse while messages are read ahead.
	if _, err := c.TryRecv(); !errors.Is(err, ring.ErrPending) {
		t.Fatalf("TryRecv while reading ahead: %v", err)
	}
	if _, err := c.TryPeek(); !errors.Is(err, ring.ErrPending) {
		t.Fatalf("TryPeek while reading ahead: %v", err)
	}
	if _, err := c.TryDrain(10, func([]byte) error { return nil }); !errors.Is(err, ring.ErrPending) {
		t.Fatalf("Drain while reading ahead: %v", err)
	}
	// Refusals release nothing.
	l0 := got[0]
	for _, tc := range []struct {
		id   ring.MessageID
		want error
	}{
		{ring.MessageID{Instance: r.Instance() ^ 1, Lane: 0, Pos: l0[0].ID.Pos}, ring.ErrUnknownMessage},
		{ring.MessageID{Instance: r.Instance(), Lane: 2, Pos: 0}, ring.ErrUnknownMessage},
		{ring.MessageID{Instance: r.Instance(), Lane: 0, Pos: l0[1].ID.Pos + 8}, ring.ErrUnknownMessage},
		{ring.MessageID{Instance: r.Instance(), Lane: 0, Pos: l0[4].ID.Pos + 64}, ring.ErrPending},
	} {
		if err := c.ReleaseThrough(tc.id); !errors.Is(err, tc.want) {
			t.Fatalf("ReleaseThrough(%v): %v, want %v", tc.id, err, tc.want)
		}
	}
	if h := laneHead(r, 0); h != l0[0].ID.Pos {
		t.Fatalf("lane 0 head moved to %d by a refused release", h)
	}
	// Release lane 0 through its second message: the head is past it.
	if err := c.ReleaseThrough(l0[1].ID); err != nil {
		t.Fatal(err)
	}
	if h := laneHead(r, 0); h != l0[2].ID.Pos {
		t.Fatalf("lane 0 head %d after releasing through %v, want %d", h, l0[1].ID, l0[2].ID.Pos)
	}
	for _, id := range []ring.MessageID{l0[0].ID, l0[1].ID} {
		if err := c.ReleaseThrough(id); !errors.Is(err, ring.ErrPending) {
			t.Fatalf("ReleaseThrough(%v) again: %v", id, err)
		}
	}
	if err := c.ReleaseThrough(l0[4].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TryRecv(); !errors.Is(err, ring.ErrPending) {
		t.Fatalf("TryRecv with lane 1 still read ahead: %v", err)
	}
	if err := c.ReleaseThrough(got[1][4].ID); err != nil {
		t.Fatal(err)
	}
	// Everything released: Recv works again and Next after it too.
	ps[0].Send([]byte("after"))
	if m, err := c.TryRecv(); err != nil || string(m) != "after" {
		t.Fatalf("TryRecv after releasing all: %q %v", m, err)
	}
	ps[1].Send([]byte("peeked"))
	if _, err := c.TryPeek(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TryNext(); !errors.Is(err, ring.ErrPending) {
		t.Fatalf("TryNext while a message is peeked: %v", err)
	}
	c.Release()
	if st := r.Stats(); st.Received != 12 {
		// The statistics are flushed when the consumer parks or closes.
		c.Close()
		if st = r.Stats(); st.Received != 12 {
			t.Fatalf("received %d, want 12", st.Received)
		}
	}
}

// laneHead reads lane i's shared head through Info.
func laneHead(r *ring.Ring, i int) uint64 {
	info, err := r.Info()
	if err != nil {
		panic(err)
	}
	return info.Lanes[i].Head
}

// TestReadAheadWraps: through many laps of a small lane, with padding at
// each wrap, messages read ahead and released in uneven batches (some
// through the last read, some through one in the middle) arrive once, in
// order, and the producer never overruns what is read ahead. (At most
// five messages of at most 300 bytes are held, so the producer always
// finds the room it waits for.)
func TestReadAheadWraps(t *testing.T) {
	r := newRing(t, ring.Options{Capacity: 4096})
	p, c := roles(t, r)
	const n = 20000
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if err := p.Send(pattern(i, 1+i%300)); err != nil {
				done <- err
				return
			}
		}
		done <- p.Close()
	}()
	var ahead []ring.Message
	for i := 0; ; {
		m, err := c.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if string(m.Data) != string(pattern(i, 1+i%300)) {
			t.Fatalf("message %d: wrong bytes", i)
		}
		ahead = append(ahead, m)
		i++
		if len(ahead) >= 1+i%5 {
			// Release through the middle, then through the last.
			k := len(ahead) / 2
			if err := c.ReleaseThrough(ahead[k].ID); err != nil {
				t.Fatal(err)
			}
			ahead = ahead[k+1:]
			if i%3 == 0 && len(ahead) > 0 {
				if err := c.ReleaseThrough(ahead[len(ahead)-1].ID); err != nil {
					t.Fatal(err)
				}
				ahead = ahead[:0]
			}
		}
		if i == n && len(ahead) > 0 {
			if err := c.ReleaseThrough(ahead[len(ahead)-1].ID); err != nil {
				t.Fatal(err)
			}
			ahead = nil
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestReleaseThroughWakesProducer: a producer parked on a lane full of
// messages read ahead is woken by ReleaseThrough, in Block mode with a
// peer check of an hour, so only the release's wake can do it.
func TestReleaseThroughWakesProducer(t *testing.T) {
	w := ring.Wait{Mode: ring.Block, PeerCheck: time.Hour}
	r := newRing(t, ring.Options{Capacity: 4096, Wait: w})
	p, c := roles(t, r)
	msg := make([]byte, 500)
	for p.TrySend(msg) == nil {
	}
	var last ring.Message
	for {
		m, err := c.TryNext()
		if errors.Is(err, ring.ErrEmpty) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		last = m
	}
	if err := p.TrySend(msg); !errors.Is(err, ring.ErrFull) {
		t.Fatalf("TrySend with the lane read ahead: %v", err)
	}
	sent := make(chan error, 1)
	go func() { sent <- p.Send(msg) }()
	time.Sleep(50 * time.Millisecond) // let it park
	select {
	case err := <-sent:
		t.Fatalf("Send returned before the release: %v", err)
	default:
	}
	if err := c.ReleaseThrough(last.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-sent:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReleaseThrough did not wake the parked producer")
	}
}

// TestReadAheadTakeover: a consumer that reads ahead, releases part and
// closes hands the rest to the next consumer with the same ids.
func TestReadAheadTakeover(t *testing.T) {
	r := newRing(t, ring.Options{Mode: ring.MPSC, Slots: 3, Capacity: 1 << 16})
	for k := range 3 {
		p, err := r.Producer()
		if err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			p.Send([]byte(fmt.Sprintf("p%d-%d", k, i)))
		}
	}
	c, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	byID := map[string]string{}
	for range 45 {
		m, err := c.TryNext()
		if err != nil {
			t.Fatal(err)
		}
		byID[m.ID.String()] = string(m.Data)
		ids = append(ids, m.ID.String())
	}
	// Release lane 1 through its third message: those three are gone.
	var gone []string
	for _, s := range ids {
		id, _ := ring.ParseMessageID(s)
		if id.Lane == 1 && len(gone) < 3 {
			gone = append(gone, s)
			if len(gone) == 3 {
				if err := c.ReleaseThrough(id); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	c.Close()
	c2, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	again := map[string]string{}
	for {
		m, err := c2.TryNext()
		if errors.Is(err, ring.ErrEmpty) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		again[m.ID.String()] = string(m.Data)
	}
	if len(again) != 60-3 {
		t.Fatalf("the next consumer got %d messages, want 57", len(again))
	}
	for _, s := range ids {
		data, ok := again[s]
		if slicesContains(gone, s) {
			if ok {
				t.Fatalf("released %s delivered again", s)
			}
			continue
		}
		if !ok || data != byID[s] {
			t.Fatalf("%s: first %q, then %q (%v)", s, byID[s], data, ok)
		}
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestReadAheadAllocatesNothing(t *testing.T) {
	for _, o := range []ring.Options{{}, {Checksum: true}, {Mode: ring.MPSC}} {
		o.Capacity = 1 << 16
		r := newRing(t, o)
		p, c := roles(t, r)
		msg := make([]byte, 100)
		ctx := context.Background()
		var err error
		allocs := testing.AllocsPerRun(1000, func() {
			for range 3 {
				if e := p.Send(msg); e != nil {
					err = e
				}
			}
			var m ring.Message
			for range 3 {
				var e error
				if m, e = c.Next(ctx); e != nil {
					err = e
				}
			}
			if e := c.ReleaseThrough(m.ID); e != nil {
				err = e
			}
			p.Send(msg)
			if m, err = c.TryNext(); err == nil {
				err = c.ReleaseThrough(m.ID)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if allocs != 0 {
			t.Errorf("%v checksum %v: Next+ReleaseThrough: %v allocations, want 0", o.Mode, o.Checksum, allocs)
		}
	}
}

func init() {
	// readahead: read ahead n messages, releasing through the second,
	// print the ids of those left unreleased, and wait to be killed.
	childRoles["readahead"] = func(o ring.AttachOptions, name string, n int) error {
		c, err := ring.OpenConsumer(name, o)
		if err != nil {
			return err
		}
		var ms []ring.Message
		for range n {
			m, err := c.Next(context.Background())
			if err != nil {
				return err
			}
			ms = append(ms, m)
		}
		if err := c.ReleaseThrough(ms[1].ID); err != nil {
			return err
		}
		for _, m := range ms[2:] {
			fmt.Printf("%s %s\n", m.ID, m.Data)
		}
		fmt.Println("ready")
		select {}
	}
}

// TestReadAheadCrashRedelivers: a child consumer reads ahead, releases
// part, prints the ids of the rest and is killed; the next consumer
// delivers those messages again with the same ids and bytes.
func TestReadAheadCrashRedelivers(t *testing.T) {
	dir := t.TempDir()
	r := newRing(t, ring.Options{Dir: dir, Mode: ring.MPSC, Slots: 2, Capacity: 1 << 16})
	var ps [2]*ring.Producer
	for i := range ps {
		var err error
		if ps[i], err = r.Producer(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 40 {
		ps[i%2].Send([]byte(fmt.Sprintf("msg %d", i)))
	}
	const n = 30
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envRole+"=readahead", envDir+"="+dir, envName+"="+r.Name(),
		envCount+"="+strconv.Itoa(n), "GORACE=atexit_sleep_ms=0")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var lines []string
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "ready" {
		lines = append(lines, sc.Text())
	}
	if len(lines) != n-2 {
		t.Fatalf("child printed %d ids, want %d", len(lines), n-2)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	c, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for {
		m, err := c.TryNext()
		if errors.Is(err, ring.ErrEmpty) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[fmt.Sprintf("%s %s", m.ID, m.Data)] = true
	}
	if len(seen) != 40-2 {
		t.Fatalf("after the crash: %d messages, want 38", len(seen))
	}
	for _, l := range lines {
		if !seen[l] {
			t.Errorf("%q read ahead by the killed consumer is not delivered again with its id", l)
		}
	}
	if !strings.Contains(lines[0], fmt.Sprintf("%016x-", r.Instance())) {
		t.Errorf("id %q does not carry the instance %016x", lines[0], r.Instance())
	}
}
