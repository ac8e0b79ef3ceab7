package ring

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringwire/ringwire/codec"
	"github.com/ringwire/ringwire/shm"
)

// Tests against a hostile process: a real peer, re-executed from the test
// binary, that writes into a live ring's shared memory while this
// process's producers and consumer use it.

// advScribble is the scribbler: on "attack NAME" it maps ring NAME and
// writes random and plausible-looking values at random offsets of the
// consumer signal block, the ready set, the lane control blocks and the
// data regions, in bursts, until "stop"; then it says "stopped".
func advScribble() error {
	cmds := make(chan string)
	go func() {
		s := bufio.NewScanner(os.Stdin)
		for s.Scan() {
			cmds <- s.Text()
		}
		close(cmds)
	}()
	rng := rand.New(rand.NewPCG(uint64(advEnvInt("RINGWIRE_ADV_SEED")), 7))
	var r *Ring
	var writes int
	for {
		var cmd string
		var ok bool
		if r == nil {
			cmd, ok = <-cmds
		} else {
			select {
			case cmd, ok = <-cmds:
			default:
				writes += hostileScribble(r, rng)
				time.Sleep(time.Duration(rng.IntN(800)) * time.Microsecond)
				continue
			}
		}
		if !ok {
			return nil
		}
		switch name, _ := strings.CutPrefix(cmd, "attack "); {
		case cmd == "stop":
			if r != nil {
				r.Close()
				r = nil
			}
			fmt.Printf("stopped %d\n", writes)
			writes = 0
		case name != cmd:
			var err error
			if r, err = Open(name, advAttach()); err != nil {
				return err
			}
			fmt.Println("attacking")
		default:
			return fmt.Errorf("unknown command %q", cmd)
		}
	}
}

// hostileScribble makes a burst of hostile writes and returns how many.
func hostileScribble(r *Ring, rng *rand.Rand) int {
	b, g := r.seg.Bytes(), r.geo
	regions := [...]struct{ off, n int }{
		{1 * blockSize, blockSize},           // consumer signals
		{offReady, blockSize},                // the ready set
		{offLaneTable, g.lanes * laneSize},   // lane control blocks
		{g.dataOff, g.lanes * g.capacity},    // data regions
		{g.dataOff, g.lanes * g.capacity},    // (twice as likely)
		{offLaneTable, g.lanes * laneSize},   // (twice as likely)
		{offConsSeq, 16},                     // the consumer's futex and parked words
		{offLaneTable + blockSize, 16},       // lane 0's head and futex words
		{offLaneTable + offLaneSignal, 4},    // lane 0's signal word
		{offLaneTable + offLaneState - 8, 8}, // lane 0's tail
	}
	n := 1 + rng.IntN(4)
	for range n {
		if rng.IntN(3) == 0 {
			hostileAtHead(r, rng)
			continue
		}
		rg := regions[rng.IntN(len(regions))]
		off := rg.off + rng.IntN(rg.n)
		switch rng.IntN(6) {
		case 0: // random bytes
			for k := range min(1+rng.IntN(8), rg.off+rg.n-off) {
				b[off+k] = byte(rng.Uint32())
			}
		case 1: // a plausible length word, or zero
			off &^= 3
			v := uint32(rng.IntN(g.maxFrame + 64))
			if rng.IntN(4) == 0 {
				v = 0
			}
			binary.LittleEndian.PutUint32(b[off:], v)
		case 2: // a plausible cursor: the word moved by up to two laps
			off &^= 7
			old := binary.LittleEndian.Uint64(b[off:])
			d := uint64(rng.IntN(4*g.capacity)) - uint64(2*g.capacity)
			if rng.IntN(2) == 0 {
				d &^= 7
			}
			binary.LittleEndian.PutUint64(b[off:], old+d)
		case 3: // a bit flipped
			b[off] ^= 1 << rng.IntN(8)
		case 4: // a frame header: a type and flags near the valid ones
			off &^= 7
			if off+8 <= rg.off+rg.n {
				binary.LittleEndian.PutUint16(b[off+codec.OffType:], uint16(rng.IntN(4)))
				binary.LittleEndian.PutUint16(b[off+codec.OffFlags:], uint16(rng.IntN(4)))
			}
		case 5: // a small word: a state, a flag, a count
			off &^= 3
			binary.LittleEndian.PutUint32(b[off:], uint32(rng.IntN(4)))
		}
	}
	return n
}

// hostileAtHead rewrites the record at a lane's head, where the consumer
// reads next: a length at or just past a limit, a type or flags near the
// valid ones, or a padding frame. The hostile process reads the head
// first, as any process that maps the ring can.
func hostileAtHead(r *Ring, rng *rand.Rand) {
	b, g := r.seg.Bytes(), r.geo
	lane := rng.IntN(g.lanes)
	h := binary.LittleEndian.Uint64(b[laneBase(lane)+offLaneHead:])
	off := int(h&g.mask) &^ 7
	rec := b[g.dataOff+lane*g.capacity+off:]
	hdr := codec.HeaderLen(g.frameFlag)
	switch rng.IntN(3) {
	case 0: // a length at a limit
		lengths := []int{1, hdr - 1, hdr, g.maxFrame, g.maxFrame + 1, g.maxFrame + 8,
			g.capacity - off, g.capacity - off + 8, g.capacity, 1 << 31, -8}
		binary.LittleEndian.PutUint32(rec, uint32(lengths[rng.IntN(len(lengths))]))
	case 1: // a type and flags
		binary.LittleEndian.PutUint16(rec[codec.OffType:], uint16(rng.IntN(4)))
		binary.LittleEndian.PutUint16(rec[codec.OffFlags:], uint16(g.frameFlag)^uint16(rng.IntN(2)))
	case 2: // a padding frame, of a length near the end of the lane
		binary.LittleEndian.PutUint16(rec[codec.OffType:], uint16(codec.TypePadding))
		binary.LittleEndian.PutUint16(rec[codec.OffFlags:], 0)
		binary.LittleEndian.PutUint32(rec, uint32(g.capacity-off+8*(rng.IntN(3)-1)))
	}
}

// hostileMsgSize and hostileMsgFill define message seq of producer id, so
// that a receiver can tell a genuine message (maybe an old one, replayed
// by a hostile cursor) from bytes the hostile process made up.
func hostileMsgSize(id, seq uint32, max int) int {
	return 8 + int((seq*37+id*101)%uint32(max-7))
}

func hostileMsgFill(buf []byte, id, seq uint32) {
	binary.LittleEndian.PutUint32(buf, id)
	binary.LittleEndian.PutUint32(buf[4:], seq)
	for k := 8; k < len(buf); k++ {
		buf[k] = byte(seq*31 + uint32(k)*7 + id)
	}
}

// hostileGenuine reports whether msg is a message some producer sent.
func hostileGenuine(msg []byte, max int) bool {
	if len(msg) < 8 {
		return false
	}
	id, seq := binary.LittleEndian.Uint32(msg), binary.LittleEndian.Uint32(msg[4:])
	if len(msg) != hostileMsgSize(id, seq, max) {
		return false
	}
	want := make([]byte, len(msg))
	hostileMsgFill(want, id, seq)
	return bytes.Equal(msg, want)
}

// hostileAllowed reports whether err is one that a call may return when a
// hostile process writes into the ring.
func hostileAllowed(err error) bool {
	for _, e := range []error{ErrCorrupt, ErrEmpty, ErrFull, context.DeadlineExceeded, io.EOF, ErrPeerDead, ErrClosed} {
		if errors.Is(err, e) {
			return true
		}
	}
	return err == nil
}

// hostileSlack is how far past its deadline a call may return, and how
// long a call that does not wait may take. The ring checks a deadline
// within microseconds of it; the slack is for the scheduler, which on
// this 2-core machine runs a spinning producer, a spinning consumer, the
// hostile process and other test binaries at once, and has been seen to
// keep a runnable goroutine off the CPU for over a second.
const hostileSlack = 3 * time.Second

// hostileTally counts what the calls returned.
type hostileTally struct {
	mu     sync.Mutex
	counts map[string]int
}

func (h *hostileTally) add(what string, err error) {
	kind := "ok"
	for _, k := range []struct {
		err  error
		name string
	}{{ErrCorrupt, "corrupt"}, {ErrEmpty, "empty"}, {ErrFull, "full"}, {context.DeadlineExceeded, "deadline"},
		{io.EOF, "eof"}, {ErrPeerDead, "peer dead"}, {ErrClosed, "closed"}, {ErrBusy, "busy"}} {
		if errors.Is(err, k.err) {
			kind = k.name
			break
		}
	}
	if err != nil && kind == "ok" {
		kind = "other"
	}
	h.mu.Lock()
	h.counts[what+": "+kind]++
	h.mu.Unlock()
}

// hostileCheck checks one call's outcome: an allowed error, on time.
func hostileCheck(t *testing.T, what string, err error, start, deadline time.Time) {
	t.Helper()
	if !hostileAllowed(err) {
		t.Errorf("%s: %v: not an error a hostile peer may cause", what, err)
	}
	if late := time.Since(deadline); late > hostileSlack {
		t.Errorf("%s returned %v past its deadline (started %v before it)", what, late.Round(time.Millisecond), deadline.Sub(start).Round(time.Millisecond))
	}
}

// hostileGo runs fn on a goroutine of wg, turning a panic into a test
// failure with its stack.
func hostileGo(t *testing.T, wg *sync.WaitGroup, what string, fn func()) {
	wg.Go(func() {
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("%s panicked: %v\n%s", what, p, debug.Stack())
			}
		}()
		fn()
	})
}

// hostileDeadline returns a context whose deadline is a few milliseconds
// away.
func hostileDeadline(rng *rand.Rand) (context.Context, context.CancelFunc, time.Time) {
	d := time.Now().Add(time.Duration(1+rng.IntN(30)) * time.Millisecond)
	ctx, cancel := context.WithDeadline(context.Background(), d)
	return ctx, cancel, d
}

// hostileProduce sends messages of producer id through every sending call
// until stop, taking a lane again after an error that leaves it unusable.
func hostileProduce(t *testing.T, r *Ring, id uint32, stop *atomic.Bool, tally *hostileTally) {
	rng := rand.New(rand.NewPCG(uint64(id), 1))
	var p *Producer
	defer func() {
		if p != nil {
			p.Close()
		}
	}()
	max := r.MaxMessage()
	buf := make([]byte, max)
	var seq uint32
	for !stop.Load() {
		if p == nil {
			var err error
			start := time.Now()
			p, err = r.Producer()
			hostileCheck(t, "Producer", err, start, start)
			if err != nil {
				if !errors.Is(err, ErrBusy) {
					tally.add("Producer", err)
				}
				time.Sleep(time.Millisecond)
				continue
			}
		}
		msg := buf[:hostileMsgSize(id, seq, max)]
		hostileMsgFill(msg, id, seq)
		ctx, cancel, deadline := hostileDeadline(rng)
		start := time.Now()
		var err error
		var what string
		switch rng.IntN(4) {
		case 0:
			what, err = "SendContext", p.SendContext(ctx, msg)
		case 1:
			what, err = "TrySend", p.TrySend(msg)
			deadline = start
		case 2:
			what = "ReserveContext"
			var room []byte
			if room, err = p.ReserveContext(ctx, len(msg)); err == nil {
				if len(room) != len(msg) {
					t.Errorf("ReserveContext(%d) gave %d bytes", len(msg), len(room))
				}
				copy(room, msg)
				err = p.Commit()
			}
		case 3:
			what = "SendBatch"
			var n int
			n, err = p.SendBatch(ctx, [][]byte{msg})
			if (n == 1) != (err == nil) {
				t.Errorf("SendBatch of one message: %d sent, error %v", n, err)
			}
		}
		cancel()
		hostileCheck(t, what, err, start, deadline)
		tally.add(what, err)
		switch {
		case err == nil:
			seq++
		case errors.Is(err, ErrFull), errors.Is(err, context.DeadlineExceeded):
		case errors.Is(err, ErrClosed), errors.Is(err, ErrPeerDead):
			// A consumer state the hostile process wrote: wait a little.
			time.Sleep(time.Millisecond)
		default:
			p.Close()
			p = nil
		}
	}
}

// hostileConsume receives through every receiving call until stop, taking
// the role again after an error that leaves it unusable.
func hostileConsume(t *testing.T, r *Ring, stop *atomic.Bool, tally *hostileTally) {
	rng := rand.New(rand.NewPCG(99, 1))
	var c *Consumer
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	max := r.MaxMessage()
	buf := make([]byte, 0, max)
	for !stop.Load() {
		if c == nil {
			var err error
			start := time.Now()
			c, err = r.Consumer()
			hostileCheck(t, "Consumer", err, start, start)
			if err != nil {
				tally.add("Consumer", err)
				time.Sleep(time.Millisecond)
				continue
			}
		}
		ctx, cancel, deadline := hostileDeadline(rng)
		start := time.Now()
		var err error
		var what string
		var msgs [][]byte
		verified := false // msgs were copied, then verified
		switch rng.IntN(5) {
		case 0:
			var m []byte
			what, verified = "RecvContext", true
			if m, err = c.RecvContext(ctx); err == nil {
				msgs = append(msgs, m)
			}
		case 1:
			var m []byte
			what, verified = "TryRecvAppend", true
			if m, err = c.TryRecvAppend(buf[:0]); err == nil {
				msgs = append(msgs, m)
			}
			deadline = start
		case 2:
			var m []byte
			what, verified = "RecvAppendContext", true
			if m, err = c.RecvAppendContext(ctx, buf[:0]); err == nil {
				msgs = append(msgs, m)
			}
		case 3:
			var m []byte
			what = "PeekContext"
			if m, err = c.PeekContext(ctx); err == nil {
				msgs = append(msgs, m)
				if rerr := c.Release(); rerr != nil {
					t.Errorf("Release after Peek: %v", rerr)
				}
			}
		case 4:
			what = "Drain"
			var n int
			n, err = c.Drain(ctx, 1+rng.IntN(32), func(m []byte) error {
				if len(m) > max {
					t.Errorf("Drain gave a message of %d bytes, the maximum is %d", len(m), max)
				}
				return nil
			})
			if n > 0 && err != nil && !errors.Is(err, ErrCorrupt) {
				t.Errorf("Drain: %d messages and %v", n, err)
			}
		}
		cancel()
		hostileCheck(t, what, err, start, deadline)
		tally.add(what, err)
		for _, m := range msgs {
			if len(m) > max {
				t.Errorf("%s gave a message of %d bytes, the maximum is %d", what, len(m), max)
			}
			if verified && r.Checksum() && !hostileGenuine(m, max) {
				t.Errorf("%s gave %d bytes no producer sent, with a nil error", what, len(m))
			}
		}
		switch {
		case err == nil, errors.Is(err, ErrEmpty), errors.Is(err, context.DeadlineExceeded):
		case err == io.EOF, errors.Is(err, ErrPeerDead):
			time.Sleep(time.Millisecond) // a lane state the hostile process wrote
		default:
			c.Close()
			c = nil
		}
	}
}

// TestHostileProcessScribbles: a hostile process writes random and
// plausible values all over a live ring (consumer signals, ready set, lane
// control blocks, data regions) while producers and a consumer in this
// process run every call with deadlines. No call panics or faults, none
// returns past its deadline by more than hostileSlack, no message exceeds
// the maximum, every error is one the API documents for a broken peer,
// and on a ring with checksums every copied message is one a producer
// sent. Each phase uses a fresh ring, so that every phase starts sane.
func TestHostileProcessScribbles(t *testing.T) {
	cases := []struct {
		name      string
		o         Options
		producers int
	}{
		{"spsc-block", Options{Capacity: 8192, MaxMessage: 1000,
			Wait: Wait{Mode: Block, PeerCheck: 20 * time.Millisecond}}, 1},
		{"mpsc-adaptive-checksum", Options{Mode: MPSC, Slots: 4, Capacity: 8192, MaxMessage: 1000, Checksum: true,
			Wait: Wait{PeerCheck: 20 * time.Millisecond}}, 3},
		{"mpsc-spin", Options{Mode: MPSC, Slots: 3, Capacity: 4096, MaxMessage: 600,
			Wait: Wait{Mode: Spin, PeerCheck: 20 * time.Millisecond}}, 2},
	}
	phases, phase := 5, 500*time.Millisecond
	if testing.Short() {
		phases = 2
	}
	for ci, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			child := advStart(t, "scribble", dir, "", "RINGWIRE_ADV_SEED="+strconv.Itoa(ci+1))
			tally := &hostileTally{counts: map[string]int{}}
			writes := 0
			for range phases {
				o := tc.o
				o.Dir = dir
				r, err := Create("", o)
				if err != nil {
					t.Fatal(err)
				}
				var stop atomic.Bool
				var wg sync.WaitGroup
				for id := range tc.producers {
					hostileGo(t, &wg, "producer", func() { hostileProduce(t, r, uint32(id), &stop, tally) })
				}
				hostileGo(t, &wg, "consumer", func() { hostileConsume(t, r, &stop, tally) })
				time.Sleep(20 * time.Millisecond) // some clean traffic first
				child.say(t, "attack "+r.Name())
				child.expect(t, "attacking", 10*time.Second)
				time.Sleep(phase)
				child.say(t, "stop")
				n, _ := strconv.Atoi(strings.TrimPrefix(child.expect(t, "stopped", 10*time.Second), "stopped "))
				writes += n
				stop.Store(true)
				// The calls end by their deadlines; Close ends the rest.
				done := make(chan struct{})
				go func() { wg.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					t.Fatal("the roles' goroutines did not stop within 10s")
				}
				if err := r.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				r.Unlink()
			}
			t.Logf("%d hostile writes; calls: %v", writes, tally.counts)
			if tally.counts["RecvContext: ok"]+tally.counts["TryRecvAppend: ok"]+tally.counts["RecvAppendContext: ok"] == 0 {
				t.Errorf("no message was received: the test exercised nothing")
			}
		})
	}
}

// advFlip is the double-fetcher's adversary: it flips the payload word at
// segment offset RINGWIRE_ADV_OFF and restores it, in a tight loop, until
// killed.
func advFlip() error {
	r, err := Open(os.Getenv(envAdvName), advAttach())
	if err != nil {
		return err
	}
	w, err := shm.Ptr[atomic.Uint32](r.seg.Bytes(), advEnvInt("RINGWIRE_ADV_OFF"))
	if err != nil {
		return err
	}
	v := w.Load()
	fmt.Println("ready")
	for {
		w.Store(v ^ 0x5a5a5a5a)
		w.Store(v)
	}
}

// TestHostileDoubleFetch: a record whose payload a hostile process keeps
// changing and restoring is received over and over, through Recv and
// RecvAppend, on a ring with checksums. Each receive must give either the
// committed bytes exactly, or ErrCorrupt: never different bytes with a nil
// error. It would, if the checksum were verified over shared memory and
// the bytes then copied (a second fetch), rather than verified on the
// copy.
func TestHostileDoubleFetch(t *testing.T) {
	dir := t.TempDir()
	r, err := Create("", Options{Dir: dir, Capacity: 1 << 20, MaxMessage: 256 << 10, Checksum: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	p, err := r.Producer()
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 256<<10)
	for i := range msg {
		msg[i] = byte(i*131 + i>>9)
	}
	if err := p.Send(msg); err != nil {
		t.Fatal(err)
	}
	// The record is at position 0 of lane 0; the word flipped is in the
	// middle of its payload.
	off := r.geo.dataOff + codec.HeaderLen(r.geo.frameFlag) + len(msg)/2
	child := advStart(t, "flip", dir, r.Name(), "RINGWIRE_ADV_OFF="+strconv.Itoa(off))
	child.expect(t, "ready", 10*time.Second)

	cl := &c.lanes[0]
	exact, corrupt := 0, 0
	buf := make([]byte, 0, len(msg))
	start := time.Now()
	for i := 0; ; i++ {
		if el := time.Since(start); el > 3*time.Second || (el > time.Second && exact >= 20 && corrupt >= 20) {
			break
		}
		var got []byte
		var err error
		if i%2 == 0 {
			got, err = c.Recv()
		} else {
			got, err = c.RecvAppend(buf[:0])
		}
		switch {
		case err == nil:
			if !bytes.Equal(got, msg) {
				k := 0
				for k < min(len(got), len(msg)) && got[k] == msg[k] {
					k++
				}
				t.Fatalf("receive %d: %d bytes differing from the committed message at byte %d, with a nil error", i, len(got), k)
			}
			exact++
			// Deliver the record again: put the head back.
			cl.head, cl.released = 0, 0
			r.lanes[0].head.Store(0)
		case errors.Is(err, ErrCorrupt) && errors.Is(err, codec.ErrChecksum):
			corrupt++ // the record stays at the head
		default:
			t.Fatalf("receive %d: %v, want the message or a checksum error", i, err)
		}
	}
	t.Logf("%d exact copies, %d checksum errors in %v", exact, corrupt, time.Since(start).Round(time.Millisecond))
	if exact == 0 || corrupt == 0 {
		t.Errorf("%d exact copies and %d checksum errors: the hostile process never raced a receive, so the test proved nothing", exact, corrupt)
	}
}
