package ring

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringwire/ringwire/codec"
	"github.com/ringwire/ringwire/shm"
)

// Errors. They are wrapped with context (the ring's name, a position), so
// test for them with errors.Is.
var (
	// ErrForeign: the segment is not a ringwire ring (a Python
	// SharedMemory, a random file).
	ErrForeign = errors.New("ring: not a ringwire ring")
	// ErrVersion: the segment is a ring of another layout version.
	ErrVersion = errors.New("ring: unsupported layout version")
	// ErrTruncated: the segment is smaller than its header says.
	ErrTruncated = errors.New("ring: segment truncated")
	// ErrNotReady: the segment's header was still unpublished when the
	// attach timeout ran out: a ring still being created, or a zero-filled
	// segment that is not a ring at all.
	ErrNotReady = errors.New("ring: ring not initialised")
	// ErrCorrupt: the shared state breaks the layout's rules. The ring
	// cannot be trusted; the error says where.
	ErrCorrupt = errors.New("ring: corrupt ring")
	// ErrBusy: the role is taken by a live holder: the consumer, or every
	// producer lane.
	ErrBusy = errors.New("ring: role already taken")
	// ErrTooLarge: the message exceeds the ring's maximum; nothing was
	// written.
	ErrTooLarge = errors.New("ring: message too large")
	// ErrFull: TrySend or TryReserve found no room.
	ErrFull = errors.New("ring: ring full")
	// ErrEmpty: a Try receive found no message.
	ErrEmpty = errors.New("ring: ring empty")
	// ErrClosed: this handle was closed, or the consumer closed the ring
	// (returned to producers).
	ErrClosed = errors.New("ring: closed")
	// ErrPeerDead: the peer this side waits for died: its role lock was
	// dropped by the kernel without a clean close.
	ErrPeerDead = errors.New("ring: peer died")
	// ErrPending: a call out of order: Send or Reserve while a reservation
	// is open, Commit or Abort without one, a receive while a peeked
	// message or messages read ahead with Next are not released, Release
	// without a peeked message, ReleaseThrough of a message already
	// released or not yet read.
	ErrPending = errors.New("ring: call out of order")
	// ErrBadOptions: Create was given options it cannot honour.
	ErrBadOptions = errors.New("ring: bad options")
)

// Mode is a ring's producer discipline.
type Mode uint8

const (
	// SPSC: one producer, one consumer.
	SPSC Mode = iota
	// MPSC: any number of producers, one consumer.
	MPSC
)

func (m Mode) String() string {
	switch m {
	case SPSC:
		return "spsc"
	case MPSC:
		return "mpsc"
	}
	return fmt.Sprintf("Mode(%d)", m)
}

// Default geometry.
const (
	// DefaultCapacity is a lane's data region when Options.Capacity is 0.
	DefaultCapacity = 1 << 20
	// DefaultLanes is an MPSC ring's lane count when Options.Slots is 0:
	// with DefaultCapacity, 16 MiB, a quarter of Docker's default /dev/shm.
	DefaultLanes = 16
	// DefaultAttachTimeout bounds how long Open waits for a ring that is
	// still being created.
	DefaultAttachTimeout = time.Second
	// DefaultPeerCheck is how often a waiting side checks that its peer
	// is alive.
	DefaultPeerCheck = 50 * time.Millisecond
)

// Options configure Create. The zero value is a 1 MiB SPSC ring without
// checksums, in /dev/shm, mode 0600, with the Adaptive wait strategy.
type Options struct {
	// Capacity is each lane's data region in bytes. It is rounded up to a
	// power of two, and must lie in [4096, 2^40]. 0 means DefaultCapacity.
	Capacity int
	// MaxMessage is the largest payload accepted. 0 means the largest the
	// capacity allows: a frame may take at most half a lane.
	// A larger value is an error.
	MaxMessage int
	// Checksum makes every frame carry an xxhash64 checksum of its
	// payload, verified by the consumer.
	Checksum bool
	// Mode is SPSC or MPSC.
	Mode Mode
	// Slots is an MPSC ring's lane count: how many producers may be
	// attached at once, each with a lane of its own. 0 means DefaultLanes;
	// at most 1024. The segment holds Slots lanes of Capacity bytes each:
	// Slots*Capacity bytes of shared memory, all reserved by Create. SPSC
	// rings have one lane.
	Slots int
	// Perm is the segment's permission bits; 0 means 0600.
	Perm os.FileMode
	// Dir is the directory of segments; "" means /dev/shm.
	Dir string
	// Wait is this process's wait strategy for the handles it takes.
	Wait Wait
}

// AttachOptions configure Open. The ring's geometry comes from its header.
type AttachOptions struct {
	// Dir is the directory of segments; "" means /dev/shm.
	Dir string
	// Wait is this process's wait strategy for the handles it takes.
	Wait Wait
	// Timeout bounds the wait for a ring still being created; 0 means
	// DefaultAttachTimeout.
	Timeout time.Duration
	// ReadOnly maps the segment read-only, for inspection: such a Ring
	// gives Stats and Info but no roles.
	ReadOnly bool
}

// Ring is a handle on a ring in a shared-memory segment. Take the roles
// with Producer and Consumer. A Ring is safe for concurrent use.
//
// The mapping lives as long as any user of it: Close releases the handle's
// own reference, and every Producer, Consumer and running Stats or Info
// call holds one of its own, so the segment is unmapped only after the
// last call using it has returned.
type Ring struct {
	seg  *shm.Segment
	geo  geometry
	wait Wait

	// Fixed control words, resolved once.
	consSeq, consParked, consState, consPID *atomic.Uint32
	recvMsgs, recvBytes                     *atomic.Uint64
	ready                                   []atomic.Uint64 // readyWords words
	lanes                                   []lane

	refs atomic.Int64 // users of the mapping: the open handle, roles, calls

	mu      sync.Mutex
	closed  bool
	locks   []*shm.Lock // owner and attached locks of this handle
	handles []io.Closer // Producers and Consumers taken from this handle
}

// geometry is the validated header.
type geometry struct {
	mode      Mode
	checksum  bool
	capacity  int // per lane
	mask      uint64
	dataOff   int
	segSize   int
	maxFrame  int
	lanes     int
	created   time.Time
	creator   uint32
	instance  uint64
	frameFlag codec.Flags
}

// maxPayload is the largest message the geometry carries.
func (g *geometry) maxPayload() int { return g.maxFrame - codec.HeaderLen(g.frameFlag) }

// Name returns the segment's name.
func (r *Ring) Name() string { return r.seg.Name() }

// Mode returns SPSC or MPSC.
func (r *Ring) Mode() Mode { return r.geo.mode }

// Capacity returns a lane's data region in bytes.
func (r *Ring) Capacity() int { return r.geo.capacity }

// Lanes returns the number of lanes: 1 for SPSC, the most producers that
// may be attached at once for MPSC.
func (r *Ring) Lanes() int { return r.geo.lanes }

// Instance returns the ring's instance id, chosen at random by Create. It
// is part of every message's identity (see Position).
func (r *Ring) Instance() uint64 { return r.geo.instance }

// MaxMessage returns the largest payload the ring accepts.
func (r *Ring) MaxMessage() int { return r.geo.maxPayload() }

// Checksum reports whether frames carry checksums.
func (r *Ring) Checksum() bool { return r.geo.checksum }

// Owner reports whether this handle created the ring.
func (r *Ring) Owner() bool { return r.seg.Owner() }

// acquire takes a reference on the mapping, or reports false once the
// last one was released.
func (r *Ring) acquire() bool {
	for {
		n := r.refs.Load()
		if n <= 0 {
			return false
		}
		if r.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a reference; the last one unmaps the segment.
func (r *Ring) release() error {
	if r.refs.Add(-1) == 0 {
		return r.seg.Close()
	}
	return nil
}

// Close releases this handle: it closes the Producers and Consumers taken
// from it (a call blocked in one of them returns ErrClosed), drops the
// handle's locks, and unmaps the segment once no call is using it. It may
// be called from any goroutine. It never removes the segment. Calling it
// again returns nil.
func (r *Ring) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	locks, handles := r.locks, r.handles
	r.locks, r.handles = nil, nil
	r.mu.Unlock()
	// Consumers first: a receive blocked in one must see its own handle
	// closed (ErrClosed) before it could see the producers' close as the
	// end of the stream.
	slices.SortStableFunc(handles, func(a, b io.Closer) int {
		_, ac := a.(*Consumer)
		_, bc := b.(*Consumer)
		return boolInt(bc) - boolInt(ac)
	})
	var errs []error
	for _, h := range handles {
		errs = append(errs, h.Close())
	}
	for _, l := range locks {
		errs = append(errs, l.Unlock())
	}
	errs = append(errs, r.release())
	return errors.Join(errs...)
}

// forget removes a closed role handle from the list Close closes.
func (r *Ring) forget(h io.Closer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, x := range r.handles {
		if x == h {
			r.handles = append(r.handles[:i], r.handles[i+1:]...)
			return
		}
	}
}

// Unlink removes the ring's name (see shm.Segment.Unlink): only the owner,
// or a tool that proved the owner dead, should. Processes attached keep
// using the ring until they close it.
func (r *Ring) Unlink() error { return r.seg.Unlink() }

// errorf wraps err with the ring's name.
func (r *Ring) errorf(format string, args ...any) error {
	return fmt.Errorf("ring %q: "+format, append([]any{r.seg.Name()}, args...)...)
}

// corrupt reports a broken rule at a position of a lane.
func (r *Ring) corrupt(lane int, pos uint64, format string, args ...any) error {
	return fmt.Errorf("ring %q: lane %d: position %d: "+format+": %w",
		append(append([]any{r.seg.Name(), lane, pos}, args...), ErrCorrupt)...)
}

// Stats are a ring's counters, read from the segment, summed over its
// lanes. Each side adds to them every 256 messages and whenever it waits
// or closes, so they lag the live traffic by at most that much per side.
type Stats struct {
	Received      uint64 // messages the consumer took
	ReceivedBytes uint64 // their payload bytes
	Sent          uint64 // messages producers committed
	SentBytes     uint64 // their payload bytes
	Full          uint64 // times a producer found its lane full
	// Head and Tail are the cursors, summed over the lanes: Tail-Head
	// bytes are in flight, give or take what producers have not yet
	// published (see LaneInfo).
	Head, Tail uint64
}

// Stats reads the ring's counters and cursors. It takes no role and
// changes nothing, so an inspection tool may call it on a read-only
// handle. After Close it returns the zero Stats.
func (r *Ring) Stats() Stats {
	if !r.acquire() {
		return Stats{}
	}
	defer r.release()
	s := Stats{Received: le64(r.recvMsgs.Load()), ReceivedBytes: le64(r.recvBytes.Load())}
	for i := range r.lanes {
		l := &r.lanes[i]
		s.Sent += le64(l.sentMsgs.Load())
		s.SentBytes += le64(l.sentBytes.Load())
		s.Full += le64(l.full.Load())
		s.Head += le64(l.head.Load())
		s.Tail += le64(l.tail.Load())
	}
	return s
}

// instanceID returns a random non-zero id.
func instanceID() uint64 {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic(err) // crypto/rand never fails on supported systems
		}
		if v := binary.LittleEndian.Uint64(b[:]); v != 0 {
			return v
		}
	}
}

// ceilPow2 rounds n up to a power of two, at least minCapacity.
func ceilPow2(n int) int { return max(minCapacity, 1<<bits.Len(uint(n-1))) }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
