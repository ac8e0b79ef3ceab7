package natsbridge

import (
	"context"

	"github.com/ringwire/ringwire/ring"
)

// MessageID is a ring message's identity (ring.MessageID): the ring's
// instance, the lane and the position. It is stable across consumer
// crashes, and its String form travels as the Nats-Msg-Id.
type MessageID = ring.MessageID

// Message is a message read ahead from a ring (ring.Message): Data aliases
// shared memory until the message is released.
type Message = ring.Message

// Source is the consumer side of a ring as Out uses it: read ahead without
// releasing, and release each lane in order once NATS has the messages.
// Next and TryNext return io.EOF when the producers closed and everything
// was read, ring.ErrEmpty (TryNext) when nothing is ready.
type Source interface {
	Next(ctx context.Context) (Message, error)
	TryNext() (Message, error)
	ReleaseThrough(id MessageID) error
}

// Sink is the producer side of a ring as In uses it.
type Sink interface {
	TrySend(msg []byte) error
	SendContext(ctx context.Context, msg []byte) error
	MaxMessage() int
}

// The ring's own handles are the bridge's two sides.
var (
	_ Source = (*ring.Consumer)(nil)
	_ Sink   = (*ring.Producer)(nil)
)
