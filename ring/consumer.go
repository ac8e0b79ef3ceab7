package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/bits"
	"os"

	"github.com/ringwire/ringwire/codec"
	"github.com/ringwire/ringwire/futex"
	"github.com/ringwire/ringwire/shm"
)

// Consumer reads messages from every lane of a ring: each lane's messages
// in order, each once; there is no order between lanes. It holds the
// consumer role until Close (or until its process dies). Receives must
// come from one goroutine at a time; Close may come from any goroutine,
// and makes a receive blocked in this Consumer return ErrClosed.
//
// The consumer polls the length word at each lane's head position, not
// the producer's tail: a committed length means the record is there, so
// one cache line carries both the signal and a small message. It polls
// only the lanes that are busy (the hot list); a lane idle for a while is
// handed to the ready set (layout.go), and its producer's next commit
// brings it back.
//
// Fairness: lanes are served round-robin, at most fairBatch messages from
// one lane before the next lane's turn, so a fast producer cannot starve
// the others.
//
// Everything it reads is validated before use: a length, type, flag,
// padding or checksum that breaks the layout gives ErrCorrupt with the
// lane and position, never a panic or a read outside the lane. Each shared
// word is read once, and the value checked is the value used.
type Consumer struct {
	r    *Ring
	lock unlocker
	g    guard
	own  bool // OpenConsumer: Close closes the Ring too
	mpsc bool

	lanes  []clane
	hot    []int // lanes polled directly, in visiting order
	cur    int   // index in hot of the lane being served
	served int   // messages taken from hot[cur] in a row

	flags    codec.Flags
	hdr      int
	checksum bool

	peeked    *clane // the lane of the message returned by Peek, until Release
	peekedRec record
	ahead     int // messages returned by Next and not yet released, all lanes

	// notice is what a Poller found while it watched this consumer: the
	// end of the stream, a dead producer. The next receive that finds
	// every lane empty returns it, once, as a blocking receive would.
	notice error

	unflushed counters
}

// clane is the consumer's view of one lane.
type clane struct {
	*lane
	head     uint64 // read position: the next record to read
	released uint64 // the shared head as last stored
	hot      bool   // in Consumer.hot
	idle     int    // polls in a row that found the lane empty

	// Read-ahead (Next): the messages in [released, head) were returned
	// by Next and are not released; ahead counts them, and lastPos and
	// lastEnd are the position and end of the last one.
	ahead            int
	lastPos, lastEnd uint64
}

// pending reports whether the length word at the lane's read position is
// non-zero: a record (or padding) has been committed there. The data region
// is a power of two long, so its length less one is the offset mask.
func (cl *clane) pending() bool {
	return cl.words[int(cl.head&uint64(len(cl.data)-1))/4].Load() != 0
}

// record is a validated data record at a lane's read position.
type record struct {
	payload []byte // aliases the lane
	size    int    // frame bytes, padding included
	sum     uint64 // the checksum field as read, if frames carry one
	pos     uint64 // position of the frame
}

const (
	// fairBatch is how many messages the consumer takes from one lane
	// before it serves the next.
	fairBatch = 64
	// hotKeep is how many idle lanes the consumer keeps polling itself
	// before it hands idle ones to the ready set.
	hotKeep = 4
	// coolAfter is how many empty polls make a lane idle.
	coolAfter = 64
)

// Consumer claims the consumer role. A second consumer, in this process or
// another, gets ErrBusy while the first is alive. A new consumer continues
// from the last released position of each lane: a message that a dead
// consumer had received but not released is delivered again.
func (r *Ring) Consumer() (*Consumer, error) {
	if r.seg.ReadOnly() {
		return nil, r.errorf("consumer on a read-only handle: %w", ErrBadOptions)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || !r.acquire() {
		return nil, r.errorf("consumer: %w", ErrClosed)
	}
	lock, err := r.seg.TryLock(lockConsumer, 1)
	if errors.Is(err, shm.ErrLocked) {
		r.release()
		return nil, r.errorf("consumer: %w", ErrBusy)
	}
	if err != nil {
		r.release()
		return nil, r.errorf("consumer: %w", err)
	}
	crashAt(cpConsumerLocked)
	c := &Consumer{r: r, lock: lock, mpsc: r.geo.mode == MPSC, flags: r.geo.frameFlag,
		hdr: codec.HeaderLen(r.geo.frameFlag), checksum: r.geo.checksum}
	c.lanes = make([]clane, len(r.lanes))
	c.hot = make([]int, 0, len(r.lanes))
	for i := range c.lanes {
		cl := &c.lanes[i]
		cl.lane = &r.lanes[i]
		cl.head = le64(cl.lane.head.Load())
		cl.released = cl.head
		if cl.head%codec.Align != 0 {
			lock.Unlock()
			r.release()
			return nil, r.corrupt(i, cl.head, "head not %d-aligned", codec.Align)
		}
		if t := le64(cl.tail.Load()); t > cl.head && t-cl.head > uint64(r.geo.capacity) {
			lock.Unlock()
			r.release()
			return nil, r.corrupt(i, cl.head, "published tail %d is more than the capacity ahead", t)
		}
		// Every lane starts cold: ask its producer to signal, then look.
		cl.signal.Store(le32(1))
	}
	crashAt(cpConsumerCooled)
	for i := range c.lanes {
		// The first lanes stay hot, so that a ring of few lanes is polled
		// without signals until the consumer parks; the others stay cold
		// unless they hold a record.
		if i < hotKeep || c.lanes[i].pending() {
			c.heat(i)
		}
	}
	r.consPID.Store(le32(uint32(os.Getpid())))
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
	c.own = true
	return c, nil
}

// Recv returns a copy of the next message, waiting for one as the wait
// strategy says. After the producers closed and every message was read it
// returns io.EOF; if the producer of an SPSC ring died, ErrPeerDead.
func (c *Consumer) Recv() ([]byte, error) { return c.RecvContext(context.Background()) }

// RecvContext is Recv that gives up when ctx ends, returning ctx.Err().
func (c *Consumer) RecvContext(ctx context.Context) ([]byte, error) {
	return c.RecvAppendContext(ctx, nil)
}

// TryRecv is Recv that returns ErrEmpty instead of waiting.
func (c *Consumer) TryRecv() ([]byte, error) { return c.TryRecvAppend(nil) }

// RecvAppend appends the next message to dst and returns the extended
// slice: with a dst of enough capacity it allocates nothing. The message
// is copied out of shared memory first and its checksum, if the ring has
// them, is verified on the copy: a peer that changes the bytes during the
// copy gives ErrCorrupt, never a wrong message.
func (c *Consumer) RecvAppend(dst []byte) ([]byte, error) {
	return c.RecvAppendContext(context.Background(), dst)
}

// RecvAppendContext is RecvAppend that gives up when ctx ends.
func (c *Consumer) RecvAppendContext(ctx context.Context, dst []byte) ([]byte, error) {
	if !c.g.enter() {
		return dst, c.leave(c.r.errorf("receive: %w", ErrClosed))
	}
	dst, err := c.recv(ctx, dst)
	return dst, c.leave(err)
}

// TryRecvAppend is RecvAppend that returns ErrEmpty instead of waiting.
func (c *Consumer) TryRecvAppend(dst []byte) ([]byte, error) {
	if !c.g.enter() {
		return dst, c.leave(c.r.errorf("receive: %w", ErrClosed))
	}
	dst, err := c.recv(noWait, dst)
	return dst, c.leave(err)
}

// recv copies the next message to dst, verifies the copy and releases the
// record; a nil ctx means do not wait.
func (c *Consumer) recv(ctx context.Context, dst []byte) ([]byte, error) {
	if err := c.readingAhead("receive"); err != nil {
		return dst, err
	}
	rec, cl, err := c.nextWait(ctx)
	if err != nil {
		return dst, err
	}
	crashAt(cpRecvRead)
	in, start := dst, len(dst)
	dst = append(dst, rec.payload...)
	if c.checksum {
		if got := codec.Checksum(dst[start:]); got != rec.sum {
			return in, c.r.corrupt(cl.idx, rec.pos, "checksum %#016x, frame says %#016x: %w", got, rec.sum, codec.ErrChecksum)
		}
	}
	crashAt(cpRecvCopied)
	cl.head = rec.pos + uint64(rec.size)
	c.count(len(rec.payload))
	c.publishHead(cl)
	crashAt(cpRecvReleased)
	c.wakeProducer(cl)
	return dst, nil
}

// Peek returns the next message in place, without copying, waiting for one
// as Recv does. The slice aliases shared memory: it is valid until
// Release, and Release must be called before the next receive. The lane's
// producer does not write there before then, but a hostile process with
// access to the segment may: the checksum, if the ring has them, is
// verified over the shared bytes, which proves nothing against a writer
// that changes them afterwards. Use Recv or RecvAppend for a verified
// copy.
func (c *Consumer) Peek() ([]byte, error) { return c.PeekContext(context.Background()) }

// PeekContext is Peek that gives up when ctx ends.
func (c *Consumer) PeekContext(ctx context.Context) ([]byte, error) {
	if !c.g.enter() {
		return nil, c.leave(c.r.errorf("peek: %w", ErrClosed))
	}
	msg, err := c.peek(ctx)
	return msg, c.leave(err)
}

// TryPeek is Peek that returns ErrEmpty instead of waiting.
func (c *Consumer) TryPeek() ([]byte, error) {
	if !c.g.enter() {
		return nil, c.leave(c.r.errorf("peek: %w", ErrClosed))
	}
	msg, err := c.peek(noWait)
	return msg, c.leave(err)
}

func (c *Consumer) peek(ctx context.Context) ([]byte, error) {
	if err := c.readingAhead("peek"); err != nil {
		return nil, err
	}
	rec, cl, err := c.nextWait(ctx)
	if err != nil {
		return nil, err
	}
	if c.checksum {
		if got := codec.Checksum(rec.payload); got != rec.sum {
			return nil, c.r.corrupt(cl.idx, rec.pos, "checksum %#016x, frame says %#016x: %w", got, rec.sum, codec.ErrChecksum)
		}
	}
	c.peeked, c.peekedRec = cl, rec
	return rec.payload, nil
}

// Release hands the message returned by Peek back to its producer.
func (c *Consumer) Release() error {
	if !c.g.enter() {
		return c.leave(c.r.errorf("release: %w", ErrClosed))
	}
	cl, rec := c.peeked, c.peekedRec
	if cl == nil {
		return c.leave(c.r.errorf("release without a peeked message: %w", ErrPending))
	}
	c.peeked = nil
	cl.head = rec.pos + uint64(rec.size)
	c.count(len(rec.payload))
	c.publishHead(cl)
	crashAt(cpRecvReleased)
	c.wakeProducer(cl)
	return c.leave(nil)
}

// Drain waits for a message as Recv does, then calls fn for it and for
// every further message ready now, up to max in all, and returns how many
// it delivered. Each lane's head is stored once per batch, not once per
// message, and a waiting producer is woken once. The slice fn gets aliases
// shared memory, as Peek's does, and is valid only during the call. If fn
// returns an error, Drain stops and returns it; the message fn refused is
// not released and comes again.
func (c *Consumer) Drain(ctx context.Context, max int, fn func(msg []byte) error) (int, error) {
	if !c.g.enter() {
		return 0, c.leave(c.r.errorf("drain: %w", ErrClosed))
	}
	n, err := c.drain(ctx, max, fn)
	return n, c.leave(err)
}

// TryDrain is Drain that returns ErrEmpty instead of waiting for the
// first message.
func (c *Consumer) TryDrain(max int, fn func(msg []byte) error) (int, error) {
	return c.Drain(noWait, max, fn)
}

func (c *Consumer) drain(ctx context.Context, max int, fn func([]byte) error) (n int, err error) {
	if max <= 0 {
		return 0, nil
	}
	if err := c.readingAhead("drain"); err != nil {
		return 0, err
	}
	rec, cl, err := c.nextWait(ctx)
	for err == nil {
		if c.checksum {
			if got := codec.Checksum(rec.payload); got != rec.sum {
				err = c.r.corrupt(cl.idx, rec.pos, "checksum %#016x, frame says %#016x: %w", got, rec.sum, codec.ErrChecksum)
				break
			}
		}
		if err = fn(rec.payload); err != nil {
			break
		}
		cl.head = rec.pos + uint64(rec.size)
		c.count(len(rec.payload))
		if n++; n == max {
			break
		}
		rec, cl, err = c.next()
	}
	if err == ErrEmpty && n > 0 {
		err = nil
	}
	crashAt(cpDrainTaken)
	for _, i := range c.hot {
		cl := &c.lanes[i]
		if cl.head != cl.released {
			c.publishHead(cl)
			c.wakeProducer(cl)
		}
	}
	return n, err
}

// noWait is the nil context that the Try forms pass down: do not wait.
var noWait context.Context

// nextWait is next that waits for a message; a nil ctx means do not wait.
func (c *Consumer) nextWait(ctx context.Context) (record, *clane, error) {
	for i := 0; ; i++ {
		rec, cl, err := c.next()
		if err == ErrEmpty && c.notice != nil {
			err, c.notice = c.notice, nil
		}
		if err != ErrEmpty || ctx == nil {
			return rec, cl, err
		}
		if i > 0 {
			// await saw a record that next did not take (padding, or a
			// peer rewriting the ring): its deadline still holds.
			if err := ctx.Err(); err != nil {
				return record{}, nil, err
			}
		}
		if err := c.r.await(ctx, c, c.r.consSeq); err != nil {
			c.flush()
			return record{}, nil, err
		}
	}
}

// next returns the next data record, visiting the hot lanes round-robin,
// or ErrEmpty. It takes no more than one lap over the hot lanes (and one
// padding frame per lane), so its work per call is bounded.
func (c *Consumer) next() (record, *clane, error) {
	if c.peeked != nil {
		return record{}, nil, c.r.errorf("receive before Release: %w", ErrPending)
	}
	c.gather()
	for range len(c.hot) {
		if c.cur >= len(c.hot) {
			c.cur = 0
		}
		if c.served >= fairBatch {
			c.cur, c.served = (c.cur+1)%len(c.hot), 0
		}
		cl := &c.lanes[c.hot[c.cur]]
		rec, err := c.take(cl)
		if err == nil {
			cl.idle = 0
			c.served++
			return rec, cl, nil
		}
		if err != ErrEmpty {
			return rec, cl, err
		}
		if cl.idle++; cl.idle >= coolAfter && len(c.hot) > hotKeep && c.cool(cl) {
			continue // c.cur now names the next lane
		}
		c.cur, c.served = c.cur+1, 0
	}
	return record{}, nil, ErrEmpty
}

// take validates the record at the lane's read position and returns it, or
// ErrEmpty. A padding frame there is stepped over.
func (c *Consumer) take(cl *clane) (record, error) {
	r := c.r
	for range 2 {
		off := int(cl.head & r.geo.mask)
		n := int(int32(le32(cl.words[off/4].Load()))) // acquires the record
		if n == 0 {
			return record{}, ErrEmpty
		}
		// off is 8-aligned and below capacity, so the 8-byte header is in
		// the lane. Type and flags are read once, here.
		typ := codec.Type(binary.LittleEndian.Uint16(cl.data[off+codec.OffType:]))
		flags := codec.Flags(binary.LittleEndian.Uint16(cl.data[off+codec.OffFlags:]))
		switch {
		case typ == codec.TypePadding:
			if flags != 0 {
				return record{}, r.corrupt(cl.idx, cl.head, "padding with flags %#04x: %w", uint16(flags), codec.ErrBadFlags)
			}
			if err := c.r.checkPadding(cl.idx, cl.head, off, n); err != nil {
				return record{}, err
			}
			cl.head += uint64(n)
			continue
		case typ != codec.TypeData:
			return record{}, r.corrupt(cl.idx, cl.head, "frame type %d: %w", uint16(typ), codec.ErrBadType)
		case flags != c.flags:
			return record{}, r.corrupt(cl.idx, cl.head, "frame flags %#04x in a ring whose frames have %#04x: %w", uint16(flags), uint16(c.flags), codec.ErrBadFlags)
		case n < c.hdr || n > r.geo.maxFrame:
			return record{}, r.corrupt(cl.idx, cl.head, "frame length %d outside [%d, %d]: %w", n, c.hdr, r.geo.maxFrame, codec.ErrBadLength)
		}
		size := codec.AlignUp(n)
		if off+size > r.geo.capacity {
			return record{}, r.corrupt(cl.idx, cl.head, "frame of %d bytes crosses the end of the lane: %w", size, codec.ErrTruncated)
		}
		rec := record{payload: cl.data[off+c.hdr : off+n : off+n], size: size, pos: cl.head}
		if c.checksum {
			rec.sum = binary.LittleEndian.Uint64(cl.data[off+codec.OffChecksum:])
		}
		return rec, nil
	}
	return record{}, r.corrupt(cl.idx, cl.head, "padding after padding")
}

// gather moves the lanes whose ready bits are set to the hot list.
func (c *Consumer) gather() {
	r := c.r
	words := (len(c.lanes) + 63) / 64
	for w := range words {
		if r.ready[w].Load() == 0 {
			continue
		}
		set := le64(r.ready[w].Swap(0))
		for set != 0 {
			i := w*64 + bits.TrailingZeros64(set)
			set &= set - 1
			if i < len(c.lanes) {
				c.heat(i)
			}
		}
	}
}

// heat puts lane i on the hot list and tells its producer to stop
// signalling.
func (c *Consumer) heat(i int) {
	cl := &c.lanes[i]
	if cl.hot {
		return
	}
	cl.hot, cl.idle = true, 0
	cl.signal.Store(0)
	c.hot = append(c.hot, i) // within the capacity made at attach
}

// cool asks the lane's producer to signal its next commit, then looks at
// the lane once more: a record committed before the producer could see
// the request keeps the lane hot. It reports whether the lane left the
// hot list (c.cur then names the lane after it).
func (c *Consumer) cool(cl *clane) bool {
	if cl.head != cl.released {
		return false // a batch still to release
	}
	cl.signal.Swap(le32(1)) // fence: then the re-check
	if cl.pending() {
		cl.signal.Store(0)
		cl.idle = 0
		return false
	}
	cl.hot = false
	for k, i := range c.hot {
		if i == cl.idx {
			c.hot = append(c.hot[:k], c.hot[k+1:]...)
			if c.cur > k {
				c.cur--
			}
			break
		}
	}
	c.served = 0
	return true
}

// count adds a received message of n bytes to the statistics.
func (c *Consumer) count(n int) {
	c.unflushed.msgs++
	c.unflushed.bytes += uint64(n)
	if c.unflushed.msgs >= flushEvery {
		c.flush()
	}
}

// publishHead hands what the consumer has read in a lane back to its
// producer.
func (c *Consumer) publishHead(cl *clane) {
	cl.released = cl.head
	cl.lane.head.Swap(le64(cl.head)) // fence: then wakeProducer's load of waiting
}

// wakeProducer wakes the lane's producer if it announced that it sleeps
// for room and the release made that much room (see Ring.await).
func (c *Consumer) wakeProducer(cl *clane) {
	w := uint64(le32(cl.waiting.Load()))
	if w == 0 {
		return
	}
	t := le64(cl.tail.Load()) // published before the producer announced
	if t >= cl.released && t-cl.released+w > uint64(c.r.geo.capacity) {
		return // not enough room yet
	}
	cl.seq.Add(1)
	futex.WakeAtomic(cl.seq, 1)
}

func (c *Consumer) flush() {
	addLE(c.r.recvMsgs, c.unflushed.msgs)
	addLE(c.r.recvBytes, c.unflushed.bytes)
	c.unflushed = counters{}
}

// Consumer as a waiter, for a message in an empty ring.

func (c *Consumer) poll() (bool, error) {
	if c.g.isClosed() {
		return false, c.r.errorf("receive: %w", ErrClosed)
	}
	c.gather()
	for _, i := range c.hot {
		cl := &c.lanes[i]
		if cl.pending() {
			return true, nil
		}
	}
	if !c.mpsc {
		cl := &c.lanes[0]
		if cl.state.Load() == le32(stateClosed) {
			// The producer's last record was committed before its state
			// changed: look once more, then it is the end.
			if cl.pending() {
				c.heat(0)
				return true, nil
			}
			if c.g.isClosed() {
				// Closed while this poll ran (Ring.Close closes the
				// consumer before the producer): the handle's own close
				// is the answer, not the end of the stream.
				return false, c.r.errorf("receive: %w", ErrClosed)
			}
			return false, io.EOF
		}
	}
	return false, nil
}

// ended sweeps every lane, cold ones included: a lane with a record at
// its head goes on the hot list, so that no record waits for a signal its
// producer died before giving; a published tail more than the capacity
// ahead of the head is corruption. Then the end of the stream: an MPSC
// stream ends when no producer is attached, at least one closed, and every
// lane is drained. A dead producer does not end it: another may take its
// lane.
func (c *Consumer) ended() error {
	attached, closed, busy := false, false, false
	for i := range c.lanes {
		cl := &c.lanes[i]
		if t := le64(cl.tail.Load()); t > cl.head && t-cl.head > uint64(c.r.geo.capacity) {
			return c.r.corrupt(i, cl.head, "published tail %d is more than the capacity ahead", t)
		}
		if cl.pending() {
			c.heat(i)
			busy = true
		}
		switch le32(cl.state.Load()) {
		case stateAttached:
			attached = true
		case stateClosed:
			closed = true
		}
	}
	if c.mpsc && closed && !attached && !busy {
		return io.EOF
	}
	return nil
}

func (c *Consumer) peer() error {
	if c.mpsc {
		return nil
	}
	if c.lanes[0].pending() {
		c.heat(0) // delivered before the peer's end is reported
		return nil
	}
	r, l := c.r, &c.r.lanes[0]
	switch st, err := r.roleState(l.state, l.lock()); {
	case err != nil:
		return r.errorf("producer liveness: %w", err)
	case st == RoleClosed:
		return io.EOF
	case st == RoleDead:
		return r.errorf("receive: producer: %w", ErrPeerDead)
	}
	return nil
}

// announce hands every hot lane to the ready set (a lane found busy stays
// hot, and the poll after the announcement finds it), then declares that
// the consumer may sleep.
func (c *Consumer) announce() {
	c.flush() // an idle side's counters are current
	for k := len(c.hot) - 1; k >= 0; k-- {
		c.cool(&c.lanes[c.hot[k]])
	}
	c.r.consParked.Swap(le32(1)) // fence: then the re-check
}
func (c *Consumer) retract() { c.r.consParked.Store(0) }

// Close gives up the consumer role. A producer waiting for room, or
// sending afterwards, gets ErrClosed. A message that was peeked or drained
// but not released stays in the ring for the next consumer. Close may be
// called from any goroutine: a receive blocked in this Consumer returns
// ErrClosed, and the role is given up when that receive returns. Calling
// Close again returns nil.
func (c *Consumer) Close() error {
	finalize, first := c.g.close()
	if !first {
		return nil
	}
	c.r.consSeq.Add(1)
	futex.WakeAtomic(c.r.consSeq, futex.All) // a receive parked for a message
	if !finalize {
		return nil
	}
	return c.finalize()
}

// leave ends a call, finalizing the handle if Close came meanwhile.
func (c *Consumer) leave(err error) error {
	if c.g.leave() {
		c.finalize()
	}
	return err
}

// finalize gives up the role and wakes every producer parked for room, so
// that it sees the consumer closed. It runs once, with no call inside the
// handle.
func (c *Consumer) finalize() error {
	r := c.r
	c.flush()
	r.consState.Swap(le32(stateClosed)) // fence: then the loads of waiting
	crashAt(cpConsumerClose)
	var errs []error
	for i := range r.lanes {
		l := &r.lanes[i]
		if l.waiting.Load() != 0 {
			l.seq.Add(1)
			_, err := futex.WakeAtomic(l.seq, futex.All)
			errs = append(errs, err)
		}
	}
	errs = append(errs, c.lock.Unlock())
	r.forget(c)
	errs = append(errs, r.release())
	if c.own {
		errs = append(errs, r.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return r.errorf("consumer close: %w", err)
	}
	return nil
}
