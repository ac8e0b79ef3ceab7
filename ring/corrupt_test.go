package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/ringwire/ringwire/codec"
)

// Tests of the consumer, and of the producer's cursor checks, facing
// crafted shared state. The ring is real; the bad bytes are written
// straight into its mapping, as a buggy or hostile peer would write them.

// hostileRing creates a ring with o (Capacity defaulting to the minimum)
// in a fresh directory, places both cursors at pos before any role is
// taken, as if that many bytes had gone through, and takes both roles.
func hostileRing(t *testing.T, o Options, pos uint64) (*Ring, *Producer, *Consumer) {
	t.Helper()
	o.Dir = t.TempDir()
	if o.Capacity == 0 {
		o.Capacity = minCapacity
	}
	r, err := Create("", o)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	r.lanes[0].head.Store(le64(pos))
	r.lanes[0].tail.Store(le64(pos))
	c, err := r.Consumer()
	if err != nil {
		t.Fatalf("Consumer: %v", err)
	}
	p, err := r.Producer()
	if err != nil {
		t.Fatalf("Producer: %v", err)
	}
	return r, p, c
}

// hostileFrame writes a frame header at offset off of the data region:
// type and flags first, then the length word, atomically, as a producer
// commits.
func hostileFrame(r *Ring, off int, length int32, typ codec.Type, flags codec.Flags) {
	binary.LittleEndian.PutUint16(r.lanes[0].data[off+codec.OffType:], uint16(typ))
	binary.LittleEndian.PutUint16(r.lanes[0].data[off+codec.OffFlags:], uint16(flags))
	r.lanes[0].words[off/4].Store(le32(uint32(length)))
}

// hostileEncode writes a complete, well-formed frame with flags f at off,
// committing its length word last.
func hostileEncode(t *testing.T, r *Ring, off int, payload []byte, f codec.Flags) {
	t.Helper()
	var buf [256]byte
	n, err := codec.Encode(buf[:], payload, f)
	if err != nil {
		t.Fatal(err)
	}
	copy(r.lanes[0].data[off+4:], buf[4:n])
	r.lanes[0].words[off/4].Store(le32(binary.LittleEndian.Uint32(buf[:])))
}

// hostileNoPanic runs fn and turns a panic into a test failure, so that one
// bug does not take the other tests of the binary down with it.
func hostileNoPanic(t testing.TB, what string, fn func()) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("%s panicked: %v\n%s", what, p, debug.Stack())
		}
	}()
	fn()
}

// hostileReceivers are the ways a consumer takes a message; each must
// report a corrupt record the same way.
var hostileReceivers = []struct {
	name string
	recv func(c *Consumer) ([]byte, error)
}{
	{"TryRecv", (*Consumer).TryRecv},
	{"TryPeek", (*Consumer).TryPeek},
	{"RecvContext", func(c *Consumer) ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return c.RecvContext(ctx)
	}},
	{"PeekContext", func(c *Consumer) ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return c.PeekContext(ctx)
	}},
}

// hostileWantCorrupt checks that err reports corruption at position pos
// and, if detail is not nil, matches it too.
func hostileWantCorrupt(t *testing.T, r *Ring, what string, err error, pos uint64, detail error) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatalf("%s: no error, want ErrCorrupt", what)
	case !errors.Is(err, ErrCorrupt):
		t.Fatalf("%s: %v, want ErrCorrupt", what, err)
	case detail != nil && !errors.Is(err, detail):
		t.Errorf("%s: %v, want it to match %v too", what, err, detail)
	}
	if want := fmt.Sprintf("position %d", pos); !strings.Contains(err.Error(), want) {
		t.Errorf("%s: %q does not say %q", what, err, want)
	}
	if !strings.Contains(err.Error(), r.Name()) {
		t.Errorf("%s: %q does not name the ring %q", what, err, r.Name())
	}
}

func TestCorruptHostileRecords(t *testing.T) {
	const capacity = minCapacity
	const end = capacity // the data region's end offset
	cs := Options{Checksum: true}
	tests := []struct {
		name    string
		o       Options
		pos     uint64 // where the cursors start
		write   func(t *testing.T, r *Ring, p *Producer)
		wantPos uint64   // the position the error names
		detail  error    // a further sentinel the error matches, or nil
		says    []string // the message says one of these, if any
	}{
		{"negative length", Options{}, 0, func(t *testing.T, r *Ring, p *Producer) {
			hostileFrame(r, 0, -16, codec.TypeData, 0)
		}, 0, nil, nil},
		{"MinInt32 length, later lap", Options{}, 5*capacity + 64, func(t *testing.T, r *Ring, p *Producer) {
			hostileFrame(r, 64, -1<<31, codec.TypeData, 0)
		}, 5*capacity + 64, nil, nil},
		{"length below the header", Options{}, 0, func(t *testing.T, r *Ring, p *Producer) {
			hostileFrame(r, 0, 4, codec.TypeData, 0)
		}, 0, codec.ErrBadLength, nil},
		{"length below the checksum header", cs, 0, func(t *testing.T, r *Ring, p *Producer) {
			hostileFrame(r, 0, 12, codec.TypeData, codec.FlagChecksum)
		}, 0, codec.ErrBadLength, nil},
		{"length above the max frame", Options{}, 0, func(t *testing.T, r *Ring, p *Producer) {
			hostileFrame(r, 0, capacity/2+8, codec.TypeData, 0)
		}, 0, codec.ErrBadLength, nil},
		{"length above a small max frame", Options{MaxMessage: 100}, 0, func(t *testing.T, r *Ring, p *Producer) {
			hostileFrame(r, 0, 200, codec.TypeData, 0) // fits the region, not the ring's maximum
		}, 0, codec.ErrBadLength, nil},
		{"length MaxInt32", Options{}, 0, func(t *testing.T, r *Ring, p *Producer) {
			hostileFrame(r, 0, 1<<31-1, codec.TypeData, 0)
		}, 0, codec.ErrBadLength, nil},
		{"frame running past the end", Options{}, end - 8, func(t *testing.T, r *Ring, p *Producer) {
			hostileFrame(r, end-8, 16, codec.TypeData, 0)
		}, end - 8, codec.ErrTruncated, nil},
		{"frame running far past the end", Options{}, end - 64, func(t *testing.T, r *Ring, p *Producer) {
			hostileFrame(r, end-64, capacity/2, codec.TypeData, 0)
		}, end - 64, codec.ErrTruncated, nil},
		{"checksum header past the end", cs, end - 8, func(t *testing.T, r *Ring, p *Producer) {
			hostileFrame(r, end-8, 16, codec.TypeData, codec.FlagChecksum)
		}, end - 8, codec.ErrTruncated, nil},
		{"type 0", Options{}, 0, func(t *testing.T, r *Ring, p *Producer) {
			hostileFrame(r, 0, 16, 0, 0)
		}, 0, codec.ErrBadType, nil},
		{"type 3", Options{}, 0, func(t *testing.T, r *Ring, p *Producer) {
			hostileFrame(r, 0, 16, 3, 0)
		}, 0, codec.ErrBadType, nil},
		{"reserved flag bit", Options{}, 0, func(t *testing.T, r *Ring, p *Producer) {
			hostileFrame(r, 0, 16, codec.TypeData, 0x8000)
		}, 0, codec.ErrBadFlags, nil},
		{"reserved flag bit with checksum", cs, 0, func(t *testing.T, r *Ring, p *Producer) {
			hostileFrame(r, 0, 16, codec.TypeData, codec.FlagChecksum|0x0002)
		}, 0, codec.ErrBadFlags, nil},
		{"padding with a flag", Options{}, end - 16, func(t *testing.T, r *Ring, p *Producer) {
			hostileFrame(r, end-16, 16, codec.TypePadding, codec.FlagChecksum)
		}, end - 16, codec.ErrBadFlags, nil},
		{"padding at offset 0", Options{}, 0, func(t *testing.T, r *Ring, p *Producer) {
			hostileFrame(r, 0, 16, codec.TypePadding, 0)
		}, 0, nil, nil},
		{"padding at offset 0 of a later lap", Options{}, 3 * capacity, func(t *testing.T, r *Ring, p *Producer) {
			hostileFrame(r, 0, 16, codec.TypePadding, 0)
		}, 3 * capacity, nil, nil},
		{"padding ending before the end", Options{}, 2000, func(t *testing.T, r *Ring, p *Producer) {
			hostileFrame(r, 2000, 16, codec.TypePadding, 0)
		}, 2000, nil, nil},
		{"padding running past the end", Options{}, end - 16, func(t *testing.T, r *Ring, p *Producer) {
			hostileFrame(r, end-16, 32, codec.TypePadding, 0)
		}, end - 16, codec.ErrTruncated, nil},
		{"padding longer than the max frame", Options{}, 1024, func(t *testing.T, r *Ring, p *Producer) {
			hostileFrame(r, 1024, end-1024, codec.TypePadding, 0) // ends exactly at the end, but too long
		}, 1024, codec.ErrBadLength, nil},
		{"padding of unaligned length", Options{}, end - 16, func(t *testing.T, r *Ring, p *Producer) {
			hostileFrame(r, end-16, 12, codec.TypePadding, 0)
		}, end - 16, codec.ErrBadLength, nil},
		{"two paddings in a row", Options{}, end - 16, func(t *testing.T, r *Ring, p *Producer) {
			hostileFrame(r, 0, 16, codec.TypePadding, 0)
			hostileFrame(r, end-16, 16, codec.TypePadding, 0) // valid by itself
		}, end, nil, nil},
		{"data frame without checksum in a checksum ring", cs, 0, func(t *testing.T, r *Ring, p *Producer) {
			hostileEncode(t, r, 0, []byte("plain"), 0)
		}, 0, nil, hostileSaysChecksumFlag},
		{"data frame with checksum in a plain ring", Options{}, 0, func(t *testing.T, r *Ring, p *Producer) {
			hostileEncode(t, r, 0, []byte("summed"), codec.FlagChecksum)
		}, 0, nil, hostileSaysChecksumFlag},
		{"checksum mismatch", cs, 0, func(t *testing.T, r *Ring, p *Producer) {
			if err := p.TrySend([]byte("hello, checksum")); err != nil {
				t.Fatal(err)
			}
			r.lanes[0].data[codec.HeaderLen(codec.FlagChecksum)+3] ^= 0x20
		}, 0, codec.ErrChecksum, nil},
		{"checksum mismatch after a real padding", cs, end - 64, func(t *testing.T, r *Ring, p *Producer) {
			if err := p.TrySend(make([]byte, 100)); err != nil { // pads 64 bytes, goes to offset 0
				t.Fatal(err)
			}
			if typ := binary.LittleEndian.Uint16(r.lanes[0].data[end-64+codec.OffType:]); typ != uint16(codec.TypePadding) {
				t.Fatalf("no padding frame at offset %d: type %d", end-64, typ)
			}
			r.lanes[0].data[codec.HeaderLen(codec.FlagChecksum)+99] = 1
		}, end, codec.ErrChecksum, nil},
		{"checksum field flipped", cs, 256, func(t *testing.T, r *Ring, p *Producer) {
			if err := p.TrySend([]byte("x")); err != nil {
				t.Fatal(err)
			}
			r.lanes[0].data[256+codec.OffChecksum] ^= 1
		}, 256, codec.ErrChecksum, nil},
	}
	for _, tt := range tests {
		for _, rv := range hostileReceivers {
			t.Run(tt.name+"/"+rv.name, func(t *testing.T) {
				r, p, c := hostileRing(t, tt.o, tt.pos)
				tt.write(t, r, p)
				hostileNoPanic(t, rv.name, func() {
					msg, err := rv.recv(c)
					if msg != nil {
						t.Errorf("%s returned %d bytes with its error", rv.name, len(msg))
					}
					hostileWantCorrupt(t, r, rv.name, err, tt.wantPos, tt.detail)
					if len(tt.says) > 0 && !hostileSaysOneOf(err.Error(), tt.says) {
						t.Errorf("%s: %q says none of %q", rv.name, err, tt.says)
					}
					// The consumer stays where the bad record is: asking
					// again gives the same verdict.
					msg, err = c.TryRecv()
					if msg != nil {
						t.Errorf("second TryRecv returned %d bytes", len(msg))
					}
					hostileWantCorrupt(t, r, "second TryRecv", err, tt.wantPos, tt.detail)
				})
			})
		}
	}
}

// hostileSaysChecksumFlag: a message about a frame's flags against the
// ring's names the checksum flag, by name or by value.
var hostileSaysChecksumFlag = []string{"checksum", "0x1", "0x0001"}

func hostileSaysOneOf(msg string, parts []string) bool {
	for _, p := range parts {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// TestCorruptHostileControl covers the consumer against a tail cursor
// more than the capacity ahead of its head: a waiting consumer must report
// it, whatever its wait strategy, rather than wait for the deadline.
func TestCorruptHostileControl(t *testing.T) {
	const capacity = minCapacity
	tests := []struct {
		name string
		wait Wait
		pos  uint64
		tail uint64
	}{
		{"block, tail capacity+8 ahead", Wait{Mode: Block}, 0, capacity + 8},
		{"block, tail far ahead", Wait{Mode: Block}, 7 * capacity, 1 << 62},
		{"block, tail MaxUint64", Wait{Mode: Block}, 64, 1<<64 - 1},
		{"adaptive, tail capacity+8 ahead", Wait{Spin: 16, Yield: 4}, 0, capacity + 8},
		{"yield, tail far ahead", Wait{Mode: Yield, PeerCheck: time.Millisecond}, 128, 1 << 40},
	}
	for _, tt := range tests {
		for _, peek := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/peek=%v", tt.name, peek), func(t *testing.T) {
				r, _, c := hostileRing(t, Options{Wait: tt.wait}, tt.pos)
				r.lanes[0].tail.Store(le64(tt.tail))
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				start := time.Now()
				hostileNoPanic(t, "receive", func() {
					var err error
					if peek {
						_, err = c.PeekContext(ctx)
					} else {
						_, err = c.RecvContext(ctx)
					}
					hostileWantCorrupt(t, r, "receive with a tail too far ahead", err, tt.pos, nil)
				})
				if d := time.Since(start); d > 3*time.Second {
					t.Errorf("the corrupt tail was reported after %v", d)
				}
			})
		}
	}
}

// TestCorruptHostileConsumerAttach: a consumer refuses cursors that break
// the layout: a tail more than the capacity ahead of the head, or a head
// that is not 8-aligned (records start at aligned offsets).
func TestCorruptHostileConsumerAttach(t *testing.T) {
	tests := []struct {
		name       string
		head, tail uint64
		write      func(r *Ring)
	}{
		{"tail capacity+8 ahead", 0, minCapacity + 8, nil},
		{"tail 2^63", 0, 1 << 63, nil},
		{"unaligned head before a record", 5, 5, func(r *Ring) { hostileFrame(r, 0, 16, codec.TypeData, 0) }},
		{"unaligned head near the end", minCapacity - 3, minCapacity - 3, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _, c := hostileRing(t, Options{}, 0)
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			r.lanes[0].head.Store(le64(tt.head))
			r.lanes[0].tail.Store(le64(tt.tail))
			if tt.write != nil {
				tt.write(r)
			}
			var err error
			hostileNoPanic(t, "Consumer", func() { c, err = r.Consumer() })
			if err == nil {
				c.Close()
			}
			hostileWantCorrupt(t, r, "Consumer", err, tt.head, nil)
			// The refused consumer left the role free.
			r.lanes[0].head.Store(0)
			r.lanes[0].tail.Store(0)
			c, err = r.Consumer()
			if err != nil {
				t.Fatalf("Consumer after the cursors were repaired: %v", err)
			}
			c.Close()
		})
	}
}

// TestCorruptHostileProducerHead fills the ring, so that the producer must
// reload the consumer's head, and gives it a head that breaks
// head <= tail <= head+capacity.
func TestCorruptHostileProducerHead(t *testing.T) {
	const capacity = minCapacity
	tests := []struct {
		name string
		pos  uint64
		head func(tail uint64) uint64
	}{
		{"head beyond the tail", 0, func(tail uint64) uint64 { return tail + 64 }},
		{"head far beyond the tail", 3 * capacity, func(tail uint64) uint64 { return 1 << 62 }},
		{"head more than the capacity behind", 3 * capacity, func(tail uint64) uint64 { return tail - capacity - 8 }},
		{"head zero after laps", 9 * capacity, func(tail uint64) uint64 { return 0 }},
	}
	sends := []struct {
		name string
		send func(p *Producer, msg []byte) error
	}{
		{"TrySend", (*Producer).TrySend},
		{"SendContext", func(p *Producer, msg []byte) error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return p.SendContext(ctx, msg)
		}},
		{"TryReserve", func(p *Producer, msg []byte) error {
			_, err := p.TryReserve(len(msg))
			return err
		}},
	}
	for _, tt := range tests {
		for _, s := range sends {
			t.Run(tt.name+"/"+s.name, func(t *testing.T) {
				r, p, _ := hostileRing(t, Options{Wait: Wait{Mode: Block}}, tt.pos)
				msg := make([]byte, 100)
				n := 0
				for ; ; n++ {
					err := p.TrySend(msg)
					if errors.Is(err, ErrFull) {
						break
					}
					if err != nil {
						t.Fatalf("TrySend %d: %v", n, err)
					}
				}
				if n == 0 {
					t.Fatal("the ring took no message")
				}
				p.flush() // the published tail is now exact
				tail := le64(r.lanes[0].tail.Load())
				head := tt.head(tail)
				r.lanes[0].head.Store(le64(head))
				var err error
				hostileNoPanic(t, s.name, func() { err = s.send(p, msg) })
				hostileWantCorrupt(t, r, s.name, err, head, nil)
				if got := le64(r.lanes[0].tail.Load()); got != tail {
					t.Errorf("tail moved from %d to %d: the producer wrote after it found the head corrupt", tail, got)
				}
			})
		}
	}
}

// TestCorruptHostileProducerAttach: a producer taking over a ring reads
// the tail and the records after it, left by a previous producer that may
// have been buggy; it must refuse what breaks the layout, and never panic
// in a later send.
func TestCorruptHostileProducerAttach(t *testing.T) {
	const capacity = minCapacity
	tests := []struct {
		name       string
		head, tail uint64
		write      func(r *Ring)
	}{
		{"tail more than the capacity ahead", 0, capacity + 8, nil},
		{"head far beyond the tail", 1 << 40, 64, nil},
		{"bad record after the tail", 256, 256, func(r *Ring) { hostileFrame(r, 256, 16, 9, 0) }},
		{"record after the tail running past the end", capacity - 8, capacity - 8, func(r *Ring) {
			hostileFrame(r, capacity-8, 64, codec.TypeData, 0)
		}},
		{"unaligned tail", 4077, 4077, nil},
		{"unaligned tail, later lap", 2*capacity + 13, 2*capacity + 13, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, p, _ := hostileRing(t, Options{}, 0)
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			r.lanes[0].head.Store(le64(tt.head))
			r.lanes[0].tail.Store(le64(tt.tail))
			if tt.write != nil {
				tt.write(r)
			}
			hostileNoPanic(t, "producer", func() {
				p, err := r.Producer()
				if err != nil {
					if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "position") {
						t.Fatalf("Producer: %v, want ErrCorrupt with the position", err)
					}
					return
				}
				defer p.Close()
				// Taken over: every send must be refused as corrupt.
				for i := range 8 {
					if err := p.TrySend(make([]byte, 8)); !errors.Is(err, ErrCorrupt) {
						t.Fatalf("Producer accepted the ring; TrySend %d: %v, want ErrCorrupt", i, err)
					}
				}
			})
		})
	}
}
