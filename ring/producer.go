package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"sync/atomic"

	"github.com/ringwire/ringwire/codec"
	"github.com/ringwire/ringwire/futex"
	"github.com/ringwire/ringwire/shm"
)

// Producer writes messages into a ring. It holds the producer role until
// Close (or until its process dies, when the kernel releases it). A
// Producer is not safe for concurrent use: give each goroutine its own.
//
// Ownership of the data region, SPSC: the producer owns every byte from
// its tail to head+capacity (the free space), the consumer owns the bytes
// from head to the last committed record. The producer hands a record to
// the consumer with one atomic store: the record's length word.
//
// MPSC: producers share the free space and divide it by compare-and-swap
// on the tail; a producer owns the bytes of its claim from the successful
// CAS until its commit (a CAS of the length word from 0) hands them to the
// consumer.
type Producer struct {
	r    *Ring
	lock unlocker   // the role's lock
	slot *slotWords // MPSC: this producer's slot; nil for SPSC

	tail      uint64 // SPSC: next position to write; the shared tail lags until published
	headCache uint64 // last head seen: the producer reloads it only when this says full
	flags     codec.Flags
	hdr       int

	resOff int // open reservation's offset, or -1
	resLen int
	need   int // frame bytes the current await waits for

	unflushed counters // not yet added to the shared statistics
	closed    bool
}

// counters are a side's statistics, kept locally and flushed to the
// segment now and then, so that the hot path has no extra atomic.
type counters struct{ msgs, bytes, full, skipped uint64 }

const flushEvery = 256

// Producer claims a producer role. On an SPSC ring a second producer, in
// this process or another, gets ErrBusy while the first is alive. On an
// MPSC ring each producer takes a free slot of the producer table, and
// gets ErrBusy when every slot is held.
func (r *Ring) Producer() (*Producer, error) {
	if r.seg.ReadOnly() {
		return nil, r.errorf("producer on a read-only handle: %w", ErrBadOptions)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, r.errorf("producer: %w", ErrClosed)
	}
	p := &Producer{r: r, flags: r.geo.frameFlag, hdr: codec.HeaderLen(r.geo.frameFlag), resOff: -1}
	if r.geo.mode == MPSC {
		if err := p.takeSlot(); err != nil {
			return nil, err
		}
		r.handles = append(r.handles, p)
		return p, nil
	}
	lock, err := r.seg.TryLock(slotLock(0), 1)
	if errors.Is(err, shm.ErrLocked) {
		return nil, r.errorf("producer: %w", ErrBusy)
	}
	if err != nil {
		return nil, r.errorf("producer: %w", err)
	}
	p.lock = lock
	if err := p.recoverTail(); err != nil {
		lock.Unlock()
		return nil, err
	}
	r.prodState.Store(le32(stateAttached))
	r.slots[0].pid.Store(le32(uint32(os.Getpid())))
	r.handles = append(r.handles, p)
	return p, nil
}

// takeSlot claims the first free MPSC slot. A slot whose dead holder left
// a claim the consumer has not yet passed is left alone: the consumer needs
// that claim to skip the dead producer's record.
func (p *Producer) takeSlot() error {
	r := p.r
	for i := range r.slots {
		lock, err := r.seg.TryLock(slotLock(i), 1)
		if errors.Is(err, shm.ErrLocked) {
			continue
		}
		if err != nil {
			return r.errorf("producer slot %d: %w", i, err)
		}
		s := &r.slots[i]
		start, n := le64(s.claim.Load()), uint64(le32(s.length.Load()))
		if start != noClaim && n != 0 && start+n > le64(r.head.Load()) {
			lock.Unlock()
			continue
		}
		s.claim.Store(le64(noClaim))
		s.length.Store(0)
		s.pid.Store(le32(uint32(os.Getpid())))
		s.state.Store(le32(stateAttached))
		p.lock, p.slot = lock, s
		return nil
	}
	return r.errorf("producer: all %d slots taken: %w", len(r.slots), ErrBusy)
}

// OpenProducer attaches to the ring called name and claims the producer
// role. Closing the Producer closes the attachment too.
func OpenProducer(name string, o AttachOptions) (*Producer, error) {
	r, err := Open(name, o)
	if err != nil {
		return nil, err
	}
	p, err := r.Producer()
	if err != nil {
		r.Close()
		return nil, err
	}
	p.lock = &ownedLock{unlocker: p.lock, r: r}
	return p, nil
}

// recoverTail finds where the previous producer stopped. It may have died
// after committing a record but before publishing the tail, so the tail is
// advanced over committed records; the word after the last one is zero,
// because a producer zeroes it before it commits.
func (p *Producer) recoverTail() error {
	r := p.r
	h, t := le64(r.head.Load()), le64(r.tail.Load())
	capacity := uint64(r.geo.capacity)
	switch {
	case h%codec.Align != 0 || t%codec.Align != 0:
		return r.corrupt(t, "cursors not %d-aligned: head %d, tail %d", codec.Align, h, t)
	case t > h && t-h > capacity:
		return r.corrupt(t, "tail is more than the capacity ahead of head %d", h)
	case h > t && h-t > capacity:
		return r.corrupt(t, "head %d is more than the capacity past the tail", h)
	}
	// The shared tail lags the commits (SendBatch publishes it once per
	// run): records below head were committed and consumed.
	t = max(t, h)
	for range r.geo.capacity / codec.Align {
		off := int(t & r.geo.mask)
		if r.words[off/4].Load() == 0 {
			break
		}
		f, err := codec.Decode(r.data, off, codec.AlignUp(r.geo.maxFrame))
		if err != nil {
			return r.corrupt(t, "record after the tail: %w", err)
		}
		t += uint64(f.Size)
		if t > h && t-h > capacity {
			return r.corrupt(t, "committed records beyond head+capacity")
		}
	}
	if h > t {
		return r.corrupt(t, "head %d is beyond the last committed record", h)
	}
	p.tail, p.headCache = t, h
	return nil
}

// MaxMessage returns the largest payload this producer may send.
func (p *Producer) MaxMessage() int { return p.r.geo.maxPayload() }

// TrySend writes msg if the ring has room now, and returns ErrFull if not.
// It never blocks.
func (p *Producer) TrySend(msg []byte) error {
	off, err := p.reserve(len(msg))
	if err != nil {
		return err
	}
	copy(p.r.data[off+p.hdr:], msg)
	return p.publish(off, len(msg), true)
}

// Send writes msg, waiting while the ring is full as the wait strategy
// says. It returns ErrClosed if the consumer closed the ring, and
// ErrPeerDead if the consumer died while Send waited.
func (p *Producer) Send(msg []byte) error {
	return p.SendContext(context.Background(), msg)
}

// SendContext is Send that gives up when ctx ends, returning ctx.Err().
// Nothing is written then.
func (p *Producer) SendContext(ctx context.Context, msg []byte) error {
	off, err := p.reserveWait(ctx, len(msg))
	if err != nil {
		return err
	}
	copy(p.r.data[off+p.hdr:], msg)
	return p.publish(off, len(msg), true)
}

// SendBatch writes every message of msgs, in order, waiting for room as
// Send does. It publishes the tail cursor and checks for a parked consumer
// once per run of messages that fit, rather than once per message. It
// returns how many messages were written; on an error, the first n were.
func (p *Producer) SendBatch(ctx context.Context, msgs [][]byte) (n int, err error) {
	for i, msg := range msgs {
		off, err := p.reserve(len(msg))
		if errors.Is(err, ErrFull) {
			p.flushTail()
			off, err = p.reserveWait(ctx, len(msg))
		}
		if err != nil {
			p.flushTail()
			return i, err
		}
		copy(p.r.data[off+p.hdr:], msg)
		if err := p.publish(off, len(msg), false); err != nil {
			p.flushTail()
			return i, err
		}
	}
	p.flushTail()
	return len(msgs), nil
}

// Reserve claims room for an n-byte message and returns it, to be filled
// in place and handed over with Commit: zero-copy sending. It waits while
// the ring is full, as Send does. Nothing is visible to the consumer until
// Commit. Only one reservation may be open at a time.
func (p *Producer) Reserve(n int) ([]byte, error) {
	return p.ReserveContext(context.Background(), n)
}

// ReserveContext is Reserve that gives up when ctx ends.
func (p *Producer) ReserveContext(ctx context.Context, n int) ([]byte, error) {
	off, err := p.reserveWait(ctx, n)
	if err != nil {
		return nil, err
	}
	return p.open(off, n), nil
}

// TryReserve is Reserve that returns ErrFull instead of waiting.
func (p *Producer) TryReserve(n int) ([]byte, error) {
	off, err := p.reserve(n)
	if err != nil {
		return nil, err
	}
	return p.open(off, n), nil
}

func (p *Producer) open(off, n int) []byte {
	p.resOff, p.resLen = off, n
	start := off + p.hdr
	return p.r.data[start : start+n : start+n]
}

// Commit hands the reserved message to the consumer.
func (p *Producer) Commit() error {
	if p.resOff < 0 {
		return p.r.errorf("commit without a reservation: %w", ErrPending)
	}
	off, n := p.resOff, p.resLen
	p.resOff = -1
	return p.publish(off, n, true)
}

// reserveWait is reserve that waits for room.
func (p *Producer) reserveWait(ctx context.Context, n int) (int, error) {
	for {
		off, err := p.reserve(n)
		if !errors.Is(err, ErrFull) {
			return off, err
		}
		p.unflushed.full++
		p.flushStats()
		p.need = codec.FrameSize(n, p.flags)
		if err := p.r.await(ctx, p, p.r.prodSeq); err != nil {
			return 0, err
		}
	}
}

// reserve claims room for a frame with an n-byte payload and returns its
// offset in the data region, or ErrFull. A frame that would cross the end
// of the data region is preceded by a padding frame to the end, and goes
// at offset 0.
func (p *Producer) reserve(n int) (int, error) {
	r := p.r
	switch {
	case p.closed:
		return 0, r.errorf("send: %w", ErrClosed)
	case p.resOff >= 0:
		return 0, r.errorf("send while a reservation is open: %w", ErrPending)
	case n < 0 || n > r.geo.maxPayload():
		return 0, r.errorf("message of %d bytes, the ring's maximum is %d: %w", n, r.geo.maxPayload(), ErrTooLarge)
	case r.consState.Load() == le32(stateClosed):
		return 0, r.errorf("send: consumer %w", ErrClosed)
	}
	size := codec.FrameSize(n, p.flags)
	if p.slot != nil {
		return p.claim(size)
	}
	t := p.tail
	off := int(t & r.geo.mask)
	gap := 0
	if off+size > r.geo.capacity {
		gap = r.geo.capacity - off
	}
	need := uint64(gap + size + nextHeaderReserve)
	if t+need-p.headCache > uint64(r.geo.capacity) {
		if err := p.reloadHead(); err != nil {
			return 0, err
		}
		if t+need-p.headCache > uint64(r.geo.capacity) {
			return 0, ErrFull
		}
	}
	if gap > 0 {
		// Zero the record's length word at offset 0 first, so that a
		// consumer that follows the padding finds "not yet written".
		binary.LittleEndian.PutUint32(r.data[0:], 0)
		l, _ := codec.SealPadding(r.data[off:]) // off is 8-aligned and gap >= 8: cannot fail
		r.words[off/4].Store(le32(uint32(l)))
		p.tail += uint64(gap)
		off = 0
	}
	return off, nil
}

// claim divides the free space among MPSC producers: it announces the
// claim in the producer's slot, then takes the space with a CAS on the
// tail, and writes the padding if the record wraps.
func (p *Producer) claim(size int) (int, error) {
	r := p.r
	capacity := uint64(r.geo.capacity)
	for {
		t := le64(r.tail.Load())
		off := int(t & r.geo.mask)
		gap := 0
		if off+size > r.geo.capacity {
			gap = r.geo.capacity - off
		}
		need := uint64(gap + size)
		if t+need+nextHeaderReserve-p.headCache > capacity {
			room, stale, err := p.roomAt(t, need)
			if err != nil {
				return 0, err
			}
			if stale {
				continue
			}
			if !room {
				return 0, ErrFull
			}
		}
		// Announce first: if this process dies after the CAS, the claim
		// names the space it owned.
		p.slot.length.Store(le32(uint32(need)))
		p.slot.claim.Store(le64(t))
		if !r.tail.CompareAndSwap(le64(t), le64(t+need)) {
			p.slot.claim.Store(le64(noClaim))
			continue
		}
		if gap > 0 {
			l, _ := codec.SealPadding(r.data[off:]) // off is 8-aligned and gap >= 8: cannot fail
			if !r.words[off/4].CompareAndSwap(0, le32(uint32(l))) {
				p.slot.claim.Store(le64(noClaim))
				return 0, r.errorf("send: %w", ErrSkipped)
			}
			off = 0
		}
		return off, nil
	}
}

// roomAt reloads the head and reports whether a claim of need bytes at
// tail t fits. t was loaded before the head, and other producers and the
// consumer may have moved both since: a head beyond t means t is stale
// (retry with a fresh tail), and is corruption only if the head is beyond
// the tail as it is now.
func (p *Producer) roomAt(t, need uint64) (room, stale bool, err error) {
	r := p.r
	h := le64(r.head.Load())
	switch {
	case h%codec.Align != 0:
		return false, false, r.corrupt(h, "head not %d-aligned", codec.Align)
	case h > t:
		if now := le64(r.tail.Load()); h > now {
			return false, false, r.corrupt(h, "head is beyond the tail %d", now)
		}
		return false, true, nil
	case t-h > uint64(r.geo.capacity):
		return false, false, r.corrupt(h, "head is more than the capacity behind the tail %d", t)
	}
	p.headCache = h
	return t+need+nextHeaderReserve-h <= uint64(r.geo.capacity), false, nil
}

// reloadHead reads the consumer's head and checks it against the tail.
func (p *Producer) reloadHead() error {
	h := le64(p.r.head.Load())
	if h > p.tail || p.tail-h > uint64(p.r.geo.capacity) || h%codec.Align != 0 {
		return p.r.corrupt(h, "head is beyond the tail %d or more than the capacity behind it", p.tail)
	}
	p.headCache = h
	return nil
}

// publish commits the frame with an n-byte payload at off: it seals the
// header, zeroes the next record's length word, and stores the length
// word, which hands the record to the consumer. With flush it also
// publishes the tail and wakes a parked consumer.
func (p *Producer) publish(off, n int, flush bool) error {
	r := p.r
	l, _ := codec.Seal(r.data[off:off+p.hdr+n], p.flags) // sized by reserve: cannot fail
	if p.slot != nil {
		// MPSC: the CAS fails only if the consumer skipped the record.
		ok := r.words[off/4].CompareAndSwap(0, le32(uint32(l)))
		p.slot.claim.Store(le64(noClaim))
		if !ok {
			return r.errorf("send: %w", ErrSkipped)
		}
		p.count(n)
		p.wakeConsumer()
		return nil
	}
	size := codec.AlignUp(int(l))
	next := int((p.tail + uint64(size)) & r.geo.mask)
	// The next position is free space (reserve kept 8 bytes for it): a
	// plain store, ordered before the commit by the commit's atomic store.
	binary.LittleEndian.PutUint32(r.data[next:], 0)
	r.words[off/4].Store(le32(uint32(l))) // publishes the record
	p.tail += uint64(size)
	p.count(n)
	if flush {
		p.flushTail()
	}
	return nil
}

// count adds a sent message of n bytes to the statistics.
func (p *Producer) count(n int) {
	p.unflushed.msgs++
	p.unflushed.bytes += uint64(n)
	if p.unflushed.msgs >= flushEvery {
		p.flushStats()
	}
}

// flushTail publishes the SPSC tail (MPSC producers publish theirs with
// the claim's CAS) and wakes the consumer if it announced that it may
// sleep.
func (p *Producer) flushTail() {
	if p.slot == nil {
		p.r.tail.Store(le64(p.tail))
	}
	p.wakeConsumer()
}

// wakeConsumer wakes the consumer if it announced that it may sleep (see
// Ring.await for why no wake-up is lost).
func (p *Producer) wakeConsumer() {
	r := p.r
	if r.consParked.Load() != 0 {
		r.consSeq.Add(1)
		futex.WakeAtomic(r.consSeq, 1)
	}
}

func (p *Producer) flushStats() {
	s := &p.r.stats
	u := &p.unflushed
	addLE(s[3], u.msgs)
	addLE(s[4], u.bytes)
	addLE(s[5], u.full)
	*u = counters{}
}

// Producer as a waiter, for room in a full ring.

func (p *Producer) poll() (bool, error) {
	if p.r.consState.Load() == le32(stateClosed) {
		return false, p.r.errorf("send: consumer %w", ErrClosed)
	}
	if p.slot != nil {
		// MPSC: room for the frame and the worst padding; claim decides
		// exactly.
		t, h := le64(p.r.tail.Load()), le64(p.r.head.Load())
		return h >= t || t-h+uint64(2*p.need+nextHeaderReserve) <= uint64(p.r.geo.capacity), nil
	}
	if err := p.reloadHead(); err != nil {
		return false, err
	}
	off := int(p.tail & p.r.geo.mask)
	gap := 0
	if off+p.need > p.r.geo.capacity {
		gap = p.r.geo.capacity - off
	}
	return p.tail+uint64(gap+p.need+nextHeaderReserve)-p.headCache <= uint64(p.r.geo.capacity), nil
}

func (p *Producer) peer() error {
	r := p.r
	switch st, err := r.roleState(r.consState, lockConsumer); {
	case err != nil:
		return r.errorf("consumer liveness: %w", err)
	case st == RoleClosed:
		return r.errorf("send: consumer %w", ErrClosed)
	case st == RoleDead:
		return r.errorf("send: consumer: %w", ErrPeerDead)
	}
	return nil
}

func (p *Producer) announce() {
	p.flushStats() // an idle side's counters are current
	addLE32(p.r.prodWaiters, 1)
}
func (p *Producer) retract() { addLE32(p.r.prodWaiters, ^uint32(0)) }

// Close gives up the producer role. A consumer drains what was sent and
// then gets io.EOF. An open reservation is dropped, unseen. Calling Close
// again returns nil.
func (p *Producer) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	r := p.r
	if p.slot != nil {
		if p.resOff >= 0 {
			// The open reservation owns claimed space: hand it over as
			// padding, which the consumer skips.
			frame := r.data[p.resOff : p.resOff+codec.FrameSize(p.resLen, p.flags)]
			if l, err := codec.SealPadding(frame); err == nil {
				r.words[p.resOff/4].CompareAndSwap(0, le32(uint32(l)))
			}
		}
		p.resOff = -1
		p.slot.claim.Store(le64(noClaim))
		p.flushStats()
		p.slot.state.Store(le32(stateClosed))
	} else {
		p.resOff = -1
		r.tail.Store(le64(p.tail))
		p.flushStats()
		r.prodState.Store(le32(stateClosed))
	}
	r.consSeq.Add(1)
	if _, err := futex.WakeAtomic(r.consSeq, 1); err != nil {
		return r.errorf("producer close: %w", err)
	}
	if err := p.lock.Unlock(); err != nil {
		return r.errorf("producer close: %w", err)
	}
	return nil
}

// unlocker releases a role.
type unlocker interface{ Unlock() error }

// ownedLock is the lock of a Producer or Consumer that owns its Ring
// handle (OpenProducer, OpenConsumer): releasing it closes the Ring too.
type ownedLock struct {
	unlocker
	r *Ring
}

func (l *ownedLock) Unlock() error {
	return errors.Join(l.unlocker.Unlock(), l.r.Close())
}

// addLE adds d to a little-endian shared counter.
func addLE(w *atomic.Uint64, d uint64) {
	switch {
	case d == 0:
	case le64(1) == 1:
		w.Add(d)
	default:
		for old := w.Load(); !w.CompareAndSwap(old, le64(le64(old)+d)); old = w.Load() {
		}
	}
}

// addLE32 adds d to a little-endian shared 32-bit word.
func addLE32(w *atomic.Uint32, d uint32) {
	if le32(1) == 1 {
		w.Add(d)
		return
	}
	for old := w.Load(); !w.CompareAndSwap(old, le32(le32(old)+d)); old = w.Load() {
	}
}
