package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ringwire/ringwire/codec"
)

// ErrUnknownMessage: ReleaseThrough was given an id that names no message
// of this consumer: another ring's instance, a lane the ring does not
// have, or a position where no message starts.
var ErrUnknownMessage = errors.New("ring: unknown message id")

// MessageID is a message's identity, stable across consumers: the ring's
// instance (chosen at random by Create), the producer's lane, and the
// lane position of the message's frame. A consumer that takes over after
// a crash delivers an unreleased message again with the same MessageID,
// so a forwarder can deduplicate downstream with it.
type MessageID struct {
	Instance uint64 // Ring.Instance of the ring the message was read from
	Lane     uint32 // the lane it was sent on: 0 in an SPSC ring
	Pos      uint64 // the position of its frame in the lane
}

// String returns the id as "%016x-%d-%d": the instance in 16 hex digits,
// the lane and the position in decimal. The form is stable: use it as a
// deduplication key (a NATS Nats-Msg-Id, for instance).
func (id MessageID) String() string {
	b, _ := id.AppendText(make([]byte, 0, 48))
	return string(b)
}

// AppendText appends the form String returns to b, allocating nothing if b
// has room for it (48 bytes always suffice).
func (id MessageID) AppendText(b []byte) ([]byte, error) {
	const hex = "0123456789abcdef"
	for s := 60; s >= 0; s -= 4 {
		b = append(b, hex[id.Instance>>s&0xf])
	}
	b = append(b, '-')
	b = strconv.AppendUint(b, uint64(id.Lane), 10)
	b = append(b, '-')
	return strconv.AppendUint(b, id.Pos, 10), nil
}

// ParseMessageID reads the form String returns.
func ParseMessageID(s string) (MessageID, error) {
	parts := strings.Split(s, "-")
	if len(parts) != 3 || len(parts[0]) != 16 {
		return MessageID{}, fmt.Errorf("ring: message id %q: want instance-lane-position", s)
	}
	inst, err1 := strconv.ParseUint(parts[0], 16, 64)
	lane, err2 := strconv.ParseUint(parts[1], 10, 32)
	pos, err3 := strconv.ParseUint(parts[2], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return MessageID{}, fmt.Errorf("ring: message id %q: %w", s, err)
	}
	return MessageID{Instance: inst, Lane: uint32(lane), Pos: pos}, nil
}

// Message is a message read ahead by Next: its bytes in place and its
// identity.
type Message struct {
	// Data aliases shared memory: it is valid until the message is
	// released (ReleaseThrough an id at or after it in its lane, or the
	// Consumer's Close). Its checksum, if the ring has them, was verified
	// over these bytes when Next returned; see Peek for what that proves.
	Data []byte
	ID   MessageID
}

// Next returns the next committed message in place, with its identity,
// without releasing it, waiting for one as Recv does. Successive calls
// read ahead: each returns the message after the last one returned,
// visiting the lanes round-robin as every receive does, each lane's
// messages in order. Read-ahead is bounded by what the lanes hold: a
// lane's producer waits for room once its lane is full of messages read
// ahead and not released, so release as you go (ReleaseThrough).
//
// A nil ctx does not wait: Next(nil) is TryNext, as Drain(nil, ...) is a
// non-blocking Drain.
//
// While a message read by Next is unreleased, Recv, Peek and Drain (and
// their Try and Context forms) return ErrPending; Next while a message
// returned by Peek is unreleased returns ErrPending too. The end of the
// stream, a dead producer and ctx's end are reported as Recv reports
// them; the messages already read ahead stay valid and releasable.
func (c *Consumer) Next(ctx context.Context) (Message, error) {
	if !c.g.enter() {
		return Message{}, c.leave(c.r.errorf("next: %w", ErrClosed))
	}
	m, err := c.next1(ctx)
	return m, c.leave(err)
}

// TryNext is Next that returns ErrEmpty instead of waiting.
func (c *Consumer) TryNext() (Message, error) {
	if !c.g.enter() {
		return Message{}, c.leave(c.r.errorf("next: %w", ErrClosed))
	}
	m, err := c.next1(noWait)
	return m, c.leave(err)
}

// next1 reads one message ahead; a nil ctx means do not wait.
func (c *Consumer) next1(ctx context.Context) (Message, error) {
	rec, cl, err := c.nextWait(ctx)
	if err != nil {
		return Message{}, err
	}
	if c.checksum {
		if got := codec.Checksum(rec.payload); got != rec.sum {
			return Message{}, c.r.corrupt(cl.idx, rec.pos, "checksum %#016x, frame says %#016x: %w", got, rec.sum, codec.ErrChecksum)
		}
	}
	cl.head = rec.pos + uint64(rec.size)
	cl.lastPos, cl.lastEnd = rec.pos, cl.head
	cl.ahead++
	c.ahead++
	c.count(len(rec.payload))
	return Message{Data: rec.payload, ID: MessageID{Instance: c.r.geo.instance, Lane: uint32(cl.idx), Pos: rec.pos}}, nil
}

// ReleaseThrough releases every message of id's lane read ahead by Next up
// to and including the one id names: it stores the lane's head once and
// wakes the lane's producer if it waits for that room, as Release does.
// The messages' Data must not be used afterwards. Messages are released
// in order per lane; other lanes are untouched.
//
// An id already released, or not yet returned by Next, gives ErrPending;
// one of another ring (its Instance), of a lane the ring does not have, or
// naming no message's position, gives ErrUnknownMessage. Nothing is
// released then.
func (c *Consumer) ReleaseThrough(id MessageID) error {
	if !c.g.enter() {
		return c.leave(c.r.errorf("release through %v: %w", id, ErrClosed))
	}
	return c.leave(c.releaseThrough(id))
}

func (c *Consumer) releaseThrough(id MessageID) error {
	r := c.r
	if id.Instance != r.geo.instance {
		return r.errorf("release through %v: the ring's instance is %016x: %w", id, r.geo.instance, ErrUnknownMessage)
	}
	if uint64(id.Lane) >= uint64(len(c.lanes)) {
		return r.errorf("release through %v: the ring has %d lanes: %w", id, len(c.lanes), ErrUnknownMessage)
	}
	cl := &c.lanes[id.Lane]
	if cl.ahead == 0 || id.Pos < cl.released || id.Pos >= cl.lastEnd {
		return r.errorf("release through %v: not read ahead (lane %d has %d unreleased from position %d): %w",
			id, id.Lane, cl.ahead, cl.released, ErrPending)
	}
	end, n := cl.head, cl.ahead
	if id.Pos != cl.lastPos {
		var err error
		if end, n, err = c.walk(cl, id.Pos); err != nil {
			return err
		}
	}
	cl.ahead -= n
	c.ahead -= n
	cl.released = end
	cl.lane.head.Store(le64(end))
	c.wakeProducer(cl)
	return nil
}

// walk follows the lane's records from its released position to pos and
// returns the end of the data record at pos and how many data records
// that releases. The records were validated when Next returned them; each
// is validated again, since the lane is shared memory, and the walk stays
// within what Next returned.
func (c *Consumer) walk(cl *clane, pos uint64) (end uint64, n int, err error) {
	r := c.r
	for p := cl.released; p <= pos && p < cl.lastEnd; {
		off := int(p & r.geo.mask)
		w := int(int32(le32(cl.words[off/4].Load())))
		typ := codec.Type(binary.LittleEndian.Uint16(cl.data[off+codec.OffType:]))
		padding := typ == codec.TypePadding
		size := codec.AlignUp(w)
		switch {
		case w <= 0:
			return 0, 0, r.corrupt(cl.idx, p, "length %d in a record read ahead: %w", w, codec.ErrBadLength)
		case padding:
			if err := r.checkPadding(cl.idx, p, off, w); err != nil {
				return 0, 0, err
			}
		case w < c.hdr || w > r.geo.maxFrame || off+size > r.geo.capacity:
			return 0, 0, r.corrupt(cl.idx, p, "frame length %d in a record read ahead: %w", w, codec.ErrBadLength)
		}
		next := p + uint64(size)
		if next > cl.lastEnd {
			return 0, 0, r.corrupt(cl.idx, p, "record read ahead runs past position %d", cl.lastEnd)
		}
		if !padding {
			n++
		}
		if p == pos {
			if padding {
				break
			}
			return next, n, nil
		}
		p = next
	}
	return 0, 0, r.errorf("release through lane %d position %d: no message starts there: %w", cl.idx, pos, ErrUnknownMessage)
}

// readingAhead refuses a receive that would release messages read ahead.
func (c *Consumer) readingAhead(what string) error {
	if c.ahead > 0 {
		return c.r.errorf("%s while %d messages read ahead are unreleased: %w", what, c.ahead, ErrPending)
	}
	return nil
}
