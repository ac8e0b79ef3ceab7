package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ringwire/ringwire/ring"
)

// Header names.
const (
	hdrMsgID      = "Nats-Msg-Id"
	hdrExpectLast = "Nats-Expected-Last-Msg-Id"
)

// Defaults.
const (
	DefaultMaxInFlight = 1024
	DefaultAckTimeout  = 5 * time.Second
)

// OutConfig configures Out.
type OutConfig struct {
	// Subject is where messages go. "{lane}" in it is replaced by the
	// lane of the message: "orders.lane.{lane}" publishes lane 3's
	// messages to "orders.lane.3".
	Subject string
	// Stream is the JetStream stream that captures Subject. "" means core
	// NATS: at-most-once, no acknowledgements.
	Stream string
	// MaxInFlight bounds the publishes not yet acknowledged (JetStream).
	// 0 means DefaultMaxInFlight.
	MaxInFlight int
	// AckTimeout is how long a publish may wait for its acknowledgement
	// before it is published again. 0 means DefaultAckTimeout.
	AckTimeout time.Duration
	// Logf logs events; nil means silent.
	Logf func(format string, args ...any)
	// Counters receives the statistics; nil means a private set.
	Counters *Counters
}

// Out is the outbound bridge: it takes the consumer role of a ring and
// publishes each message to NATS.
//
// With JetStream, every publish carries the message's identity as its
// Nats-Msg-Id and, from the second publish on, the previous publish's
// identity as Nats-Expected-Last-Msg-Id. The stream therefore stores each
// message at most once within its duplicate window, and never stores a
// message whose predecessor it lost: a publish lost in a disconnect makes
// every later one fail, and Out publishes them all again, in order, with
// the same identities. Ring space is released, lane by lane and in order,
// only when the stream acknowledged the message, so a crash of Out loses
// nothing: the next Out publishes the unreleased messages again and the
// duplicate window drops those the stream already has. This needs the
// stream's subjects to be written by this Out alone; another publisher
// breaks the chain, which Out reports and re-anchors, losing the order
// guarantee but nothing else.
//
// In core NATS mode a message is released once it is written to the
// connection: at-most-once.
type Out struct {
	src      Source
	nc       *nats.Conn
	js       jetstream.JetStream
	cfg      OutConfig
	stats    *Counters
	logf     func(string, ...any)
	subjects map[uint32]string

	// pending is a message read from the ring but not yet published.
	pending    Message
	hasPending bool
}

// NewOut builds an outbound bridge from src to the connection nc. With a
// stream configured, the stream must exist (see EnsureStream).
func NewOut(src Source, nc *nats.Conn, cfg OutConfig) (*Out, error) {
	if cfg.Subject == "" {
		return nil, errors.New("natsbridge: out: no subject")
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = DefaultAckTimeout
	}
	o := &Out{src: src, nc: nc, cfg: cfg, stats: cfg.Counters, logf: cfg.Logf, subjects: map[uint32]string{}}
	if o.stats == nil {
		o.stats = &Counters{}
	}
	if o.logf == nil {
		o.logf = func(string, ...any) {}
	}
	if cfg.Stream != "" {
		js, err := jetstream.New(nc,
			jetstream.WithPublishAsyncMaxPending(cfg.MaxInFlight+16),
			jetstream.WithPublishAsyncTimeout(cfg.AckTimeout))
		if err != nil {
			return nil, fmt.Errorf("natsbridge: out: %w", err)
		}
		o.js = js
	}
	return o, nil
}

// Counters returns the bridge's statistics.
func (o *Out) Counters() *Counters { return o.stats }

func (o *Out) subject(lane uint32) string {
	s, ok := o.subjects[lane]
	if !ok {
		s = strings.ReplaceAll(o.cfg.Subject, "{lane}", strconv.FormatUint(uint64(lane), 10))
		o.subjects[lane] = s
	}
	return s
}

// Run forwards messages until ctx ends, which is a clean stop (nil), or
// until a permanent error. Transient troubles (NATS unreachable, the
// stream not answering, the ring's producer gone) make it wait and retry,
// with the messages kept in the ring.
func (o *Out) Run(ctx context.Context) error {
	if o.js == nil {
		return o.runCore(ctx)
	}
	return o.runJS(ctx)
}

// errTooBig reports a message over the server's max payload.
func (o *Out) tooBig(m Message, hdr int) error {
	max := o.nc.MaxPayload()
	if int64(len(m.Data)+hdr) <= max {
		return nil
	}
	return fmt.Errorf("ring message %s of %d bytes (plus %d header bytes) exceeds the NATS server's max payload of %d bytes; chunking is not provided: %w",
		m.ID, len(m.Data), hdr, max, nats.ErrMaxPayload)
}

// next returns the next message: the pending one, or one from the ring,
// waiting for it if wait. ok is false when none is ready (or ctx ended).
func (o *Out) next(ctx context.Context, wait bool) (Message, bool, error) {
	if o.hasPending {
		o.hasPending = false
		return o.pending, true, nil
	}
	var m Message
	var err error
	if wait {
		m, err = o.src.Next(ctx)
	} else {
		m, err = o.src.TryNext()
	}
	switch {
	case err == nil:
		return m, true, nil
	case errors.Is(err, ring.ErrEmpty):
		return m, false, nil
	case ctx.Err() != nil:
		return m, false, nil
	case errors.Is(err, io.EOF), errors.Is(err, ring.ErrPeerDead):
		// The producer left or died; another may come. Keep polling.
		o.idle(ctx, err)
		return m, false, nil
	}
	return m, false, fmt.Errorf("natsbridge: out: ring: %w", err)
}

// idle waits a little when the ring has no producer.
func (o *Out) idle(ctx context.Context, why error) {
	select {
	case <-ctx.Done():
	case <-time.After(50 * time.Millisecond):
	}
}

// runCore publishes with core NATS: at-most-once.
func (o *Out) runCore(ctx context.Context) error {
	var batch []MessageID
	release := func() error {
		err := o.releaseIDs(batch)
		batch = batch[:0]
		return err
	}
	for ctx.Err() == nil {
		m, ok, err := o.next(ctx, len(batch) == 0)
		if err != nil {
			return err
		}
		if !ok || len(batch) >= 256 {
			if ok {
				o.hasPending, o.pending = true, m
			}
			if err := release(); err != nil {
				return err
			}
			continue
		}
		batch = append(batch, m.ID)
		if err := o.tooBig(m, 0); err != nil {
			o.stats.Drop(o.logf, "max_payload", err)
			continue
		}
		for {
			err := o.nc.Publish(o.subject(m.ID.Lane), m.Data)
			if err == nil {
				o.stats.Forwarded.Add(1)
				break
			}
			if o.nc.IsClosed() {
				return &PermanentError{fmt.Errorf("natsbridge: out: the NATS connection closed: %v", o.nc.LastError())}
			}
			// Reconnecting with a full reconnect buffer: the message waits
			// in the ring.
			o.logf("publish: %v; retrying", err)
			select {
			case <-ctx.Done():
				return release()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return release()
}

// releaseIDs releases, lane by lane, through the last of ids in each lane.
// ids are in the order they were read, so each lane's last is its highest.
func (o *Out) releaseIDs(ids []MessageID) error {
	if len(ids) == 0 {
		return nil
	}
	var last [8]MessageID
	lanes := last[:0]
	for _, id := range ids {
		found := false
		for i := range lanes {
			if lanes[i].Lane == id.Lane {
				lanes[i], found = id, true
				break
			}
		}
		if !found {
			lanes = append(lanes, id)
		}
	}
	for _, id := range lanes {
		if err := o.src.ReleaseThrough(id); err != nil {
			return fmt.Errorf("natsbridge: out: release %s: %w", id, err)
		}
	}
	return nil
}

// entry is a message published to JetStream and not yet released.
type entry struct {
	m      Message
	msg    *nats.Msg
	fut    jetstream.PubAckFuture
	err    error // publish failed (synchronously or by its future)
	done   bool  // acknowledged, or dropped
	dup    bool
	expect string
}

// runJS publishes to JetStream with pipelined, chained, deduplicated
// publishes.
func (o *Out) runJS(ctx context.Context) error {
	var q []*entry // in read order; q[0] is the oldest unreleased
	last := ""     // identity of the newest entry published, for the chain
	backoff := 50 * time.Millisecond
	var ids []MessageID
	defer func() { o.stats.InFlight.Store(0) }()

	// settle moves finished futures at the head of q into the released
	// state; it stops at the first unfinished or failed one.
	settle := func(block bool) (failed bool) {
		ids = ids[:0]
		for len(q) > 0 {
			e := q[0]
			if !e.done && e.err == nil {
				if block && len(ids) == 0 {
					select {
					case a := <-e.fut.Ok():
						e.done, e.dup = true, a.Duplicate
					case err := <-e.fut.Err():
						e.err = err
					case <-ctx.Done():
						return false
					}
				} else {
					select {
					case a := <-e.fut.Ok():
						e.done, e.dup = true, a.Duplicate
					case err := <-e.fut.Err():
						e.err = err
					default:
					}
				}
			}
			if e.err != nil {
				failed = true
				break
			}
			if !e.done {
				break
			}
			if e.fut != nil {
				o.stats.Acknowledged.Add(1)
				if e.dup {
					o.stats.Duplicates.Add(1)
				}
			}
			ids = append(ids, e.m.ID)
			q[0] = nil
			q = q[1:]
		}
		return failed
	}

	publish := func(e *entry) {
		e.fut, e.err = o.js.PublishMsgAsync(e.msg)
	}

	for {
		o.stats.InFlight.Store(int64(len(q)))
		if ctx.Err() != nil {
			return o.finish(q)
		}
		failed := settle(false)
		if err := o.releaseIDs(ids); err != nil {
			return err
		}
		if failed {
			var err error
			if q, last, err = o.recover(ctx, q, last, &backoff); err != nil {
				return err
			}
			continue
		}
		progressed := false
		for len(q) < o.cfg.MaxInFlight && !(len(q) > 0 && q[len(q)-1].err != nil) {
			m, ok, err := o.next(ctx, false)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			progressed = true
			q = append(q, o.entry(m, &last))
			if e := q[len(q)-1]; !e.done {
				publish(e)
				o.stats.Forwarded.Add(1)
				if e.err != nil {
					break
				}
			}
		}
		if progressed {
			backoff = 50 * time.Millisecond
			continue
		}
		// Nothing to read, or the window is full: wait for the ring or an
		// acknowledgement.
		switch {
		case len(q) == 0:
			m, ok, err := o.next(ctx, true)
			if err != nil {
				return err
			}
			if ok {
				o.hasPending, o.pending = true, m
			}
		case len(q) >= o.cfg.MaxInFlight || o.hasPending || q[len(q)-1].err != nil:
			// The window is full, or the newest publish failed at once
			// (the connection broke) and nothing more may be published
			// until the ones before it settle and it is published again:
			// wait for the oldest publish only. Reading the ring now would
			// read a message there is no room to keep (o.pending holds at
			// most one), and a message read and not kept is released with
			// the later ones: lost.
			settle(true)
			if err := o.releaseIDs(ids); err != nil {
				return err
			}
		default:
			if err := o.waitEither(ctx, q[0]); err != nil {
				return err
			}
		}
	}
}

// entry prepares the publish of m, chained to *last, and advances *last.
// A message too large for the server becomes a dropped entry, released in
// its turn.
func (o *Out) entry(m Message, last *string) *entry {
	id := m.ID.String()
	hdr := nats.Header{hdrMsgID: []string{id}}
	if *last != "" {
		hdr[hdrExpectLast] = []string{*last}
	}
	e := &entry{m: m, expect: *last}
	hlen := len(hdrMsgID) + len(id) + len(hdrExpectLast) + len(*last) + 32
	if err := o.tooBig(m, hlen); err != nil {
		o.stats.Drop(o.logf, "max_payload", err)
		e.done = true
		return e
	}
	e.msg = &nats.Msg{Subject: o.subject(m.ID.Lane), Data: m.Data, Header: hdr}
	*last = id
	return e
}

// waitEither waits until the oldest publish settles or a message arrives
// in the ring. The ring is read by a helper goroutine, and this one waits
// for the helper to return before anything else touches the ring.
func (o *Out) waitEither(ctx context.Context, head *entry) error {
	if head.done || head.err != nil || o.hasPending {
		return nil
	}
	wctx, cancel := context.WithCancel(ctx)
	type result struct {
		m   Message
		err error
	}
	ch := make(chan result, 1)
	go func() {
		m, err := o.src.Next(wctx)
		ch <- result{m, err}
	}()
	var r result
	select {
	case a := <-head.fut.Ok():
		head.done, head.dup = true, a.Duplicate
		cancel()
		r = <-ch
	case err := <-head.fut.Err():
		head.err = err
		cancel()
		r = <-ch
	case r = <-ch:
		cancel()
	}
	if r.err == nil {
		o.hasPending, o.pending = true, r.m
		return nil
	}
	if ctx.Err() != nil || errors.Is(r.err, context.Canceled) || errors.Is(r.err, ring.ErrEmpty) {
		return nil
	}
	if errors.Is(r.err, io.EOF) || errors.Is(r.err, ring.ErrPeerDead) {
		return nil
	}
	return fmt.Errorf("natsbridge: out: ring: %w", r.err)
}

// recover handles a failed publish at the head of q (after the acknowledged
// ones were released): it waits for every other publish in flight to
// settle, then publishes the failed one and all after it again, in order,
// with the same identities and chain.
func (o *Out) recover(ctx context.Context, q []*entry, last string, backoff *time.Duration) ([]*entry, string, error) {
	head := q[0]
	cause := head.err
	// Let every future settle, so no publish of ours is still on its way.
	for _, e := range q {
		if e.fut == nil || e.done || e.err != nil {
			continue
		}
		select {
		case a := <-e.fut.Ok():
			e.done, e.dup = true, a.Duplicate
		case err := <-e.fut.Err():
			e.err = err
		case <-ctx.Done():
			return q, last, nil
		}
	}
	var apiErr *jetstream.APIError
	if errors.As(cause, &apiErr) {
		switch apiErr.ErrorCode {
		case 10070: // wrong last msg id: someone else wrote to the stream
			if head.expect != "" {
				o.logf("the stream's last message is not ours (%v): another publisher writes to %q; re-anchoring the chain, order with the other publisher is not kept", cause, o.cfg.Stream)
				head.expect = ""
				delete(head.msg.Header, hdrExpectLast)
				*backoff = 0
			}
		case jetstream.JSErrCodeStreamMessageExceedsMaximum:
			err := fmt.Errorf("ring message %s of %d bytes exceeds the stream's max message size: %w", head.m.ID, len(head.m.Data), cause)
			o.stats.Drop(o.logf, "stream_max_msg_size", err)
			head.done, head.err, head.fut = true, nil, nil
			// The next publish expected this one: chain it to this one's
			// predecessor instead.
			if len(q) > 1 {
				n := q[1]
				if n.msg != nil {
					n.expect = head.expect
					if n.expect == "" {
						delete(n.msg.Header, hdrExpectLast)
					} else {
						n.msg.Header[hdrExpectLast] = []string{n.expect}
					}
				}
			} else {
				last = head.expect
			}
			return o.republish(ctx, q, 1, last)
		}
	}
	if o.nc.IsClosed() {
		return q, last, &PermanentError{fmt.Errorf("natsbridge: out: the NATS connection closed: %v", o.nc.LastError())}
	}
	if *backoff > 0 {
		o.logf("publish of %s failed: %v; publishing %d messages again in %v", head.m.ID, cause, len(q), *backoff)
		select {
		case <-ctx.Done():
			return q, last, nil
		case <-time.After(*backoff):
		}
	}
	*backoff = min(2**backoff+50*time.Millisecond, 2*time.Second)
	return o.republish(ctx, q, 0, last)
}

// republish publishes q[from:] again, in order. If a publish fails at
// once (the connection is down), it and every later one are marked failed,
// for the next round.
func (o *Out) republish(ctx context.Context, q []*entry, from int, last string) ([]*entry, string, error) {
	var failed error
	for _, e := range q[from:] {
		if e.msg == nil { // dropped
			e.done, e.err, e.fut = true, nil, nil
			continue
		}
		if failed != nil {
			e.done, e.err = false, failed
			continue
		}
		e.done, e.dup = false, false
		e.fut, e.err = o.js.PublishMsgAsync(e.msg)
		o.stats.Redeliveries.Add(1)
		failed = e.err
	}
	return q, last, nil
}

// finish waits briefly for publishes in flight, and releases what was
// acknowledged, when Run stops.
func (o *Out) finish(q []*entry) error {
	deadline := time.After(o.cfg.AckTimeout)
	var ids []MessageID
	for _, e := range q {
		if e.fut == nil && !e.done {
			break
		}
		if !e.done && e.err == nil {
			select {
			case a := <-e.fut.Ok():
				e.done, e.dup = true, a.Duplicate
			case e.err = <-e.fut.Err():
			case <-deadline:
			}
		}
		if !e.done || e.err != nil {
			break
		}
		if e.fut != nil {
			o.stats.Acknowledged.Add(1)
			if e.dup {
				o.stats.Duplicates.Add(1)
			}
		}
		ids = append(ids, e.m.ID)
	}
	return o.releaseIDs(ids)
}
