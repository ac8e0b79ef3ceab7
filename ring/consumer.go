package ring

import (
	"context"
	"errors"
	"io"

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

	head      uint64 // position of the next record; shared head == head except inside Peek
	peeked    int    // size of the frame returned by Peek and not yet released, or 0
	peekedLen int    // its payload length
	flags     codec.Flags

	unflushed counters
	closed    bool
}

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
	c := &Consumer{r: r, lock: lock, head: le64(r.head.Load()), flags: r.geo.frameFlag}
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
// size, or ErrEmpty. Padding is consumed on the way. It loops at most
// twice: padding is only valid at a non-zero offset, and it leads to
// offset 0.
func (c *Consumer) next() ([]byte, int, error) {
	r := c.r
	switch {
	case c.closed:
		return nil, 0, r.errorf("receive: %w", ErrClosed)
	case c.peeked != 0:
		return nil, 0, r.errorf("receive before Release: %w", ErrPending)
	}
	for range 2 {
		off := int(c.head & r.geo.mask)
		l := int32(le32(r.words[off/4].Load())) // acquires the record
		if l == 0 {
			return nil, 0, ErrEmpty
		}
		if l < 0 {
			return nil, 0, r.corrupt(c.head, "length %d in an SPSC ring", l)
		}
		f, err := codec.Decode(r.data, off, r.geo.maxFrame)
		if err != nil {
			return nil, 0, r.corrupt(c.head, "%w", err)
		}
		if f.Type == codec.TypePadding {
			if off == 0 || off+f.Size != r.geo.capacity {
				return nil, 0, r.corrupt(c.head, "padding of %d bytes at offset %d does not end the data region", f.Size, off)
			}
			c.head += uint64(f.Size)
			r.head.Store(le64(c.head))
			continue
		}
		if f.Flags != c.flags {
			return nil, 0, r.corrupt(c.head, "frame flags %#x in a ring whose frames have %#x", f.Flags, c.flags)
		}
		return f.Payload, f.Size, nil
	}
	return nil, 0, r.corrupt(c.head, "padding after padding")
}

// release frees the frame at the head and wakes producers that announced
// they may sleep (see Ring.await for why no wake-up is lost).
func (c *Consumer) release(size, n int) {
	r := c.r
	c.head += uint64(size)
	r.head.Store(le64(c.head))
	c.unflushed.msgs++
	c.unflushed.bytes += uint64(n)
	if r.prodWaiters.Load() != 0 {
		r.prodSeq.Add(1)
		futex.WakeAtomic(r.prodSeq, futex.All)
	}
	if c.unflushed.msgs >= flushEvery {
		c.flushStats()
	}
}

func (c *Consumer) flushStats() {
	s := &c.r.stats
	addLE(s[0], c.unflushed.msgs)
	addLE(s[1], c.unflushed.bytes)
	c.unflushed = counters{}
}

// Consumer as a waiter, for a message in an empty ring.

func (c *Consumer) poll() (bool, error) {
	w := &c.r.words[int(c.head&c.r.geo.mask)/4]
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
	if t := le64(r.tail.Load()); t > c.head && t-c.head > uint64(r.geo.capacity) {
		return r.corrupt(c.head, "tail %d is more than the capacity ahead", t)
	}
	switch le32(r.prodState.Load()) {
	case stateClosed:
		return io.EOF
	case stateAttached:
		held, err := r.seg.Locked(slotLock(0), 1)
		if err != nil {
			return r.errorf("producer liveness: %w", err)
		}
		if !held && le32(r.prodState.Load()) == stateAttached {
			return r.errorf("receive: producer: %w", ErrPeerDead)
		}
	}
	return nil
}

func (c *Consumer) announce() { c.r.consParked.Store(le32(1)) }
func (c *Consumer) retract()  { c.r.consParked.Store(0) }

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
