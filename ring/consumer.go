package ring

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/ringwire/ringwire/codec"
	"github.com/ringwire/ringwire/futex"
	"github.com/ringwire/ringwire/shm"
)

// Consumer reads messages from a ring, in order, each once. It holds the
// consumer role until Close (or until its process dies). A Consumer is not
// safe for concurrent use.
//
// The consumer polls the length word at its head position, not the
// producer's tail: a committed length means the record is there, so one
// cache line carries both the signal and a small message.
//
// Everything it reads is validated before use: a length, type, flag,
// padding or checksum that breaks the layout gives ErrCorrupt with the
// position, never a panic or a read outside the data region.
type Consumer struct {
	r    *Ring
	lock unlocker
	mpsc bool

	head      uint64 // position of the next record to read
	released  uint64 // the shared head: head, or the first pinned record (MPSC)
	peeked    int    // size of the frame returned by Peek and not yet released, or 0
	peekedLen int    // its payload length
	flags     codec.Flags

	unflushed counters
	closed    bool

	// MPSC stall handling: the position of a record that was not ready,
	// since when, and when to look at its producer again.
	stallPos   uint64
	stallSince time.Time
	nextProbe  time.Time
	probeEvery time.Duration // stallProbe; tests shorten it
	pins       []pin         // skipped records whose live producers may still write
	onSkip     func(Skip)
}

// Skip describes a record the consumer skipped (MPSC): its producer died
// before committing it, or stalled past Wait.Unblock.
type Skip struct {
	Position  uint64 // where the record started
	Bytes     int    // bytes skipped, padding included
	Slot      int    // the producer's slot, or -1 if no slot claimed it
	OwnerDead bool   // the producer was dead (else it stalled past the timeout)
}

// pin keeps a skipped record's space out of the free space while the live
// producer that claimed it may still write to it.
type pin struct {
	pos   uint64     // the skipped record
	claim uint64     // the producer's claim when it was skipped
	slot  *slotWords // the producer's slot
	lock  int64      // its lock byte
}

// stallProbe is how often a consumer stalled on an unfinished MPSC record
// looks at the producer that claimed it.
const stallProbe = time.Millisecond

// OnSkip sets a function called for every record the consumer skips. It
// runs on the receiving goroutine; nil removes it. Skips are also counted
// in the ring's Stats.
func (c *Consumer) OnSkip(fn func(Skip)) { c.onSkip = fn }

// Consumer claims the consumer role. A second consumer, in this process or
// another, gets ErrBusy while the first is alive. A new consumer continues
// from the last released position: a message that a dead consumer had
// peeked but not released is delivered again.
func (r *Ring) Consumer() (*Consumer, error) {
	if r.seg.ReadOnly() {
		return nil, r.errorf("consumer on a read-only handle: %w", ErrBadOptions)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, r.errorf("consumer: %w", ErrClosed)
	}
	lock, err := r.seg.TryLock(lockConsumer, 1)
	if errors.Is(err, shm.ErrLocked) {
		return nil, r.errorf("consumer: %w", ErrBusy)
	}
	if err != nil {
		return nil, r.errorf("consumer: %w", err)
	}
	c := &Consumer{r: r, lock: lock, head: le64(r.head.Load()), flags: r.geo.frameFlag, mpsc: r.geo.mode == MPSC}
	c.released, c.probeEvery = c.head, stallProbe
	if c.head%codec.Align != 0 {
		lock.Unlock()
		return nil, r.corrupt(c.head, "head not %d-aligned", codec.Align)
	}
	if t := le64(r.tail.Load()); t > c.head && t-c.head > uint64(r.geo.capacity) {
		lock.Unlock()
		return nil, r.corrupt(c.head, "tail %d is more than the capacity ahead", t)
	}
	r.consState.Store(le32(stateAttached))
	r.handles = append(r.handles, c)
	return c, nil
}

// OpenConsumer attaches to the ring called name and claims the consumer
// role. Closing the Consumer closes the attachment too.
func OpenConsumer(name string, o AttachOptions) (*Consumer, error) {
	r, err := Open(name, o)
	if err != nil {
		return nil, err
	}
	c, err := r.Consumer()
	if err != nil {
		r.Close()
		return nil, err
	}
	c.lock = &ownedLock{unlocker: c.lock, r: r}
	return c, nil
}

// Recv returns a copy of the next message, waiting for one as the wait
// strategy says. After the producer closed and every message was read it
// returns io.EOF; if the producer died, ErrPeerDead.
func (c *Consumer) Recv() ([]byte, error) { return c.RecvContext(context.Background()) }

// RecvContext is Recv that gives up when ctx ends, returning ctx.Err().
func (c *Consumer) RecvContext(ctx context.Context) ([]byte, error) {
	return c.RecvAppendContext(ctx, nil)
}

// TryRecv is Recv that returns ErrEmpty instead of waiting.
func (c *Consumer) TryRecv() ([]byte, error) { return c.TryRecvAppend(nil) }

// RecvAppend appends the next message to dst and returns the extended
// slice: with a dst of enough capacity it allocates nothing.
func (c *Consumer) RecvAppend(dst []byte) ([]byte, error) {
	return c.RecvAppendContext(context.Background(), dst)
}

// RecvAppendContext is RecvAppend that gives up when ctx ends.
func (c *Consumer) RecvAppendContext(ctx context.Context, dst []byte) ([]byte, error) {
	msg, size, err := c.nextWait(ctx)
	if err != nil {
		return dst, err
	}
	dst = append(dst, msg...)
	c.release(size, len(msg))
	return dst, nil
}

// TryRecvAppend is RecvAppend that returns ErrEmpty instead of waiting.
func (c *Consumer) TryRecvAppend(dst []byte) ([]byte, error) {
	msg, size, err := c.next()
	if err != nil {
		return dst, err
	}
	dst = append(dst, msg...)
	c.release(size, len(msg))
	return dst, nil
}

// Peek returns the next message in place, without copying, waiting for one
// as Recv does. The slice aliases the ring: it is valid until Release, and
// Release must be called before the next receive. A producer cannot
// overwrite it before then.
func (c *Consumer) Peek() ([]byte, error) { return c.PeekContext(context.Background()) }

// PeekContext is Peek that gives up when ctx ends.
func (c *Consumer) PeekContext(ctx context.Context) ([]byte, error) {
	msg, size, err := c.nextWait(ctx)
	if err != nil {
		return nil, err
	}
	c.peeked, c.peekedLen = size, len(msg)
	return msg, nil
}

// TryPeek is Peek that returns ErrEmpty instead of waiting.
func (c *Consumer) TryPeek() ([]byte, error) {
	msg, size, err := c.next()
	if err != nil {
		return nil, err
	}
	c.peeked, c.peekedLen = size, len(msg)
	return msg, nil
}

// Release hands the message returned by Peek back to the producer.
func (c *Consumer) Release() error {
	if c.peeked == 0 {
		return c.r.errorf("release without a peeked message: %w", ErrPending)
	}
	size, n := c.peeked, c.peekedLen
	c.peeked = 0
	c.release(size, n)
	return nil
}

// nextWait is next that waits for a message.
func (c *Consumer) nextWait(ctx context.Context) ([]byte, int, error) {
	for {
		msg, size, err := c.next()
		if err != ErrEmpty {
			return msg, size, err
		}
		if err := c.r.await(ctx, c, c.r.consSeq); err != nil {
			c.flushStats()
			return nil, 0, err
		}
	}
}

// next validates the record at the head and returns its payload and frame
// size, or ErrEmpty. Padding, and in MPSC the records of dead or stalled
// producers, are consumed on the way, a bounded number per call.
func (c *Consumer) next() ([]byte, int, error) {
	r := c.r
	switch {
	case c.closed:
		return nil, 0, r.errorf("receive: %w", ErrClosed)
	case c.peeked != 0:
		return nil, 0, r.errorf("receive before Release: %w", ErrPending)
	}
	for range 16 {
		off := int(c.head & r.geo.mask)
		l := int32(le32(r.words[off/4].Load())) // acquires the record
		if l > 0 {
			// Padding may fill a data frame's aligned size, so frames are
			// bounded by the aligned max; data frames by the max itself.
			f, err := codec.Decode(r.data, off, codec.AlignUp(r.geo.maxFrame))
			if err != nil {
				return nil, 0, r.corrupt(c.head, "%w", err)
			}
			if f.Type == codec.TypeData && f.Length > r.geo.maxFrame {
				return nil, 0, r.corrupt(c.head, "frame length %d exceeds the max frame %d", f.Length, r.geo.maxFrame)
			}
			if f.Type == codec.TypePadding {
				// SPSC padding only ever fills the end of the data region;
				// MPSC padding also replaces abandoned reservations.
				if !c.mpsc && (off == 0 || off+f.Size != r.geo.capacity) {
					return nil, 0, r.corrupt(c.head, "padding of %d bytes at offset %d does not end the data region", f.Size, off)
				}
				c.head += uint64(f.Size)
				c.publishHead()
				continue
			}
			if f.Flags != c.flags {
				return nil, 0, r.corrupt(c.head, "frame flags %#04x in a ring whose frames have %#04x (checksum bit %#x)",
					uint16(f.Flags), uint16(c.flags), uint16(codec.FlagChecksum))
			}
			return f.Payload, f.Size, nil
		}
		if !c.mpsc {
			if l == 0 {
				return nil, 0, ErrEmpty
			}
			return nil, 0, r.corrupt(c.head, "length %d in an SPSC ring", l)
		}
		n, err := c.unstall(l)
		if err != nil || n == 0 {
			if err == nil {
				err = ErrEmpty
			}
			return nil, 0, err
		}
		c.head += n
		c.publishHead()
	}
	if !c.mpsc {
		return nil, 0, r.corrupt(c.head, "padding after padding")
	}
	return nil, 0, ErrEmpty // progress made; the caller polls again
}

// unstall decides what to do about an MPSC record at the head that is not
// committed (length word l <= 0) and returns how many bytes to skip, 0 to
// wait. The producer that claimed the record is the slot whose claim
// covers the position. If it is dead, the record is skipped at once. If it
// is alive, it gets Wait.Unblock, then the record is skipped and its space
// pinned until the producer lets go. With no claiming slot (its slot was
// reused, or a foreign writer), the record is skipped after Wait.Unblock:
// exactly the span a negative length word gives, else up to the next
// written word, claim or the tail. Every skip first marks the length word
// with the span's negated length by compare-and-swap, which makes the
// owner's commit fail.
func (c *Consumer) unstall(l int32) (uint64, error) {
	r := c.r
	h := c.head
	t := le64(r.tail.Load())
	switch {
	case t < h || t-h > uint64(r.geo.capacity):
		return 0, r.corrupt(h, "tail %d is behind the head or more than the capacity ahead", t)
	case t == h && l == 0:
		return 0, nil // empty
	case t == h:
		return 0, r.corrupt(h, "length %d beyond the tail", l)
	}
	now := time.Now()
	if h != c.stallPos || c.stallSince.IsZero() {
		c.stallPos, c.stallSince, c.nextProbe = h, now, now.Add(c.probeEvery)
		return 0, nil
	}
	if now.Before(c.nextProbe) {
		return 0, nil
	}
	c.nextProbe = now.Add(c.probeEvery)
	live, deadSlot, lives := -1, -1, 0
	var liveStart, liveEnd, deadEnd uint64
	for i := range r.slots {
		start, end, ok := r.slots[i].covers(h)
		if !ok {
			continue
		}
		held, err := r.seg.Locked(slotLock(i), 1)
		if err != nil {
			return 0, r.errorf("producer slot %d liveness: %w", i, err)
		}
		if held {
			live, liveStart, liveEnd = i, start, end
			lives++
		} else if deadSlot < 0 || end < deadEnd {
			deadSlot, deadEnd = i, end
		}
	}
	timedOut := now.Sub(c.stallSince) >= r.wait.Unblock
	var end uint64
	slot, dead := -1, false
	switch {
	case lives > 1:
		// A producer that lost the CAS for this position has not yet
		// cleared its claim: which one owns the record is not known for
		// a few instructions more. Decide next time.
		return 0, nil
	case live >= 0 && !timedOut:
		return 0, nil
	case live >= 0:
		end, slot = liveEnd, live
	case deadSlot >= 0:
		end, slot, dead = deadEnd, deadSlot, true
	case !timedOut:
		return 0, nil
	case l < 0:
		// A span marked by a consumer before, or claimed by a writer
		// that marks claims with their negated length.
		end = h + uint64(codec.AlignUp(int(-int64(l))))
	default:
		// No claim names the record: it runs to the next written word,
		// the start of another claim, or the tail.
		end = h + codec.Align
		for ; end < t && end-h < maxMark && r.words[int(end&r.geo.mask)/4].Load() == 0 && !c.claimStarts(end); end += codec.Align {
		}
	}
	if end <= h || end > t || end-h > uint64(r.geo.capacity) || end-h > maxMark {
		return 0, r.corrupt(h, "skipped span would end at %d, the tail is %d", end, t)
	}
	// Mark the span, atomically against the owner's commit: if the
	// commit landed first, the record is read next time, never skipped.
	// The mark (the span's negated length) makes a later commit fail, and
	// tells a consumer that takes over exactly what to skip.
	off := int(h & r.geo.mask)
	if !r.words[off/4].CompareAndSwap(le32(uint32(l)), le32(uint32(-int32(end-h)))) {
		return 0, nil
	}
	if live >= 0 {
		c.pins = append(c.pins, pin{pos: h, claim: liveStart, slot: &r.slots[live], lock: slotLock(live)})
	}
	c.unflushed.skipped++
	if c.onSkip != nil {
		c.onSkip(Skip{Position: h, Bytes: int(end - h), Slot: slot, OwnerDead: dead})
	}
	return end - h, nil
}

// claimStarts reports whether some producer's claim starts at pos.
func (c *Consumer) claimStarts(pos uint64) bool {
	for i := range c.r.slots {
		if start, _, ok := c.r.slots[i].covers(pos); ok && start == pos {
			return true
		}
	}
	return false
}

// maxMark is the longest span one mark may cover: its negated length must
// fit the int32 length word.
const maxMark = uint64(codec.MaxLength &^ (codec.Align - 1))

// release frees the frame at the head after a receive.
func (c *Consumer) release(size, n int) {
	c.head += uint64(size)
	c.unflushed.msgs++
	c.unflushed.bytes += uint64(n)
	c.publishHead()
	if c.unflushed.msgs >= flushEvery {
		c.flushStats()
	}
}

// publishHead hands what the consumer has read back to the producers: the
// shared head moves to the read position, or in MPSC to the first record
// still pinned, and the bytes released are zeroed first (MPSC: free space
// must read as zero, see layout.go). Then producers that announced they
// may sleep are woken (see Ring.await for why no wake-up is lost).
func (c *Consumer) publishHead() {
	r := c.r
	target := c.head
	if c.mpsc {
		if len(c.pins) > 0 {
			c.resolvePins()
			if len(c.pins) > 0 {
				target = min(target, c.pins[0].pos)
			}
		}
		for from := c.released; from < target; {
			off := int(from & r.geo.mask)
			n := min(int(target-from), r.geo.capacity-off)
			clear(r.data[off : off+n])
			from += uint64(n)
		}
	}
	if target == c.released {
		return // MPSC: everything read stands behind a pin
	}
	c.released = target
	r.head.Store(le64(target))
	if r.prodWaiters.Load() != 0 {
		r.prodSeq.Add(1)
		futex.WakeAtomic(r.prodSeq, futex.All)
	}
}

// resolvePins drops the pins whose producers let go of their claims or
// died: no one writes to those records any more.
func (c *Consumer) resolvePins() {
	for len(c.pins) > 0 {
		p := c.pins[0]
		held, err := c.r.seg.Locked(p.lock, 1)
		if err != nil || (held && le64(p.slot.claim.Load()) == p.claim) {
			return // still held (or unknown): keep the space pinned
		}
		c.pins = c.pins[1:]
	}
}

func (c *Consumer) flushStats() {
	s := &c.r.stats
	addLE(s[0], c.unflushed.msgs)
	addLE(s[1], c.unflushed.bytes)
	addLE(s[2], c.unflushed.skipped)
	c.unflushed = counters{}
}

// Consumer as a waiter, for a message in an empty ring.

func (c *Consumer) poll() (bool, error) {
	w := &c.r.words[int(c.head&c.r.geo.mask)/4]
	if c.mpsc {
		// A committed record, or a stalled one due for another look.
		if l := int32(le32(w.Load())); l > 0 {
			return true, nil
		} else if l != 0 || le64(c.r.tail.Load()) != c.head {
			return c.stallPos != c.head || !time.Now().Before(c.nextProbe), nil
		}
		return false, nil
	}
	if w.Load() != 0 {
		return true, nil
	}
	if c.r.prodState.Load() == le32(stateClosed) {
		// The producer's last record was committed before its state
		// changed: look once more, then it is the end.
		if w.Load() != 0 {
			return true, nil
		}
		return false, io.EOF
	}
	return false, nil
}

func (c *Consumer) peer() error {
	r := c.r
	if c.mpsc {
		return c.peerMPSC()
	}
	if t := le64(r.tail.Load()); t > c.head && t-c.head > uint64(r.geo.capacity) {
		return r.corrupt(c.head, "tail %d is more than the capacity ahead", t)
	}
	switch st, err := r.roleState(r.prodState, slotLock(0)); {
	case err != nil:
		return r.errorf("producer liveness: %w", err)
	case st == RoleClosed:
		return io.EOF
	case st == RoleDead:
		return r.errorf("receive: producer: %w", ErrPeerDead)
	}
	return nil
}

// peerMPSC: the stream ends when the ring is empty and every producer
// that attached has closed. A dead producer does not end it (another may
// take its slot); its records are skipped by next.
func (c *Consumer) peerMPSC() error {
	r := c.r
	if len(c.pins) > 0 {
		c.publishHead()
	}
	if le64(r.tail.Load()) != c.head {
		return nil
	}
	closed := false
	for i := range r.slots {
		switch le32(r.slots[i].state.Load()) {
		case stateAttached:
			return nil
		case stateClosed:
			closed = true
		}
	}
	if closed && le64(r.tail.Load()) == c.head {
		return io.EOF
	}
	return nil
}

func (c *Consumer) announce() {
	c.flushStats() // an idle side's counters are current
	c.r.consParked.Store(le32(1))
}
func (c *Consumer) retract() { c.r.consParked.Store(0) }

// Close gives up the consumer role. A producer waiting for room, or
// sending afterwards, gets ErrClosed. A peeked message that was not
// released stays in the ring for the next consumer. Calling Close again
// returns nil.
func (c *Consumer) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	r := c.r
	c.flushStats()
	r.consState.Store(le32(stateClosed))
	r.prodSeq.Add(1)
	if _, err := futex.WakeAtomic(r.prodSeq, futex.All); err != nil {
		return r.errorf("consumer close: %w", err)
	}
	if err := c.lock.Unlock(); err != nil {
		return r.errorf("consumer close: %w", err)
	}
	return nil
}
