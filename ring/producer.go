package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"sync/atomic"

	"github.com/ringwire/ringwire/codec"
	"github.com/ringwire/ringwire/futex"
	"github.com/ringwire/ringwire/shm"
)

// Producer writes messages into its lane of a ring. It holds the lane's
// producer role until Close (or until its process dies, when the kernel
// releases it). Send, Reserve and the other calls must come from one
// goroutine at a time; Close may come from any goroutine, and makes a call
// blocked in this Producer return ErrClosed.
//
// Ownership of the lane's data region: the producer owns every byte from
// its tail to head+capacity (the free space), the consumer owns the bytes
// from head to the last committed record. The producer hands a record to
// the consumer with one atomic store: the record's length word. It is the
// lane's only writer, so it claims space without any atomic operation.
type Producer struct {
	r    *Ring
	l    *lane
	lock unlocker // the lane's lock
	g    guard
	own  bool // OpenProducer: Close closes the Ring too

	tail      uint64 // next position to write; the shared tail lags until published
	published uint64 // the tail as last published
	headCache uint64 // last head seen: the producer reloads it only when this says full
	flags     codec.Flags
	hdr       int
	readyWord *atomic.Uint64
	readyBit  uint64

	resOff int // open reservation's offset, or -1
	resLen int
	need   int // bytes the current wait needs free: frame, padding and reserve

	unflushed counters // not yet added to the shared statistics
}

// counters are a side's statistics, kept locally and flushed to the
// segment now and then, so that the hot path has no extra atomic.
type counters struct{ msgs, bytes, full uint64 }

// flushEvery is how many messages a side handles between flushes of its
// statistics (and, for a producer, of its tail).
const flushEvery = 256

// Producer claims a producer role: the lane of an SPSC ring, or the first
// free lane of an MPSC ring. It gets ErrBusy while every lane is held by a
// live producer, in this process or another. A lane whose last producer
// died is free: the new producer continues after the last record that one
// committed.
func (r *Ring) Producer() (*Producer, error) {
	if r.seg.ReadOnly() {
		return nil, r.errorf("producer on a read-only handle: %w", ErrBadOptions)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || !r.acquire() {
		return nil, r.errorf("producer: %w", ErrClosed)
	}
	for i := range r.lanes {
		l := &r.lanes[i]
		lock, err := r.seg.TryLock(l.lock(), 1)
		if errors.Is(err, shm.ErrLocked) {
			continue
		}
		if err != nil {
			r.release()
			return nil, r.errorf("producer lane %d: %w", i, err)
		}
		crashAt(cpAttachLocked)
		p := &Producer{r: r, l: l, lock: lock, flags: r.geo.frameFlag, hdr: codec.HeaderLen(r.geo.frameFlag), resOff: -1}
		w, bit := readyBit(i)
		p.readyWord, p.readyBit = &r.ready[w], bit
		if err := p.recoverTail(); err != nil {
			lock.Unlock()
			r.release()
			return nil, err
		}
		crashAt(cpAttachRecovered)
		l.pid.Store(le32(uint32(os.Getpid())))
		l.state.Store(le32(stateAttached))
		if p.tail != le64(l.head.Load()) {
			// The last producer may have died between a commit and its
			// signal: give it now.
			p.signal()
		}
		r.handles = append(r.handles, p)
		return p, nil
	}
	r.release()
	if len(r.lanes) == 1 {
		return nil, r.errorf("producer: %w", ErrBusy)
	}
	return nil, r.errorf("producer: all %d lanes taken: %w", len(r.lanes), ErrBusy)
}

// OpenProducer attaches to the ring called name and claims a producer
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
	p.own = true
	return p, nil
}

// Lane returns the index of this producer's lane.
func (p *Producer) Lane() int { return p.l.idx }

// recoverTail finds where the lane's previous producer stopped. It may
// have died after committing a record but before publishing the tail, so
// the tail is advanced over committed records; the word after the last one
// is zero, because a producer zeroes it before it commits. Each word is
// read once, and the scan is bounded by the lane's capacity.
func (p *Producer) recoverTail() error {
	r, l := p.r, p.l
	h, t := le64(l.head.Load()), le64(l.tail.Load())
	capacity := uint64(r.geo.capacity)
	switch {
	case h%codec.Align != 0 || t%codec.Align != 0:
		return r.corrupt(l.idx, t, "cursors not %d-aligned: head %d, tail %d", codec.Align, h, t)
	case t > h && t-h > capacity:
		return r.corrupt(l.idx, t, "tail is more than the capacity ahead of head %d", h)
	case h > t && h-t > capacity:
		// The published tail lags the true one, which head never passes,
		// by less than a lap.
		return r.corrupt(l.idx, t, "head %d is more than the capacity past the published tail", h)
	}
	// Records below head were committed and consumed.
	t = max(t, h)
	for range r.geo.capacity / codec.Align {
		off := int(t & r.geo.mask)
		n := int(int32(le32(l.words[off/4].Load())))
		if n == 0 {
			break
		}
		typ := codec.Type(binary.LittleEndian.Uint16(l.data[off+codec.OffType:]))
		flags := codec.Flags(binary.LittleEndian.Uint16(l.data[off+codec.OffFlags:]))
		switch {
		case typ == codec.TypePadding && flags == 0:
			if err := r.checkPadding(l.idx, t, off, n); err != nil {
				return err
			}
		case typ != codec.TypeData || flags != p.flags || n < p.hdr || n > r.geo.maxFrame:
			return r.corrupt(l.idx, t, "record after the tail: type %d, flags %#x, length %d", uint16(typ), uint16(flags), n)
		case off+codec.AlignUp(n) > r.geo.capacity:
			return r.corrupt(l.idx, t, "record of %d bytes after the tail crosses the end of the lane", n)
		}
		t += uint64(codec.AlignUp(n))
		if t-h > capacity-nextHeaderReserve {
			return r.corrupt(l.idx, t, "committed records beyond head+capacity")
		}
	}
	p.tail, p.headCache, p.published = t, h, t
	l.tail.Store(le64(t))
	return nil
}

// MaxMessage returns the largest payload this producer may send.
func (p *Producer) MaxMessage() int { return p.r.geo.maxPayload() }

// TrySend writes msg if the lane has room now, and returns ErrFull if not.
// It never blocks.
func (p *Producer) TrySend(msg []byte) error {
	if !p.g.enter() {
		return p.leave(p.r.errorf("send: %w", ErrClosed))
	}
	err := p.send(context.Background(), false, msg)
	return p.leave(err)
}

// Send writes msg, waiting while the lane is full as the wait strategy
// says. It returns ErrClosed if the consumer closed the ring or this
// Producer was closed, and ErrPeerDead if the consumer died while Send
// waited. When Send returns nil, the message is in the ring: a crash of
// this process from then on does not lose it.
func (p *Producer) Send(msg []byte) error {
	return p.SendContext(context.Background(), msg)
}

// SendContext is Send that gives up when ctx ends, returning ctx.Err().
// Nothing is written then.
func (p *Producer) SendContext(ctx context.Context, msg []byte) error {
	if !p.g.enter() {
		return p.leave(p.r.errorf("send: %w", ErrClosed))
	}
	err := p.send(ctx, true, msg)
	return p.leave(err)
}

// send writes one message, waiting for room if wait says so.
func (p *Producer) send(ctx context.Context, wait bool, msg []byte) error {
	off, err := p.reserve(len(msg))
	if err == ErrFull && wait {
		off, err = p.reserveWait(ctx, len(msg))
	}
	if err != nil {
		return err
	}
	copy(p.l.data[off+p.hdr:], msg)
	crashAt(cpSendCopied)
	p.publish(off, len(msg))
	return nil
}

// SendBatch writes every message of msgs, in order, waiting for room as
// SendContext does. It returns how many messages were written; on an
// error, the first n were.
func (p *Producer) SendBatch(ctx context.Context, msgs [][]byte) (n int, err error) {
	if !p.g.enter() {
		return 0, p.leave(p.r.errorf("send: %w", ErrClosed))
	}
	for i, msg := range msgs {
		if err := p.send(ctx, true, msg); err != nil {
			return i, p.leave(err)
		}
	}
	return len(msgs), p.leave(nil)
}

// Reserve claims room for an n-byte message and returns it, to be filled
// in place and handed over with Commit, or given back with Abort:
// zero-copy sending. It waits while the lane is full, as Send does.
// Nothing is visible to the consumer until Commit. Only one reservation
// may be open at a time.
func (p *Producer) Reserve(n int) ([]byte, error) {
	return p.ReserveContext(context.Background(), n)
}

// ReserveContext is Reserve that gives up when ctx ends.
func (p *Producer) ReserveContext(ctx context.Context, n int) ([]byte, error) {
	if !p.g.enter() {
		return nil, p.leave(p.r.errorf("reserve: %w", ErrClosed))
	}
	off, err := p.reserve(n)
	if err == ErrFull {
		off, err = p.reserveWait(ctx, n)
	}
	if err != nil {
		return nil, p.leave(err)
	}
	return p.open(off, n), p.leave(nil)
}

// TryReserve is Reserve that returns ErrFull instead of waiting.
func (p *Producer) TryReserve(n int) ([]byte, error) {
	if !p.g.enter() {
		return nil, p.leave(p.r.errorf("reserve: %w", ErrClosed))
	}
	off, err := p.reserve(n)
	if err != nil {
		return nil, p.leave(err)
	}
	return p.open(off, n), p.leave(nil)
}

func (p *Producer) open(off, n int) []byte {
	p.resOff, p.resLen = off, n
	start := off + p.hdr
	return p.l.data[start : start+n : start+n]
}

// Commit hands the reserved message to the consumer.
func (p *Producer) Commit() error {
	if !p.g.enter() {
		return p.leave(p.r.errorf("commit: %w", ErrClosed))
	}
	if p.resOff < 0 {
		return p.leave(p.r.errorf("commit without a reservation: %w", ErrPending))
	}
	off, n := p.resOff, p.resLen
	p.resOff = -1
	crashAt(cpSendCopied)
	p.publish(off, n)
	return p.leave(nil)
}

// Abort gives back the open reservation: the consumer never sees it, and
// the next Send or Reserve reuses its space.
func (p *Producer) Abort() error {
	if p.resOff < 0 {
		return p.r.errorf("abort without a reservation: %w", ErrPending)
	}
	p.resOff = -1
	return nil
}

// reserveWait is reserve that waits for room.
func (p *Producer) reserveWait(ctx context.Context, n int) (int, error) {
	for {
		off, err := p.reserve(n)
		if err != ErrFull {
			return off, err
		}
		p.unflushed.full++
		if err := p.r.await(ctx, p, p.l.seq); err != nil {
			return 0, err
		}
	}
}

// reserve finds room for a frame with an n-byte payload and returns its
// offset in the lane, or ErrFull. A frame that would cross the end of the
// lane is preceded by a padding frame to the end, and goes at offset 0.
func (p *Producer) reserve(n int) (int, error) {
	r, l := p.r, p.l
	switch {
	case p.resOff >= 0:
		return 0, r.errorf("send while a reservation is open: %w", ErrPending)
	case n < 0 || n > r.geo.maxPayload():
		return 0, r.errorf("message of %d bytes, the ring's maximum is %d: %w", n, r.geo.maxPayload(), ErrTooLarge)
	case r.consState.Load() == le32(stateClosed):
		return 0, r.errorf("send: consumer %w", ErrClosed)
	}
	size := codec.FrameSize(n, p.flags)
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
			p.need = int(need)
			return 0, ErrFull
		}
	}
	if gap > 0 {
		// Zero the record's length word at offset 0 first, so that a
		// consumer that follows the padding finds "not yet written".
		binary.LittleEndian.PutUint32(l.data[0:], 0)
		pad, _ := codec.SealPadding(l.data[off:]) // off is 8-aligned and gap >= 8: cannot fail
		l.words[off/4].Store(le32(uint32(pad)))
		p.tail += uint64(gap)
		crashAt(cpSendPadded)
		off = 0
	}
	return off, nil
}

// reloadHead reads the consumer's head and checks it against the tail.
func (p *Producer) reloadHead() error {
	h := le64(p.l.head.Load())
	if h > p.tail || p.tail-h > uint64(p.r.geo.capacity) || h%codec.Align != 0 {
		return p.r.corrupt(p.l.idx, h, "head is beyond the tail %d or more than the capacity behind it", p.tail)
	}
	p.headCache = h
	return nil
}

// publish commits the frame with an n-byte payload at off: it seals the
// header, zeroes the next record's length word, and stores the length
// word, which hands the record to the consumer. Then it tells the consumer
// if the consumer asked to be told: by the lane's ready bit if it stopped
// polling the lane, by a futex wake if it parked.
func (p *Producer) publish(off, n int) {
	r, l := p.r, p.l
	length, _ := codec.Seal(l.data[off:off+p.hdr+n], p.flags) // sized by reserve: cannot fail
	size := codec.AlignUp(int(length))
	next := int((p.tail + uint64(size)) & r.geo.mask)
	// The next position is free space (reserve kept 8 bytes for it): a
	// plain store, ordered before the commit by the commit's atomic store.
	binary.LittleEndian.PutUint32(l.data[next:], 0)
	crashAt(cpSendZeroed)
	l.words[off/4].Swap(le32(uint32(length))) // publishes the record; see fence below
	crashAt(cpSendCommitted)
	p.tail += uint64(size)
	p.signal()
	crashAt(cpSendSignalled)
	p.unflushed.msgs++
	p.unflushed.bytes += uint64(n)
	if p.unflushed.msgs >= flushEvery || p.tail-p.published >= uint64(r.geo.capacity/2) {
		p.flush()
	}
}

// signal tells the consumer of a commit if it asked to be told: by the
// lane's ready bit if it stopped polling the lane, by a futex wake if it
// parked. It follows the commit's store with loads: see Ring.await and the
// ready set in layout.go for why neither signal can be missed.
func (p *Producer) signal() {
	r := p.r
	if p.l.signal.Load() != 0 && p.readyWord.Load()&p.readyBit == 0 {
		p.readyWord.Or(p.readyBit)
	}
	if r.consParked.Load() != 0 {
		r.consSeq.Add(1)
		futex.WakeAtomic(r.consSeq, 1)
	}
}

// flush publishes the tail and adds the local counters to the lane's. The
// producer flushes every flushEvery records and every half lap, so the
// published tail lags the true one by less than a lap: head, which never
// passes the true tail, is never more than the capacity past it.
func (p *Producer) flush() {
	l := p.l
	l.tail.Store(le64(p.tail))
	p.published = p.tail
	addLE(l.sentMsgs, p.unflushed.msgs)
	addLE(l.sentBytes, p.unflushed.bytes)
	addLE(l.full, p.unflushed.full)
	p.unflushed = counters{}
}

// Producer as a waiter, for room in a full lane.

func (p *Producer) poll() (bool, error) {
	if p.g.isClosed() {
		return false, p.r.errorf("send: %w", ErrClosed)
	}
	if p.r.consState.Load() == le32(stateClosed) {
		return false, p.r.errorf("send: consumer %w", ErrClosed)
	}
	if err := p.reloadHead(); err != nil {
		return false, err
	}
	return p.tail+uint64(p.lowWater())-p.headCache <= uint64(p.r.geo.capacity), nil
}

// lowWater is the free space a producer waits for before it resumes: what
// the frame needs, and at least a quarter of the lane, so that a full lane
// refills in bursts rather than in lockstep with the consumer.
// It is at most 2^32-1, so that it fits the lane's waiting word whatever
// the lane's size.
func (p *Producer) lowWater() int {
	w := max(p.need, p.r.geo.capacity/4)
	if uint64(w) > math.MaxUint32 {
		w = int(maxWaiting)
	}
	return w
}

// maxWaiting is the largest value of a waiting word (a variable, so that
// the conversion above compiles where int has 32 bits).
var maxWaiting uint32 = math.MaxUint32

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

func (p *Producer) ended() error { return nil }

// announce publishes the tail (the consumer computes the free space from
// it) and the free space the producer waits for, which is also its "I may
// sleep": the consumer wakes it when a release makes that much room.
func (p *Producer) announce() {
	p.flush()
	p.l.waiting.Swap(le32(uint32(p.lowWater()))) // fence: a store the consumer's load must see
}
func (p *Producer) retract() { p.l.waiting.Store(0) }

// Close gives up the producer role. A consumer drains what was sent and
// then gets io.EOF (SPSC), or goes on with the other lanes (MPSC). An open
// reservation is dropped, unseen. Close may be called from any goroutine:
// a call blocked in this Producer returns ErrClosed, and the role is given
// up when that call returns. Calling Close again returns nil.
func (p *Producer) Close() error {
	finalize, first := p.g.close()
	if !first {
		return nil
	}
	p.l.seq.Add(1)
	futex.WakeAtomic(p.l.seq, futex.All) // a Send parked for room
	if !finalize {
		return nil
	}
	return p.finalize()
}

// leave ends a call, finalizing the handle if Close came meanwhile.
func (p *Producer) leave(err error) error {
	if p.g.leave() {
		p.finalize()
	}
	return err
}

// finalize publishes what the producer did and gives up the role. It runs
// once, with no call inside the handle.
func (p *Producer) finalize() error {
	r, l := p.r, p.l
	p.resOff = -1
	p.flush()
	crashAt(cpCloseTail)
	l.state.Store(le32(stateClosed))
	crashAt(cpCloseState)
	r.consSeq.Add(1)
	_, werr := futex.WakeAtomic(r.consSeq, 1)
	err := errors.Join(werr, p.lock.Unlock())
	r.forget(p)
	err = errors.Join(err, r.release())
	if p.own {
		err = errors.Join(err, r.Close())
	}
	if err != nil {
		return r.errorf("producer close: %w", err)
	}
	return nil
}

// unlocker releases a role.
type unlocker interface{ Unlock() error }

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
