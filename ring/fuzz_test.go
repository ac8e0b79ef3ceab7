package ring

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ringwire/ringwire/codec"
)

// FuzzCorruptRing writes fuzz-chosen bytes anywhere in a ring's segment
// (header, control blocks, data region) and checks that everything that
// reads it afterwards — Open, the consumer already attached, a consumer
// attached through Open, a producer taking over — reports an error or
// behaves, and never panics, reads out of bounds or loops without end.

// The ring every iteration starts from (see hostileFuzzRing): capacity
// 4096, data region at segment offset hostileFuzzData. Offsets below are
// in the data region.
const (
	hostileFuzzData = 4096 // dataOffset(1)
	hostileFuzzHead = 3584 // the consumer's head: the first unread record, 384 bytes
	hostileFuzzPad  = 3968 // a 128-byte padding frame to the end of the region
	// Then unread records at 0 and 384 (384 bytes each) and a 5-byte
	// message at 768. Older, already read 512-byte records remain from 1024
	// to 3584.
)

// hostileFuzzRing creates a ring in dir, makes it go through most of a lap
// and leaves four messages unread, the middle ones after a padding frame.
// With zeroFree the free space is zeroed, as an MPSC consumer leaves it,
// instead of holding the records of the previous lap. The producer is
// closed; it returns the ring, its consumer and the unread messages.
func hostileFuzzRing(t *testing.T, dir string, checksum, zeroFree bool) (*Ring, *Consumer, [][]byte) {
	t.Helper()
	r, err := Create("", Options{Dir: dir, Capacity: minCapacity, Checksum: checksum})
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Producer()
	if err != nil {
		r.Close()
		r.Unlink()
		t.Fatal(err)
	}
	c, err := r.Consumer()
	if err != nil {
		r.Close()
		r.Unlink()
		t.Fatal(err)
	}
	hl := codec.HeaderLen(r.geo.frameFlag)
	send := func(i, n int) []byte {
		msg := make([]byte, n)
		for k := range msg {
			msg[k] = byte(i*37 + k + 1)
		}
		if err := p.TrySend(msg); err != nil {
			t.Fatalf("TrySend %d: %v", i, err)
		}
		return msg
	}
	for i := range hostileFuzzHead / 512 {
		send(i, 512-hl)
		if _, err := c.TryRecv(); err != nil {
			t.Fatalf("TryRecv %d: %v", i, err)
		}
	}
	var unread [][]byte
	for i, n := range []int{384 - hl, 384 - hl, 384 - hl, 5} {
		unread = append(unread, send(100+i, n))
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if zeroFree {
		// From the end of the records to the head, a lap on.
		clear(r.lanes[0].data[int(le64(r.lanes[0].tail.Load())&r.geo.mask):hostileFuzzHead])
	}
	if h, pad := le64(r.lanes[0].head.Load()), codec.TypePadding; h != hostileFuzzHead ||
		binary.LittleEndian.Uint16(r.lanes[0].data[hostileFuzzPad+codec.OffType:]) != uint16(pad) {
		t.Fatalf("the base ring is not as its description says: head %d", h)
	}
	return r, c, unread
}

// hostileMutate applies muts to seg: a sequence of records
// [offset u16 LE][n u8][n bytes], offset taken modulo len(seg); bytes that
// would fall past the end of seg are dropped. It reports whether any byte
// changed.
func hostileMutate(seg, muts []byte) bool {
	changed := false
	for len(muts) >= 3 {
		off := int(binary.LittleEndian.Uint16(muts)) % len(seg)
		b := muts[3:][:min(int(muts[2]), len(muts)-3)]
		muts = muts[3+len(b):]
		src := b[:min(len(b), len(seg)-off)]
		if !bytes.Equal(seg[off:off+len(src)], src) {
			changed = true
			copy(seg[off:], src)
		}
	}
	return changed
}

// hostileFuzzMaxMuts bounds the mutation bytes an iteration uses. Small
// writes are what corrupt a ring; the bound keeps the fuzzer's input
// minimization (quadratic in the input's length, at a fraction of a
// millisecond an execution here) from stalling a run: it cuts the unused
// tail first.
const hostileFuzzMaxMuts = 96

// hostileMut encodes one mutation for hostileMutate.
func hostileMut(off int, b ...byte) []byte {
	return append([]byte{byte(off), byte(off >> 8), byte(len(b))}, b...)
}

func hostileMuts(ms ...[]byte) []byte { return bytes.Join(ms, nil) }

// hostileDrain receives from c, alternating TryRecv and TryPeek+Release as
// the bits of pattern say, until an error or capacity/8+4 messages. Every
// message must be at most maxMsg bytes; the error that ends the loop must
// be ErrEmpty or ErrCorrupt naming the position, and asking again must
// give the same. It returns copies of the messages and the final error.
func hostileDrain(t *testing.T, c *Consumer, pattern uint8, maxMsg int) ([][]byte, error) {
	t.Helper()
	var got [][]byte
	for i := range c.r.geo.capacity/8 + 4 {
		peek := pattern>>(i%8)&1 != 0
		var msg []byte
		var err error
		if peek {
			msg, err = c.TryPeek()
		} else {
			msg, err = c.TryRecv()
		}
		if err != nil {
			if msg != nil {
				t.Fatalf("receive %d returned %d bytes with %v", i, len(msg), err)
			}
			var want error
			switch {
			case errors.Is(err, ErrEmpty):
				want = ErrEmpty
			case errors.Is(err, ErrCorrupt):
				want = ErrCorrupt
				if !strings.Contains(err.Error(), "position") {
					t.Fatalf("receive %d: %q does not say the position", i, err)
				}
			default:
				t.Fatalf("receive %d: %v, want ErrEmpty or ErrCorrupt", i, err)
			}
			if _, again := c.TryRecv(); !errors.Is(again, want) {
				t.Fatalf("receive %d gave %v, asking again gave %v", i, err, again)
			}
			return got, err
		}
		if len(msg) > maxMsg {
			t.Fatalf("receive %d: %d bytes, the ring's maximum is %d", i, len(msg), maxMsg)
		}
		got = append(got, bytes.Clone(msg))
		if peek {
			if err := c.Release(); err != nil {
				t.Fatalf("Release %d: %v", i, err)
			}
		}
	}
	return got, nil
}

// hostileRingErrors are the errors a bad header may give.
var hostileRingErrors = []error{ErrForeign, ErrVersion, ErrTruncated, ErrNotReady, ErrCorrupt}

func hostileIsOneOf(err error, targets ...error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// hostileFuzzBase is a base ring kept for a whole fuzzing process: its
// creating handle, the bytes of its segment as hostileFuzzRing left them
// (the consumer attached), and the unread messages. Each iteration copies
// the bytes back and attaches afresh, which costs far less than creating a
// segment.
type hostileFuzzBase struct {
	r      *Ring
	snap   []byte
	unread [][]byte
}

func newHostileFuzzBase(t *testing.T, dir string, checksum, zeroFree bool) *hostileFuzzBase {
	t.Helper()
	r, c, unread := hostileFuzzRing(t, dir, checksum, zeroFree)
	snap := bytes.Clone(r.seg.Bytes())
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return &hostileFuzzBase{r: r, snap: snap, unread: unread}
}

// hostileSeed is one f.Add of FuzzCorruptRing.
type hostileSeed struct {
	checksum, zeroFree bool
	pattern            uint8
	muts               []byte
}

func FuzzCorruptRing(f *testing.F) {
	const D, H, P = hostileFuzzData, hostileFuzzData + hostileFuzzHead, hostileFuzzData + hostileFuzzPad
	u64 := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
	seeds := []hostileSeed{
		{false, false, 0x00, nil},
		{true, false, 0x55, nil},
		{false, false, 0xff, hostileMut(H, 0, 0, 0, 0)},                                 // zero length at the head
		{true, false, 0x00, hostileMut(H, 0xf0, 0xff, 0xff, 0xff)},                      // negative length
		{false, false, 0x0f, hostileMut(H, 0xff, 0xff, 0xff, 0x7f)},                     // huge length
		{true, false, 0x00, hostileMut(H, 0x08, 0x08, 0, 0)},                            // above the max frame
		{false, false, 0x00, hostileMut(H+4, 3, 0)},                                     // bad type
		{false, false, 0x00, hostileMut(H+6, 0, 0x80)},                                  // reserved flag
		{true, false, 0x00, hostileMut(H+6, 0, 0)},                                      // no checksum flag
		{true, false, 0x00, hostileMut(H+20, 0xaa)},                                     // payload changed
		{false, false, 0x02, hostileMut(D+4, 2, 0)},                                     // padding at offset 0
		{false, false, 0x00, hostileMut(P, 64, 0, 0, 0)},                                // padding short of the end
		{true, false, 0x00, hostileMut(P, 0, 0x0f, 0, 0)},                               // padding past the end
		{false, false, 0x00, hostileMut(P+4, 1, 0)},                                     // padding turned data
		{false, false, 0x00, hostileMut(D+768, 0, 0, 0, 0, 0, 0, 0, 0)},                 // last record erased
		{false, false, 0x00, hostileMut(D+784, 0x10, 0, 0, 0, 1, 0, 0, 0)},              // a record after the end
		{false, false, 0x00, hostileMut(offHead, 5, 0x0e, 0, 0, 0, 0, 0, 0)},            // unaligned head
		{true, false, 0x00, hostileMut(offHead, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4)},    // garbage head
		{false, false, 0x00, hostileMut(offHead, u64(0)...)},                            // head back at 0
		{false, false, 0x00, hostileMut(offTail, u64(^uint64(0))...)},                   // garbage tail
		{true, false, 0x00, hostileMut(offTail, u64(hostileFuzzHead+minCapacity+8)...)}, // tail a lap ahead
		{false, false, 0x00, hostileMut(offTail, u64(hostileFuzzHead)...)},              // tail behind the records
		{false, false, 0x00, hostileMut(offTail, u64(4893)...)},                         // unaligned tail
		{false, false, 0x00, hostileMut(offMagic, 'X')},                                 // bad magic
		{false, false, 0x00, hostileMut(offMagic, 0, 0, 0, 0, 0, 0, 0, 0)},              // no magic
		{true, false, 0x00, hostileMut(offVersion, 1)},                                  // layout version 1
		{false, false, 0x00, hostileMut(offFlags, flagChecksum)},                        // checksum flag added
		{true, false, 0x00, hostileMut(offFlags, 0)},                                    // checksum flag removed
		{false, false, 0x00, hostileMut(offFlags, flagMPSC)},                            // MPSC flag
		{false, false, 0x00, hostileMut(offMaxFrame, 16)},                               // small max frame
		{false, false, 0x00, hostileMut(offCapacity, 0, 0x20)},                          // capacity 8192
		{false, false, 0x00, hostileMut(offProdState, stateAttached)},                   // producer died
		{false, false, 0x00, hostileMut(offConsState, stateClosed)},                     // consumer closed
		{true, false, 0x33, hostileMuts(hostileMut(H, 0x10, 0, 0, 0), hostileMut(offTail, u64(1<<40)...))},
		{false, true, 0x00, nil},
		{false, true, 0x10, hostileMut(offTail, 0x15)}, // unaligned tail before free space: a send ran off the region
	}
	for _, s := range seeds {
		f.Add(s.checksum, s.zeroFree, s.pattern, s.muts)
	}
	if hostileFuzzData != dataOffset(1) {
		f.Fatalf("the seeds assume the data region at %d; it is at %d", hostileFuzzData, dataOffset(1))
	}
	dir := f.TempDir()
	var bases [2][2]*hostileFuzzBase // by checksum, zeroFree
	f.Cleanup(func() {
		for _, bs := range bases {
			for _, b := range bs {
				if b != nil {
					b.r.Close()
					b.r.Unlink()
				}
			}
		}
	})
	b2i := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	f.Fuzz(func(t *testing.T, checksum, zeroFree bool, pattern uint8, muts []byte) {
		watchdog := time.AfterFunc(10*time.Second, func() {
			panic("FuzzCorruptRing: an iteration ran for 10s: something loops or waits without bound")
		})
		defer watchdog.Stop()
		// What each stage saw, printed only if the iteration fails.
		var notes []string
		note := func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }
		defer func() {
			if t.Failed() {
				t.Log(strings.Join(notes, "\n"))
			}
		}()

		base := &bases[b2i(checksum)][b2i(zeroFree)]
		if *base == nil {
			*base = newHostileFuzzBase(t, dir, checksum, zeroFree)
		}
		name, unread := (*base).r.Name(), (*base).unread
		copy((*base).r.seg.Bytes(), (*base).snap)
		r, err := Open(name, AttachOptions{Dir: dir})
		if err != nil {
			t.Fatalf("Open of the base ring: %v", err)
		}
		defer r.Close()
		c, err := r.Consumer()
		if err != nil {
			t.Fatalf("Consumer of the base ring: %v", err)
		}
		changed := hostileMutate(r.seg.Bytes(), muts[:min(len(muts), hostileFuzzMaxMuts)])

		// (a) Open validates the header: success or a ring error.
		var r2 *Ring
		hostileNoPanic(t, "Open", func() {
			var err error
			r2, err = Open(name, AttachOptions{Dir: dir, Timeout: time.Microsecond})
			note("Open: %v", err)
			if err != nil {
				r2 = nil
				if !hostileIsOneOf(err, hostileRingErrors...) {
					t.Fatalf("Open: %v, want one of %v", err, hostileRingErrors)
				}
				if !strings.Contains(err.Error(), name) {
					t.Fatalf("Open: %q does not name the ring", err)
				}
				if !changed {
					t.Fatalf("Open of the unchanged ring: %v", err)
				}
			}
		})
		if r2 != nil {
			defer r2.Close()
		}

		// (b) The consumer attached before the damage.
		hostileNoPanic(t, "consumer", func() {
			got, err := hostileDrain(t, c, pattern, r.MaxMessage())
			note("consumer: %d messages, then %v", len(got), err)
			if !changed {
				if !errors.Is(err, ErrEmpty) || len(got) != len(unread) {
					t.Fatalf("unchanged ring: %d messages then %v, want %d then ErrEmpty", len(got), err, len(unread))
				}
				for i := range got {
					if !bytes.Equal(got[i], unread[i]) {
						t.Fatalf("unchanged ring: message %d differs", i)
					}
				}
			}
			if errors.Is(err, ErrEmpty) {
				// What a waiting consumer checks between polls.
				if err := c.peer(); err != nil && !hostileIsOneOf(err, io.EOF, ErrPeerDead, ErrCorrupt) {
					t.Fatalf("peer: %v", err)
				}
			}
		})

		// (b') A consumer attached through the damaged header, from the
		// damaged head.
		live := c
		if r2 != nil {
			hostileNoPanic(t, "consumer through Open", func() {
				if err := c.Close(); err != nil {
					t.Fatal(err)
				}
				c2, err := r2.Consumer()
				if err != nil {
					if !errors.Is(err, ErrCorrupt) || !changed {
						t.Fatalf("Consumer through Open: %v, want success or ErrCorrupt", err)
					}
					live = nil
					return
				}
				live = c2
				got, err := hostileDrain(t, c2, ^pattern, r2.MaxMessage())
				note("consumer through Open: %d messages, then %v", len(got), err)
				if !changed && (len(got) != 0 || !errors.Is(err, ErrEmpty)) {
					t.Fatalf("unchanged ring, consumer through Open: %d messages, then %v; want none, ErrEmpty", len(got), err)
				}
			})
		}

		// (c) A producer taking over the damaged ring, then the consumer
		// reading what it wrote.
		hostileNoPanic(t, "producer", func() {
			p, err := r.Producer()
			note("Producer: %v", err)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) || !changed {
					t.Fatalf("Producer: %v, want success or ErrCorrupt", err)
				}
				return
			}
			defer p.Close()
			sizes := [...]int{0, 1, 7, 8, 100, 383, 1000, 2000}
			for i := range 32 {
				n := min(sizes[(int(pattern)+i)%len(sizes)], p.MaxMessage())
				err := p.TrySend(make([]byte, n))
				if !changed && err != nil && !errors.Is(err, ErrFull) {
					t.Fatalf("unchanged ring: TrySend %d of %d bytes: %v", i, n, err)
				}
				switch {
				case err == nil, errors.Is(err, ErrFull):
				case errors.Is(err, ErrCorrupt), errors.Is(err, ErrClosed):
					return
				default:
					t.Fatalf("TrySend %d of %d bytes: %v", i, n, err)
				}
				if live != nil {
					msg, err := live.TryRecv()
					if err != nil && !hostileIsOneOf(err, ErrEmpty, ErrCorrupt) || !changed && (err != nil || len(msg) != n) {
						t.Fatalf("TryRecv after TrySend %d of %d bytes: %d bytes, %v", i, n, len(msg), err)
					}
				}
			}
		})
	})
}

// Lane 0's words, as the hostile tests address them.
const (
	offHead      = offLaneTable + offLaneHead
	offTail      = offLaneTable + offLaneTail
	offProdState = offLaneTable + offLaneState
)
