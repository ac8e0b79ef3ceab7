package natsbridge

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/ringwire/ringwire/ring"
)

// latencyRounds is how many messages, one at a time, measure latency.
const latencyRounds = 2000

// pipe is one path from a sender to a receiver.
type pipe struct {
	send func(msg []byte) error
	recv func(ctx context.Context) ([]byte, error)
	stop func()
}

// BenchmarkPath: ring -> Out -> NATS -> In -> ring beside a plain nats.go
// publisher and subscriber doing the same work, in core NATS and in
// JetStream (async publish; pull consumer with an ack per message), at 64 B
// and 1 KiB. ns/op and msgs/s are from a flood of b.N messages; p50 and
// p99 are the one-way latency of latencyRounds messages sent one at a time.
func BenchmarkPath(b *testing.B) {
	for _, mode := range []string{"core", "jetstream"} {
		for _, size := range []int{64, 1024} {
			for _, path := range []string{"plain", "bridge"} {
				b.Run(fmt.Sprintf("%s/%dB/%s", mode, size, path), func(b *testing.B) {
					benchPath(b, mode, path, size)
				})
			}
		}
	}
}

func benchPath(b *testing.B, mode, path string, size int) {
	dir := b.TempDir()
	s := startServer(b, b.TempDir(), -1, nil)
	defer stopServer(s)
	stream := ""
	if mode == "jetstream" {
		stream = "B"
		ensureStream(b, connect(b, s.ClientURL(), nil), stream, "bench.{lane}")
	}
	var p pipe
	if path == "plain" {
		p = plainPipe(b, s.ClientURL(), stream)
	} else {
		p = bridgePipe(b, s.ClientURL(), dir, stream)
	}
	defer p.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	msg := make([]byte, size)

	// Latency first, one message at a time.
	lat := make([]time.Duration, 0, latencyRounds)
	for range latencyRounds {
		binary.LittleEndian.PutUint64(msg, uint64(time.Now().UnixNano()))
		if err := p.send(msg); err != nil {
			b.Fatal(err)
		}
		got, err := p.recv(ctx)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Duration(time.Now().UnixNano()-int64(binary.LittleEndian.Uint64(got))))
	}
	slices.Sort(lat)

	// Throughput.
	done := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() {
		for range b.N {
			if _, err := p.recv(ctx); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range b.N {
		if err := p.send(msg); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
}

func plainPipe(b *testing.B, url, stream string) pipe {
	pub := connect(b, url, nil)
	subc := connect(b, url, nil)
	if stream == "" {
		sub, err := subc.SubscribeSync("bench.0")
		if err != nil {
			b.Fatal(err)
		}
		sub.SetPendingLimits(-1, -1)
		subc.Flush()
		return pipe{
			send: func(m []byte) error { return pub.Publish("bench.0", m) },
			recv: func(ctx context.Context) ([]byte, error) {
				m, err := sub.NextMsgWithContext(ctx)
				if err != nil {
					return nil, err
				}
				return m.Data, nil
			},
			stop: func() {},
		}
	}
	js, _ := jetstream.New(pub, jetstream.WithPublishAsyncMaxPending(DefaultMaxInFlight))
	jsc, _ := jetstream.New(subc)
	ctx := context.Background()
	cons, err := jsc.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{Durable: "plain", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: DefaultBatch})
	if err != nil {
		b.Fatal(err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(DefaultBatch))
	if err != nil {
		b.Fatal(err)
	}
	return pipe{
		send: func(m []byte) error { return publishAsync(js, "bench.0", m) },
		recv: func(ctx context.Context) ([]byte, error) {
			m, err := it.Next(jetstream.NextContext(ctx))
			if err != nil {
				return nil, err
			}
			m.Ack()
			return m.Data(), nil
		},
		stop: it.Stop,
	}
}

func bridgePipe(b *testing.B, url, dir, stream string) pipe {
	// Block: on two cores, a side that spins takes a CPU from the NATS
	// client and server running beside it (ringbridge's default too).
	w := ring.Wait{Mode: ring.Block}
	rA := createRing(b, dir, "a", ring.Options{Capacity: 1 << 20, Wait: w})
	rB := createRing(b, dir, "b", ring.Options{Capacity: 1 << 20, Wait: w})
	c, _ := rA.Consumer()
	p, _ := rB.Producer()
	ctx, cancel := context.WithCancel(context.Background())
	out, err := NewOut(c, connect(b, url, nil), OutConfig{Subject: "bench.{lane}", Stream: stream})
	if err != nil {
		b.Fatal(err)
	}
	inc := connect(b, url, nil)
	in, err := NewIn(p, inc, InConfig{Subject: "bench.*", Stream: stream, Durable: "in", StatePath: dir + "/in.seq"})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go func() { out.Run(ctx); done <- struct{}{} }()
	go func() { in.Run(ctx); done <- struct{}{} }()
	if stream == "" {
		// Wait for In's subscription: core NATS keeps nothing for later.
		for i := 0; i < 1000; i++ {
			if inc.NumSubscriptions() > 0 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		inc.Flush()
	}
	prod, _ := rA.Producer()
	cons, _ := rB.Consumer()
	var buf []byte
	return pipe{
		send: prod.Send,
		recv: func(ctx context.Context) ([]byte, error) {
			var err error
			buf, err = cons.RecvAppendContext(ctx, buf[:0])
			return buf, err
		},
		stop: func() { cancel(); <-done; <-done },
	}
}
