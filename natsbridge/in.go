package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ringwire/ringwire/ring"
)

// In defaults.
const (
	DefaultBatch   = 256
	DefaultAckWait = 30 * time.Second
)

// InConfig configures In.
type InConfig struct {
	// Subject is the subject (wildcards allowed) to take messages from:
	// the durable consumer's filter, or the core subscription's subject.
	Subject string
	// Stream is the JetStream stream to consume; "" means a core NATS
	// subscription: at-most-once.
	Stream string
	// Durable is the durable consumer's name. One In per durable.
	Durable string
	// Batch bounds the messages fetched but not yet acknowledged: the
	// consumer's MaxAckPending and the pull batch. 0 means DefaultBatch.
	Batch int
	// AckWait is the consumer's acknowledgement wait; while the ring is
	// full, In tells the server the message is in progress well within it.
	// 0 means DefaultAckWait.
	AckWait time.Duration
	// StatePath is a file where In records the last stream sequence it
	// committed to the ring (best on the ring's host, e.g. in /dev/shm).
	// With it, a crash of In puts at most one duplicate into the ring;
	// without it, up to Batch.
	StatePath string
	// PendingMsgs bounds a core subscription's client-side buffer; beyond
	// it messages are dropped (counted, reason "slow_consumer"). 0 means
	// nats.go's default.
	PendingMsgs int
	// Logf logs events; nil means silent.
	Logf func(format string, args ...any)
	// Counters receives the statistics; nil means a private set.
	Counters *Counters
}

// In is the inbound bridge: it takes messages from NATS and sends them into
// a ring.
//
// With JetStream, In reads a durable pull consumer with explicit
// acknowledgements, and acknowledges a message only after Send committed
// it to the ring. It records the stream sequence of every committed
// message (StatePath), skips a message at or below it, and, when it
// starts or sees a gap in the delivery sequence (a delivery lost in a
// disconnect), re-creates the consumer to start just after it. So every
// message reaches the ring, in stream order, and a crash of In can put at
// most one message twice into the ring: the one committed just before
// the crash and not yet recorded. Without a state file the bound is the
// number fetched but not acknowledged: Batch.
//
// With core NATS, In is a plain subscription: at-most-once.
type In struct {
	sink  Sink
	nc    *nats.Conn
	js    jetstream.JetStream
	cfg   InConfig
	stats *Counters
	logf  func(string, ...any)
	state *seqState

	stream jetstream.Stream
	// epoch counts consumer re-creations.
	epoch int
}

// NewIn builds an inbound bridge from nc to sink.
func NewIn(sink Sink, nc *nats.Conn, cfg InConfig) (*In, error) {
	if cfg.Subject == "" {
		return nil, errors.New("natsbridge: in: no subject")
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = DefaultAckWait
	}
	if cfg.Stream != "" && cfg.Durable == "" {
		return nil, errors.New("natsbridge: in: JetStream needs a durable consumer name")
	}
	in := &In{sink: sink, nc: nc, cfg: cfg, stats: cfg.Counters, logf: cfg.Logf}
	if in.stats == nil {
		in.stats = &Counters{}
	}
	if in.logf == nil {
		in.logf = func(string, ...any) {}
	}
	if cfg.Stream != "" {
		js, err := jetstream.New(nc)
		if err != nil {
			return nil, fmt.Errorf("natsbridge: in: %w", err)
		}
		in.js = js
	}
	return in, nil
}

// Counters returns the bridge's statistics.
func (in *In) Counters() *Counters { return in.stats }

// Run forwards messages until ctx ends (nil) or a permanent error.
func (in *In) Run(ctx context.Context) error {
	if in.js == nil {
		return in.runCore(ctx)
	}
	defer in.state.Close()
	return in.runJS(ctx)
}

// send commits data to the ring, waiting while it is full. keep is called
// now and then while it waits (to tell JetStream the message is in
// progress). It returns nil, a ring error that drops the message
// (ErrTooLarge), or ctx's error.
func (in *In) send(ctx context.Context, data []byte, keep func()) error {
	err := in.sink.TrySend(data)
	if err == nil || errors.Is(err, ring.ErrTooLarge) {
		return err
	}
	every := max(in.cfg.AckWait/3, 10*time.Millisecond)
	logged := false
	for {
		switch {
		case err == nil, errors.Is(err, ring.ErrTooLarge):
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, ring.ErrFull), errors.Is(err, context.DeadlineExceeded):
			// Back-pressure: the ring is full; stop pulling.
		case errors.Is(err, ring.ErrClosed), errors.Is(err, ring.ErrPeerDead):
			// No consumer on the ring: wait for one.
			if !logged {
				in.logf("ring: %v; waiting for a consumer", err)
				logged = true
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		default:
			return fmt.Errorf("natsbridge: in: ring: %w", err)
		}
		if keep != nil {
			keep()
		}
		sctx, cancel := context.WithTimeout(ctx, every)
		err = in.sink.SendContext(sctx, data)
		cancel()
	}
}

// runCore reads a plain subscription.
func (in *In) runCore(ctx context.Context) error {
	sub, err := in.nc.SubscribeSync(in.cfg.Subject)
	if err != nil {
		return fmt.Errorf("natsbridge: in: subscribe %q: %w", in.cfg.Subject, err)
	}
	defer sub.Unsubscribe()
	if in.cfg.PendingMsgs > 0 {
		if err := sub.SetPendingLimits(in.cfg.PendingMsgs, -1); err != nil {
			return fmt.Errorf("natsbridge: in: %w", err)
		}
	}
	var lastDropped int
	for {
		msg, err := sub.NextMsgWithContext(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, nats.ErrSlowConsumer) {
			continue // counted below
		}
		if err != nil {
			return fmt.Errorf("natsbridge: in: %w", err)
		}
		if d, _ := sub.Dropped(); d > lastDropped {
			for ; lastDropped < d; lastDropped++ {
				in.stats.Drop(nil, "slow_consumer", nil)
			}
			in.logf("dropped messages (slow_consumer): the subscription's buffer overflowed while the ring was full; %d so far", d)
		}
		switch err := in.send(ctx, msg.Data, nil); {
		case err == nil:
			in.stats.Forwarded.Add(1)
		case errors.Is(err, ring.ErrTooLarge):
			in.stats.Drop(in.logf, "ring_max_message", in.tooLarge(msg.Subject, len(msg.Data), err))
		case ctx.Err() != nil:
			return nil
		default:
			return err
		}
	}
}

func (in *In) tooLarge(subj string, n int, err error) error {
	return fmt.Errorf("message on %q of %d bytes exceeds the ring's max message of %d bytes: %w", subj, n, in.sink.MaxMessage(), err)
}

// consumerConfig is the durable consumer, starting at stream sequence
// start (0: from the beginning).
func (in *In) consumerConfig(start uint64) jetstream.ConsumerConfig {
	c := jetstream.ConsumerConfig{
		Durable:       in.cfg.Durable,
		FilterSubject: in.cfg.Subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       in.cfg.AckWait,
		MaxAckPending: in.cfg.Batch,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if start > 1 {
		c.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		c.OptStartSeq = start
	}
	return c
}

// position returns the durable consumer, re-created if needed so that it
// delivers from just after the last committed message.
func (in *In) position(ctx context.Context, force bool) (jetstream.Consumer, error) {
	cons, err := in.stream.Consumer(ctx, in.cfg.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		start := in.state.Last() + 1
		in.logf("creating durable consumer %q on stream %q from sequence %d", in.cfg.Durable, in.cfg.Stream, start)
		return in.stream.CreateConsumer(ctx, in.consumerConfig(start))
	}
	if err != nil {
		return nil, err
	}
	info := cons.CachedInfo()
	last := max(info.AckFloor.Stream, in.state.Last())
	if !force && info.NumAckPending == 0 && info.Delivered.Stream <= last {
		return cons, nil
	}
	in.epoch++
	in.logf("re-creating durable consumer %q to deliver after stream sequence %d (ack floor %d, %d pending)",
		in.cfg.Durable, last, info.AckFloor.Stream, info.NumAckPending)
	if err := in.stream.DeleteConsumer(ctx, in.cfg.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, err
	}
	return in.stream.CreateConsumer(ctx, in.consumerConfig(last+1))
}

// runJS reads the durable pull consumer.
func (in *In) runJS(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	force := false
	for ctx.Err() == nil {
		err := in.consume(ctx, force)
		if ctx.Err() != nil {
			return nil
		}
		if IsPermanent(err) {
			return err
		}
		if in.nc.IsClosed() {
			return &PermanentError{fmt.Errorf("natsbridge: in: the NATS connection closed: %v", in.nc.LastError())}
		}
		force = errors.Is(err, errDeliveryGap)
		if !force {
			in.logf("consumer: %v; retrying in %v", err, backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
		} else {
			backoff = 100 * time.Millisecond
		}
	}
	return nil
}

var errDeliveryGap = errors.New("a delivery was lost")

// consume sets up the stream, state and consumer, and forwards messages
// until an error.
func (in *In) consume(ctx context.Context, force bool) error {
	if in.stream == nil {
		st, err := in.js.Stream(ctx, in.cfg.Stream)
		if err != nil {
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				return &PermanentError{fmt.Errorf("natsbridge: in: stream %q: %w", in.cfg.Stream, err)}
			}
			return err
		}
		if in.cfg.StatePath != "" && in.state == nil {
			s, err := openSeqState(in.cfg.StatePath, st.CachedInfo().Created.UnixNano())
			if err != nil {
				return &PermanentError{fmt.Errorf("natsbridge: in: %w", err)}
			}
			in.state = s
		}
		in.stream = st
	}
	cons, err := in.position(ctx, force)
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(in.cfg.Batch))
	if err != nil {
		return err
	}
	defer it.Stop()
	var nextDseq uint64 // expected delivery sequence; 0 until the first
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return err
		}
		md, err := msg.Metadata()
		if err != nil {
			return err
		}
		if nextDseq != 0 && md.Sequence.Consumer != nextDseq {
			in.logf("delivery sequence %d after %d: a delivery was lost; re-positioning", md.Sequence.Consumer, nextDseq-1)
			return errDeliveryGap
		}
		nextDseq = md.Sequence.Consumer + 1
		if md.NumDelivered > 1 {
			in.stats.Redeliveries.Add(1)
		}
		seq := md.Sequence.Stream
		if seq <= in.state.Last() {
			in.stats.Duplicates.Add(1)
			msg.Ack()
			continue
		}
		switch err := in.send(ctx, msg.Data(), func() { msg.InProgress() }); {
		case err == nil:
			in.state.Store(seq)
			in.stats.Forwarded.Add(1)
		case errors.Is(err, ring.ErrTooLarge):
			in.stats.Drop(in.logf, "ring_max_message", in.tooLarge(msg.Subject(), len(msg.Data()), err))
			in.state.Store(seq)
			msg.Term()
			continue
		default:
			return err
		}
		if err := msg.Ack(); err == nil {
			in.stats.Acknowledged.Add(1)
		}
	}
}
