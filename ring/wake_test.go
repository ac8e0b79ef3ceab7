package ring

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// Wake-up tests. Both sides wait in Block mode with a PeerCheck of an
// hour, so a parked side sleeps until a futex wake: no periodic check
// rescues a lost wake-up, and a lost one shows as a call still blocked
// when wakeBound runs out. Each case runs between goroutines and between
// processes.

var wakeWait = Wait{Mode: Block, PeerCheck: time.Hour}

// wakeBound is how long a woken side may take to return.
const wakeBound = 5 * time.Second

// wakeRing creates a ring whose handles here wait as wakeWait says.
func wakeRing(t *testing.T, dir string, o Options) *Ring {
	t.Helper()
	o.Dir, o.Wait = dir, wakeWait
	r, err := Create("", o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// wakeProducerAt takes producers of r until one has a lane >= lane, and
// returns that one; the others stay attached.
func wakeProducerAt(r *Ring, lane int) (*Producer, error) {
	for {
		p, err := r.Producer()
		if err != nil || p.Lane() >= lane {
			return p, err
		}
	}
}

// advWakeSend takes a producer on a lane >= RINGWIRE_ADV_LANE, says
// "ready LANE", and on "go" sends "wake" and says "sent". It keeps its
// roles until killed.
func advWakeSend() error {
	r, err := Open(os.Getenv(envAdvName), advAttach())
	if err != nil {
		return err
	}
	p, err := wakeProducerAt(r, advEnvInt("RINGWIRE_ADV_LANE"))
	if err != nil {
		return err
	}
	fmt.Printf("ready %d\n", p.Lane())
	if err := advExpect("go"); err != nil {
		return err
	}
	if err := p.Send([]byte("wake")); err != nil {
		return err
	}
	fmt.Println("sent")
	return advHold()
}

// advWakeFill fills its lane with 1000-byte messages, says "full N", then
// sends one more, which waits for room, and says "sent".
func advWakeFill() error {
	p, err := OpenProducer(os.Getenv(envAdvName), advAttach())
	if err != nil {
		return err
	}
	n, err := wakeFill(p)
	if err != nil {
		return err
	}
	fmt.Printf("full %d\n", n)
	if err := p.Send(make([]byte, 1000)); err != nil {
		return err
	}
	fmt.Println("sent")
	return advHold()
}

func wakeFill(p *Producer) (int, error) {
	for n := 0; ; n++ {
		if err := p.TrySend(make([]byte, 1000)); err != nil {
			if errors.Is(err, ErrFull) {
				return n, nil
			}
			return n, err
		}
	}
}

// advEcho receives RINGWIRE_ADV_N messages from ring RINGWIRE_ADV_NAME and
// sends each back on ring RINGWIRE_ADV_NAME2.
func advEcho() error {
	o := advAttach()
	c, err := OpenConsumer(os.Getenv(envAdvName), o)
	if err != nil {
		return err
	}
	p, err := OpenProducer(os.Getenv("RINGWIRE_ADV_NAME2"), o)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	if err := echo(c, p, advEnvInt("RINGWIRE_ADV_N")); err != nil {
		return err
	}
	return errors.Join(p.Close(), c.Close())
}

func echo(c *Consumer, p *Producer, n int) error {
	buf := make([]byte, 0, 64)
	for i := range n {
		m, err := c.RecvAppend(buf[:0])
		if err != nil {
			return fmt.Errorf("echo: message %d: %w", i, err)
		}
		if err := p.Send(m); err != nil {
			return fmt.Errorf("echo: reply %d: %w", i, err)
		}
	}
	return nil
}

// pingPong sends n numbered messages on p and checks that each comes back
// on c before sending the next.
func pingPong(p *Producer, c *Consumer, n int) error {
	var msg [8]byte
	buf := make([]byte, 0, 64)
	for i := range n {
		binary.LittleEndian.PutUint64(msg[:], uint64(i))
		if err := p.Send(msg[:]); err != nil {
			return fmt.Errorf("ping %d: %w", i, err)
		}
		m, err := c.RecvAppend(buf[:0])
		if err != nil {
			return fmt.Errorf("pong %d: %w", i, err)
		}
		if !bytes.Equal(m, msg[:]) {
			return fmt.Errorf("pong %d: %x", i, m)
		}
	}
	return nil
}

// wakeResult is what a call on another goroutine returned.
type wakeResult struct {
	msg []byte
	err error
}

// wakeAwait waits up to d for a result; on a timeout it reports the lost
// wake-up and runs unblock, which must end the call, and waits for it.
func wakeAwait(t *testing.T, what string, done <-chan wakeResult, d time.Duration, unblock func()) wakeResult {
	t.Helper()
	select {
	case res := <-done:
		return res
	case <-time.After(d):
		t.Errorf("%s: still parked %v later: a lost wake-up", what, d)
		unblock()
		return <-done
	}
}

// wakePeer is the side that wakes the parked one: a goroutine of this
// process, or a child process.
type wakePeer struct {
	name string
	// sender takes a producer on a lane >= lane of r and returns a func
	// that sends "wake" on it.
	sender func(t *testing.T, r *Ring, dir string, lane int) func()
}

var wakePeers = []wakePeer{
	{"goroutines", func(t *testing.T, r *Ring, _ string, lane int) func() {
		p, err := wakeProducerAt(r, lane)
		if err != nil {
			t.Fatal(err)
		}
		return func() {
			if err := p.Send([]byte("wake")); err != nil {
				t.Errorf("Send: %v", err)
			}
		}
	}},
	{"processes", func(t *testing.T, r *Ring, dir string, lane int) func() {
		child := advStart(t, "wake-send", dir, r.Name(), "RINGWIRE_ADV_WAIT=block-hour",
			"RINGWIRE_ADV_LANE="+strconv.Itoa(lane))
		if got := child.expect(t, "ready", 10*time.Second); got != "ready "+strconv.Itoa(lane) {
			t.Fatalf("child producer: %q, want lane %d", got, lane)
		}
		return func() {
			child.say(t, "go")
			child.expect(t, "sent", wakeBound)
		}
	}},
}

// TestWakeConsumerParked: the consumer parks on an empty ring; the
// producer's commit must wake it (Producer.signal's futex wake). On an
// MPSC ring the producer has a cold lane (lane 4: the first four start
// hot), so its commit must also set the lane's ready bit.
func TestWakeConsumerParked(t *testing.T) {
	for _, peer := range wakePeers {
		for _, mode := range []Mode{SPSC, MPSC} {
			t.Run(peer.name+"/"+mode.String(), func(t *testing.T) {
				dir := t.TempDir()
				o, lane := Options{Capacity: 4096}, 0
				if mode == MPSC {
					o.Mode, o.Slots, lane = MPSC, 8, 4
				}
				r := wakeRing(t, dir, o)
				c, err := r.Consumer()
				if err != nil {
					t.Fatal(err)
				}
				send := peer.sender(t, r, dir, lane)
				if lane > 0 && r.lanes[lane].signal.Load() == 0 {
					t.Fatalf("lane %d is hot before the consumer parked", lane)
				}
				done := make(chan wakeResult, 1)
				go func() {
					m, err := c.Recv()
					done <- wakeResult{m, err}
				}()
				if !advWaitFor(wakeBound, func() bool { return r.consParked.Load() != 0 }) {
					t.Fatal("the consumer never parked")
				}
				start := time.Now()
				send()
				res := wakeAwait(t, "Recv", done, wakeBound, func() { c.Close() })
				if res.err != nil || string(res.msg) != "wake" {
					t.Fatalf("Recv: %q, %v", res.msg, res.err)
				}
				t.Logf("woken after %v", time.Since(start).Round(time.Microsecond))
			})
		}
	}
}

// TestWakeColdLaneTryRecv: a consumer that only polls with TryRecv never
// sweeps the cold lanes itself; it finds a cold lane's message through the
// lane's ready bit alone, which the producer sets at its commit.
func TestWakeColdLaneTryRecv(t *testing.T) {
	for _, peer := range wakePeers {
		t.Run(peer.name, func(t *testing.T) {
			dir := t.TempDir()
			r := wakeRing(t, dir, Options{Capacity: 4096, Mode: MPSC, Slots: 8})
			c, err := r.Consumer()
			if err != nil {
				t.Fatal(err)
			}
			send := peer.sender(t, r, dir, 4)
			if r.lanes[4].signal.Load() == 0 {
				t.Fatal("lane 4 is hot before the send")
			}
			for range 100 { // polls of the hot lanes only
				if _, err := c.TryRecv(); !errors.Is(err, ErrEmpty) {
					t.Fatalf("TryRecv on an empty ring: %v", err)
				}
			}
			send()
			start := time.Now()
			for {
				m, err := c.TryRecv()
				if err == nil {
					if string(m) != "wake" {
						t.Fatalf("TryRecv: %q", m)
					}
					break
				}
				if !errors.Is(err, ErrEmpty) {
					t.Fatalf("TryRecv: %v", err)
				}
				if time.Since(start) > wakeBound {
					t.Fatalf("TryRecv still finds nothing %v after a commit on cold lane 4: its ready bit was not set", wakeBound)
				}
				time.Sleep(50 * time.Microsecond)
			}
		})
	}
}

// TestWakeProducerParked: a producer parks on a full lane; the consumer
// receives until the free space reaches the producer's low-water mark (a
// quarter of the lane), and no further. The receive that reaches it must
// wake the producer (Consumer.wakeProducer).
func TestWakeProducerParked(t *testing.T) {
	for _, peer := range []string{"goroutines", "processes"} {
		t.Run(peer, func(t *testing.T) {
			dir := t.TempDir()
			const capacity = 64 << 10
			r := wakeRing(t, dir, Options{Capacity: capacity})
			c, err := r.Consumer()
			if err != nil {
				t.Fatal(err)
			}
			var filled int
			var sent func() bool // waits for the parked Send to return
			if peer == "goroutines" {
				p, err := r.Producer()
				if err != nil {
					t.Fatal(err)
				}
				if filled, err = wakeFill(p); err != nil {
					t.Fatal(err)
				}
				done := make(chan wakeResult, 1)
				go func() { done <- wakeResult{err: p.Send(make([]byte, 1000))} }()
				sent = func() bool {
					res := wakeAwait(t, "Send", done, wakeBound, func() { p.Close() })
					return res.err == nil
				}
			} else {
				child := advStart(t, "wake-fill", dir, r.Name(), "RINGWIRE_ADV_WAIT=block-hour")
				filled, _ = strconv.Atoi(child.expect(t, "full ", 10*time.Second)[len("full "):])
				sent = func() bool {
					select {
					case line := <-child.lines:
						return line == "sent"
					case <-time.After(wakeBound):
						t.Errorf("Send in the child: still parked %v later: a lost wake-up", wakeBound)
						return false
					}
				}
			}
			l := &r.lanes[0]
			if !advWaitFor(wakeBound, func() bool { return l.waiting.Load() != 0 }) {
				t.Fatal("the producer never parked")
			}
			// Receive until the free space reaches what the producer
			// waits for.
			received := 0
			for {
				w := uint64(le32(l.waiting.Load()))
				if w == 0 || capacity-(le64(l.tail.Load())-le64(l.head.Load())) >= w {
					break
				}
				if _, err := c.TryRecv(); err != nil {
					t.Fatalf("receive %d of %d: %v", received, filled, err)
				}
				received++
			}
			if received == 0 || received >= filled {
				t.Fatalf("%d of %d messages received to reach the low-water mark", received, filled)
			}
			start := time.Now()
			if !sent() {
				t.Fatalf("the parked Send failed or was not woken after %d of %d messages were received", received, filled)
			}
			t.Logf("woken after %d of %d messages received, in %v", received, filled, time.Since(start).Round(time.Microsecond))
		})
	}
}

// TestWakePingPong: 2000 round trips, every one a park and a wake-up on
// each side, between goroutines and between processes.
func TestWakePingPong(t *testing.T) {
	const n = 2000
	for _, peer := range []string{"goroutines", "processes"} {
		t.Run(peer, func(t *testing.T) {
			dir := t.TempDir()
			req := wakeRing(t, dir, Options{Capacity: 4096})
			rep := wakeRing(t, dir, Options{Capacity: 4096})
			p, err := req.Producer()
			if err != nil {
				t.Fatal(err)
			}
			c, err := rep.Consumer()
			if err != nil {
				t.Fatal(err)
			}
			echoDone := make(chan error, 1)
			if peer == "goroutines" {
				ec, err := req.Consumer()
				if err != nil {
					t.Fatal(err)
				}
				ep, err := rep.Producer()
				if err != nil {
					t.Fatal(err)
				}
				go func() { echoDone <- echo(ec, ep, n) }()
			} else {
				child := advStart(t, "echo", dir, req.Name(), "RINGWIRE_ADV_WAIT=block-hour",
					"RINGWIRE_ADV_NAME2="+rep.Name(), "RINGWIRE_ADV_N="+strconv.Itoa(n))
				child.expect(t, "ready", 10*time.Second)
				go func() {
					for range child.lines { // to its end, before Wait closes the pipe
					}
					echoDone <- child.cmd.Wait()
				}()
			}
			start := time.Now()
			done := make(chan wakeResult, 1)
			go func() { done <- wakeResult{err: pingPong(p, c, n)} }()
			res := wakeAwait(t, "ping-pong", done, 30*time.Second, func() {
				// What each ring's shared words say, for the record.
				for _, r := range []*Ring{req, rep} {
					l := &r.lanes[0]
					t.Logf("ring %s: consumer parked %d futex %d state %d; lane 0 head %d tail %d signal %d waiting %d word at head %#x; ready %#x",
						r.Name(), r.consParked.Load(), r.consSeq.Load(), r.consState.Load(), l.head.Load(), l.tail.Load(),
						l.signal.Load(), l.waiting.Load(), l.words[int(l.head.Load()&r.geo.mask)/4].Load(), r.ready[0].Load())
				}
				cl := &c.lanes[0]
				t.Logf("this process's consumer (on %s): hot list %v, lane 0 hot %v head %d released %d idle %d",
					rep.Name(), c.hot, cl.hot, cl.head, cl.released, cl.idle)
				req.Close()
				rep.Close()
			})
			if res.err != nil {
				t.Fatal(res.err)
			}
			el := time.Since(start)
			if err := <-echoDone; err != nil {
				t.Fatalf("echo: %v", err)
			}
			t.Logf("%d round trips in %v, %v each", n, el.Round(time.Millisecond), (el / n).Round(time.Microsecond))
		})
	}
}
