package ring_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ringwire/ringwire/ring"
)

var (
	producerKills = flag.Int("ring.kills", 1000, "producer SIGKILLs in TestLanesProducerKills")
	consumerKills = flag.Int("ring.consumer-kills", 300, "consumer SIGKILLs in TestLanesConsumerKills")
)

const envID = "RINGWIRE_RING_ID"

// laneSize is the payload size of message seq from producer id: mostly
// small, one in four up to max. Both sides compute it, so the consumer
// checks lengths and bytes.
func laneSize(id, seq, max int) int {
	x := uint64(id)*0x9e3779b97f4a7c15 ^ uint64(seq)*0xbf58476d1ce4e5b9
	x ^= x >> 31
	if x%4 == 0 {
		return 8 + int(x>>8)%(max-7)
	}
	return 8 + int(x>>8)%249
}

// laneStamp fills a message: producer id and sequence number, then the
// pattern.
func laneStamp(buf []byte, id, seq int) {
	copy(buf[8:], pattern(id+seq, len(buf)-8))
	binary.LittleEndian.PutUint32(buf, uint32(id))
	binary.LittleEndian.PutUint32(buf[4:], uint32(seq))
}

// laneCheck verifies a received message and returns its producer and
// sequence number.
func laneCheck(m []byte, max int) (id, seq int, err error) {
	if len(m) < 8 {
		return 0, 0, fmt.Errorf("%d-byte message", len(m))
	}
	id, seq = int(binary.LittleEndian.Uint32(m)), int(binary.LittleEndian.Uint32(m[4:]))
	want := make([]byte, laneSize(id, seq, max))
	laneStamp(want, id, seq)
	if string(m) != string(want) {
		return id, seq, fmt.Errorf("producer %d message %d: %d bytes, not the %d sent", id, seq, len(m), len(want))
	}
	return id, seq, nil
}

func init() {
	// lane-produce: n messages (0: until killed) with Send; after each Send
	// that returned nil, "seq" on stdout, unbuffered, so that the harness
	// knows what was acknowledged when it kills the process.
	childRoles["lane-produce"] = func(o ring.AttachOptions, name string, n int) error {
		id, _ := strconv.Atoi(os.Getenv(envID))
		p, err := ring.OpenProducer(name, o)
		if err != nil {
			return err
		}
		fmt.Println("ready")
		buf := make([]byte, p.MaxMessage())
		line := make([]byte, 0, 16)
		for seq := 0; n == 0 || seq < n; seq++ {
			m := buf[:laneSize(id, seq, p.MaxMessage())]
			laneStamp(m, id, seq)
			err := p.Send(m)
			for errors.Is(err, ring.ErrPeerDead) { // the consumer is being replaced
				time.Sleep(time.Millisecond)
				err = p.Send(m)
			}
			if err != nil {
				return fmt.Errorf("message %d: %w", seq, err)
			}
			line = strconv.AppendInt(line[:0], int64(seq), 10)
			if _, err := os.Stdout.Write(append(line, '\n')); err != nil {
				return err
			}
		}
		return p.Close()
	}
	// lane-consume: "id seq" for each message peeked, before releasing it.
	childRoles["lane-consume"] = func(o ring.AttachOptions, name string, n int) error {
		c, err := ring.OpenConsumer(name, o)
		if err != nil {
			return err
		}
		line := make([]byte, 0, 32)
		for {
			m, err := c.Peek()
			if err == io.EOF {
				return c.Close()
			}
			if err != nil {
				return err
			}
			id, seq := int(binary.LittleEndian.Uint32(m)), int(binary.LittleEndian.Uint32(m[4:]))
			line = fmt.Appendf(line[:0], "%d %d\n", id, seq)
			if _, err := os.Stdout.Write(line); err != nil {
				return err
			}
			if err := c.Release(); err != nil {
				return err
			}
		}
	}
	// lane-timed: n messages, each carrying the wall-clock time it was
	// sent, paced to one every 100 µs.
	childRoles["lane-timed"] = func(o ring.AttachOptions, name string, n int) error {
		id, _ := strconv.Atoi(os.Getenv(envID))
		p, err := ring.OpenProducer(name, o)
		if err != nil {
			return err
		}
		fmt.Println("ready")
		var m [24]byte
		next := time.Now()
		for seq := range n {
			for time.Now().Before(next) {
			}
			next = next.Add(100 * time.Microsecond)
			binary.LittleEndian.PutUint32(m[:], uint32(id))
			binary.LittleEndian.PutUint32(m[4:], uint32(seq))
			binary.LittleEndian.PutUint64(m[8:], uint64(time.Now().UnixNano()))
			if err := p.Send(m[:]); err != nil {
				return fmt.Errorf("message %d: %w", seq, err)
			}
		}
		return p.Close()
	}
}

func laneChild(dir, name, role string, id, n int, extra ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), envRole+"="+role, envDir+"="+dir, envName+"="+name,
		envCount+"="+strconv.Itoa(n), envID+"="+strconv.Itoa(id), "GORACE=atexit_sleep_ms=0"), extra...)
	cmd.Stderr = os.Stderr
	return cmd
}

// TestLanesProducerKills: producer processes stream numbered, checksummed
// messages of sizes from 8 bytes to 48 KiB, one lane each; they are
// SIGKILLed at random moments, *ring.kills times in all, and replaced, the
// replacement taking over the dead one's lane. For every incarnation, every
// message whose Send returned nil arrives, in order, once; nothing else
// arrives; and the ring never stalls.
func TestLanesProducerKills(t *testing.T) {
	dir := t.TempDir()
	r := newRing(t, ring.Options{Dir: dir, Mode: ring.MPSC, Slots: 8, Capacity: 128 << 10, MaxMessage: 48 << 10,
		Checksum: true, Wait: ring.Wait{PeerCheck: 10 * time.Millisecond}})
	c, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	const harnesses, finalCount = 4, 500
	var mu sync.Mutex
	var ids, killed int
	acked := map[int]int{} // last acknowledged sequence number per incarnation
	finals := map[int]bool{}
	done := make(chan error, harnesses)
	for h := range harnesses {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(h), 11))
			for {
				mu.Lock()
				id := ids
				ids++
				final := killed >= *producerKills
				if final {
					finals[id] = true
				} else {
					killed++
				}
				acked[id] = -1
				mu.Unlock()
				n := 0
				if final {
					n = finalCount
				}
				cmd := laneChild(dir, r.Name(), "lane-produce", id, n)
				out, err := cmd.StdoutPipe()
				if err == nil {
					err = cmd.Start()
				}
				if err != nil {
					done <- err
					return
				}
				sc := bufio.NewScanner(out)
				if !sc.Scan() || sc.Text() != "ready" {
					done <- fmt.Errorf("producer %d did not start", id)
					return
				}
				if !final {
					delay := time.Duration(rng.IntN(3000)) * time.Microsecond
					time.AfterFunc(delay, func() { cmd.Process.Signal(syscall.SIGKILL) })
				}
				for sc.Scan() {
					seq, err := strconv.Atoi(sc.Text())
					if err != nil {
						done <- fmt.Errorf("producer %d said %q", id, sc.Text())
						return
					}
					mu.Lock()
					acked[id] = seq
					mu.Unlock()
				}
				err = cmd.Wait()
				if final {
					done <- err
					return
				}
			}
		}()
	}

	next := map[int]int{}
	received := 0
	var maxGap time.Duration
	last := time.Now()
	finished := 0
	recv := func(ctx context.Context) ([]byte, error) { return c.RecvContext(ctx) }
	for finished < harnesses {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		m, err := recv(ctx)
		cancel()
		if err == io.EOF {
			// Every producer attached so far has closed, and the next
			// incarnations have not attached yet.
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("after %d messages: %v", received, err)
		}
		now := time.Now()
		maxGap, last = max(maxGap, now.Sub(last)), now
		id, seq, err := laneCheck(m, r.MaxMessage())
		if err != nil {
			t.Fatal(err)
		}
		if seq != next[id] {
			t.Fatalf("producer %d: message %d arrived, expected %d", id, seq, next[id])
		}
		next[id]++
		received++
		mu.Lock()
		if finals[id] && next[id] == finalCount {
			finished++
		}
		mu.Unlock()
	}
	for range harnesses {
		if err := <-done; err != nil {
			t.Fatalf("a producer that was not killed failed: %v", err)
		}
	}
	// Every producer is gone: what is left in the lanes is all there is.
	for {
		m, err := c.TryRecv()
		if errors.Is(err, ring.ErrEmpty) || err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		id, seq, err := laneCheck(m, r.MaxMessage())
		if err != nil {
			t.Fatal(err)
		}
		if seq != next[id] {
			t.Fatalf("producer %d: message %d arrived, expected %d", id, seq, next[id])
		}
		next[id]++
		received++
	}
	lost := 0
	for id, a := range acked {
		if next[id] <= a {
			lost++
			t.Errorf("producer %d: Send returned nil for messages up to %d; %d arrived", id, a, next[id])
		}
	}
	t.Logf("%d messages from %d producer processes, %d SIGKILLed; longest wait between messages %v",
		received, ids, killed, maxGap.Round(time.Millisecond))
	if lost > 0 {
		t.Fatalf("%d incarnations lost acknowledged messages", lost)
	}
}

// TestLanesConsumerKills: consumer processes are SIGKILLed *ring.consumer-
// kills times, at random moments, while two producer processes stream
// messages of 8 bytes to 48 KiB; each consumer reports a message after
// Peek and before Release. Nothing committed is lost, each producer's
// messages arrive in order, and the only messages delivered twice are
// those a killed consumer had peeked and not released: at most one per
// kill.
func TestLanesConsumerKills(t *testing.T) {
	dir := t.TempDir()
	r := newRing(t, ring.Options{Dir: dir, Mode: ring.MPSC, Slots: 4, Capacity: 128 << 10, MaxMessage: 48 << 10,
		Wait: ring.Wait{PeerCheck: 10 * time.Millisecond}})
	kills := *consumerKills
	const producers = 2
	each := 20 * kills / producers
	var wg sync.WaitGroup
	for id := range producers {
		cmd := laneChild(dir, r.Name(), "lane-produce", id, each)
		cmd.Stdout = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); cmd.Wait() }()
	}
	seen := map[[2]int]int{}
	lastSeq := map[int]int{}
	dups := 0
	rng := rand.New(rand.NewPCG(3, 5))
	for k := 0; ; k++ {
		cmd := laneChild(dir, r.Name(), "lane-consume", 0, 0)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := 1 + rng.IntN(38)
		sc := bufio.NewScanner(out)
		for lines := 0; sc.Scan(); lines++ {
			var id, seq int
			if _, err := fmt.Sscanf(sc.Text(), "%d %d", &id, &seq); err != nil {
				t.Fatalf("consumer said %q", sc.Text())
			}
			if s, ok := lastSeq[id]; ok && seq < s {
				t.Fatalf("producer %d: message %d after %d", id, seq, s)
			}
			lastSeq[id] = seq
			if seen[[2]int{id, seq}]++; seen[[2]int{id, seq}] > 1 {
				dups++
			}
			if k < kills && lines == killAfter {
				cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		err = cmd.Wait()
		if k >= kills {
			if err != nil {
				t.Fatalf("last consumer: %v", err)
			}
			break
		}
	}
	wg.Wait()
	for id := range producers {
		for seq := range each {
			if seen[[2]int{id, seq}] == 0 {
				t.Fatalf("producer %d message %d never delivered", id, seq)
			}
		}
	}
	if dups > kills {
		t.Fatalf("%d messages delivered twice after %d consumer kills", dups, kills)
	}
	t.Logf("%d messages, %d consumer kills, %d redelivered", producers*each, kills, dups)
}

// TestLanesFrozenProducer: one of three producer processes is frozen with
// SIGSTOP for 5 s. The other two lanes keep flowing, and their latency is
// reported; after SIGCONT the frozen producer's messages arrive too, none
// lost, none out of order.
func TestLanesFrozenProducer(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: freezes a producer for 5 s")
	}
	dir := t.TempDir()
	r := newRing(t, ring.Options{Dir: dir, Mode: ring.MPSC, Slots: 4, Capacity: 64 << 10,
		Wait: ring.Wait{PeerCheck: 10 * time.Millisecond}})
	c, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	const producers, each, frozen, freeze = 3, 80_000, 0, 5 * time.Second
	cmds := make([]*exec.Cmd, producers)
	errs := make(chan error, producers)
	for id := range producers {
		cmd := laneChild(dir, r.Name(), "lane-timed", id, each)
		out, err := cmd.StdoutPipe()
		if err == nil {
			err = cmd.Start()
		}
		if err != nil {
			t.Fatal(err)
		}
		if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
			t.Fatalf("producer %d did not start: %q %v", id, line, err)
		}
		cmds[id] = cmd
		go func() { errs <- cmd.Wait() }()
	}
	time.Sleep(200 * time.Millisecond)
	if err := cmds[frozen].Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	thawed := stopped.Add(freeze)
	time.AfterFunc(freeze, func() { cmds[frozen].Process.Signal(syscall.SIGCONT) })

	next := make([]int, producers)
	var during []time.Duration // latency of the others' messages while one is frozen
	var frozenDuring int
	for total := 0; total < producers*each; total++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		m, err := c.RecvContext(ctx)
		cancel()
		if err != nil {
			t.Fatalf("after %d messages: %v", total, err)
		}
		now := time.Now()
		id, seq := int(binary.LittleEndian.Uint32(m)), int(binary.LittleEndian.Uint32(m[4:]))
		if id >= producers || seq != next[id] {
			t.Fatalf("producer %d: message %d arrived, expected %d", id, seq, next[id%producers])
		}
		next[id]++
		sent := time.Unix(0, int64(binary.LittleEndian.Uint64(m[8:])))
		if sent.After(stopped.Add(100*time.Millisecond)) && now.Before(thawed.Add(-100*time.Millisecond)) {
			if id == frozen {
				frozenDuring++
			} else {
				during = append(during, now.Sub(sent))
			}
		}
	}
	for range producers {
		if err := <-errs; err != nil {
			t.Fatalf("producer: %v", err)
		}
	}
	if frozenDuring != 0 {
		t.Errorf("%d messages of the frozen producer were sent while it was frozen", frozenDuring)
	}
	// 4.8 s of two producers at one message per 100 µs is ~96,000 messages;
	// a quarter of that shows the lanes flowed throughout.
	if len(during) < 20_000 {
		t.Fatalf("only %d messages of the other producers arrived while one was frozen", len(during))
	}
	slices.Sort(during)
	t.Logf("while producer %d was frozen for %v: %d messages of the others, latency p50 %v, p99 %v, max %v",
		frozen, freeze, len(during), during[len(during)/2], during[len(during)*99/100], during[len(during)-1])
}
