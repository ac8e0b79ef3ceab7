package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
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
	// ErrBusy: the role (the consumer, or the SPSC producer) is taken by a
	// live holder.
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
	// ErrSkipped: the consumer gave up on this MPSC record because its
	// producer stalled past the unblock timeout; the message was not
	// delivered, and nothing was corrupted.
	ErrSkipped = errors.New("ring: record skipped by the consumer")
	// ErrPending: Reserve while a reservation is open, Commit without one,
	// or Peek while a peeked message is not released.
	ErrPending = errors.New("ring: reservation state")
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
	DefaultCapacity = 1 << 20
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
	// Capacity is the data region's size in bytes. It is rounded up to a
	// power of two, and must lie in [4096, 2^40]. 0 means DefaultCapacity.
	Capacity int
	// MaxMessage is the largest payload accepted. 0 means the largest the
	// capacity allows: a frame may take at most half the data region.
	// A larger value is an error.
	MaxMessage int
	// Checksum makes every frame carry an xxhash64 checksum of its
	// payload, verified by the consumer.
	Checksum bool
	// Mode is SPSC or MPSC.
	Mode Mode
	// Slots is the MPSC producer table's size: how many producers may be
	// attached at once. 0 means 64. SPSC rings have one.
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
type Ring struct {
	seg  *shm.Segment
	geo  geometry
	wait Wait

	// Fixed control words, resolved once.
	head, tail                      *atomic.Uint64
	consSeq, consParked, consState  *atomic.Uint32
	prodSeq, prodWaiters, prodState *atomic.Uint32
	stats                           [6]*atomic.Uint64 // recv msgs, bytes, skipped, sent msgs, bytes, full

	slots []slotWords // the producer slot table

	data  []byte          // the data region, exactly capacity bytes
	words []atomic.Uint32 // data viewed as 32-bit words, for length words

	mu      sync.Mutex
	closed  bool
	locks   []*shm.Lock // owner and attached locks of this handle
	handles []io.Closer // Producers and Consumers taken from this handle
}

// slotWords are the fields of one producer slot.
type slotWords struct {
	state, pid *atomic.Uint32
	claim      *atomic.Uint64
	length     *atomic.Uint32
}

// covers reports whether the slot's claim, read now, covers position pos,
// and returns the claim's start and end. The claim is read again after its length,
// so a producer moving on to its next claim is not mistaken for this one.
func (s *slotWords) covers(pos uint64) (start, end uint64, ok bool) {
	start = le64(s.claim.Load())
	n := uint64(le32(s.length.Load()))
	if start == noClaim || n == 0 || start > pos || pos-start >= n || le64(s.claim.Load()) != start {
		return 0, 0, false
	}
	return start, start + n, true
}

// geometry is the validated header.
type geometry struct {
	mode      Mode
	checksum  bool
	capacity  int
	mask      uint64
	dataOff   int
	segSize   int
	maxFrame  int
	slots     int
	created   time.Time
	creator   uint32
	frameFlag codec.Flags
}

// maxPayload is the largest message the geometry carries.
func (g *geometry) maxPayload() int { return g.maxFrame - codec.HeaderLen(g.frameFlag) }

// Create makes a ring in a new segment called name ("" for a unique name)
// and attaches to it. The segment's pages are reserved first, so a full
// /dev/shm is an error here (wrapping syscall.ENOSPC), never a SIGBUS
// later. The header is published last: a process that opens the ring
// before Create returns waits for it or gets ErrNotReady, never a
// half-built ring.
//
// The returned Ring is the segment's owner. Close leaves the segment in
// place; Unlink removes it.
func Create(name string, o Options) (*Ring, error) {
	g, err := o.geometry()
	if err != nil {
		return nil, fmt.Errorf("ring: create %q: %w", name, err)
	}
	var opts []shm.Option
	if o.Dir != "" {
		opts = append(opts, shm.Dir(o.Dir))
	}
	perm := o.Perm
	if perm == 0 {
		perm = 0o600
	}
	seg, err := shm.Create(name, g.segSize, append(opts, shm.Mode(perm))...)
	if err != nil {
		return nil, fmt.Errorf("ring: create: %w", err)
	}
	// Take the owner lock before the header is published, so that no
	// observer ever sees a published ring without a live owner's lock.
	owner, err := seg.TryRLock(lockOwner, 1)
	if err != nil {
		seg.Close()
		seg.Unlink()
		return nil, fmt.Errorf("ring: create %q: %w", seg.Name(), err)
	}
	b := seg.Bytes()
	le := binary.LittleEndian
	le.PutUint32(b[offVersion:], layoutVersion)
	var flags uint32
	if g.mode == MPSC {
		flags |= flagMPSC
	}
	if g.checksum {
		flags |= flagChecksum
	}
	le.PutUint32(b[offFlags:], flags)
	le.PutUint64(b[offCapacity:], uint64(g.capacity))
	le.PutUint64(b[offDataOff:], uint64(g.dataOff))
	le.PutUint64(b[offSegSize:], uint64(g.segSize))
	le.PutUint32(b[offMaxFrame:], uint32(g.maxFrame))
	le.PutUint32(b[offSlots:], uint32(g.slots))
	le.PutUint64(b[offCreated:], uint64(time.Now().UnixNano()))
	le.PutUint32(b[offCreator:], uint32(os.Getpid()))
	// Publish: magic last, with an atomic store that orders every write
	// above before it.
	r, err := attach(seg, g, o.Wait)
	if err != nil {
		owner.Unlock()
		seg.Close()
		seg.Unlink()
		return nil, fmt.Errorf("ring: create %q: %w", seg.Name(), err)
	}
	r.locks = append(r.locks, owner)
	magicWord(b).Store(le64(magic))
	return r, nil
}

// geometry checks Options and computes the layout they ask for.
func (o Options) geometry() (geometry, error) {
	g := geometry{mode: o.Mode, checksum: o.Checksum}
	capacity := o.Capacity
	if capacity == 0 {
		capacity = DefaultCapacity
	}
	if capacity < 0 || capacity > maxCapacity {
		return g, fmt.Errorf("capacity %d outside [%d, %d]: %w", o.Capacity, minCapacity, maxCapacity, ErrBadOptions)
	}
	capacity = max(minCapacity, 1<<bits.Len(uint(capacity-1)))
	g.capacity, g.mask = capacity, uint64(capacity-1)
	switch o.Mode {
	case SPSC:
		if o.Slots > 1 {
			return g, fmt.Errorf("SPSC ring with %d producer slots: %w", o.Slots, ErrBadOptions)
		}
		g.slots = 1
	case MPSC:
		g.slots = o.Slots
		if g.slots == 0 {
			g.slots = 64
		}
		if g.slots < 1 || g.slots > maxSlots {
			return g, fmt.Errorf("%d producer slots outside [1, %d]: %w", o.Slots, maxSlots, ErrBadOptions)
		}
	default:
		return g, fmt.Errorf("%v: %w", o.Mode, ErrBadOptions)
	}
	if o.Checksum {
		g.frameFlag = codec.FlagChecksum
	}
	// Largest frame: half the data region, and no more than a frame's
	// int32 length word holds, down to a multiple of 8.
	limit := min(capacity/2, codec.MaxLength&^(codec.Align-1))
	switch {
	case o.MaxMessage < 0:
		return g, fmt.Errorf("max message %d: %w", o.MaxMessage, ErrBadOptions)
	case o.MaxMessage == 0:
		g.maxFrame = limit
	case o.MaxMessage > limit || codec.FrameSize(o.MaxMessage, g.frameFlag) > limit:
		return g, fmt.Errorf("max message %d needs a capacity of at least %d: %w",
			o.MaxMessage, 2*codec.FrameSize(o.MaxMessage, g.frameFlag), ErrBadOptions)
	default:
		g.maxFrame = codec.HeaderLen(g.frameFlag) + o.MaxMessage
	}
	g.dataOff = dataOffset(g.slots)
	g.segSize = g.dataOff + capacity
	return g, nil
}

// Open attaches to the ring called name. It validates the header before it
// trusts anything in the segment: magic (ErrForeign), layout version
// (ErrVersion), size against the geometry (ErrTruncated), and the geometry
// itself (ErrCorrupt). A ring still being created is waited for up to
// AttachOptions.Timeout (ErrNotReady). A missing name gives an error
// satisfying errors.Is(err, fs.ErrNotExist).
//
// Open never changes the segment: attaching neither resets nor repairs.
func Open(name string, o AttachOptions) (*Ring, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultAttachTimeout
	}
	var opts []shm.Option
	if o.Dir != "" {
		opts = append(opts, shm.Dir(o.Dir))
	}
	if o.ReadOnly {
		opts = append(opts, shm.ReadOnly())
	}
	deadline := time.Now().Add(timeout)
	for pause := 50 * time.Microsecond; ; pause = min(2*pause, 10*time.Millisecond) {
		seg, g, err := openOnce(name, opts)
		if err == nil {
			r, err := attach(seg, g, o.Wait)
			if err != nil {
				seg.Close()
				return nil, fmt.Errorf("ring: open %q: %w", name, err)
			}
			return r, nil
		}
		if errors.Is(err, ErrNotReady) && time.Now().After(deadline) {
			return nil, fmt.Errorf("ring: open %q: %w", name, notReadyOrForeign(name, opts, err))
		}
		if !errors.Is(err, ErrNotReady) {
			return nil, fmt.Errorf("ring: open %q: %w", name, err)
		}
		time.Sleep(pause)
	}
}

// notReadyOrForeign is the verdict on a header still unpublished when the
// attach timeout ran out: a header with nothing in it, or with only what
// Create writes first, is a ring not ready; anything else is foreign.
func notReadyOrForeign(name string, opts []shm.Option, err error) error {
	seg, oerr := shm.Open(name, append(opts, shm.ReadOnly())...)
	if oerr != nil {
		return err
	}
	defer seg.Close()
	b := seg.Bytes()
	if len(b) < headerFields {
		return err
	}
	// Before publishing, Create has written header fields only: the
	// control blocks after them are still zero.
	v := binary.LittleEndian.Uint32(b[offVersion:])
	if (v == layoutVersion || allZero(b[:headerFields])) && allZero(b[headerFields:min(len(b), offSlotTable)]) {
		return err
	}
	return fmt.Errorf("magic 0 and header bytes that Create would not write: %w", ErrForeign)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// openOnce maps the segment and validates its header.
func openOnce(name string, opts []shm.Option) (*shm.Segment, geometry, error) {
	seg, err := shm.Open(name, opts...)
	if errors.Is(err, shm.ErrEmpty) {
		// Create makes the file, then sizes it: an empty file may be a ring
		// an instant from being sized.
		return nil, geometry{}, fmt.Errorf("empty segment: %w", ErrNotReady)
	}
	if err != nil {
		return nil, geometry{}, err
	}
	g, err := validate(seg.Bytes())
	if err != nil {
		seg.Close()
		return nil, g, err
	}
	return seg, g, nil
}

// validate checks a segment's header against the layout's rules and
// returns its geometry. It reads the header once, after an atomic load of
// the magic that acquires everything Create wrote before publishing it.
func validate(b []byte) (geometry, error) {
	var g geometry
	if len(b) < 8 {
		return g, fmt.Errorf("%d bytes, too small for a ring header: %w", len(b), ErrForeign)
	}
	m := le64(magicWord(b).Load())
	switch {
	case m == 0 && len(b) >= headerFields:
		// Create writes the magic last: until then the ring is being
		// built, unless the header already shows a foreign hand.
		if v := binary.LittleEndian.Uint32(b[offVersion:]); v != 0 && v != layoutVersion {
			return g, fmt.Errorf("magic 0, version word %#x: %w", v, ErrForeign)
		}
		if !allZero(b[headerFields:min(len(b), offSlotTable)]) {
			// Create writes only header fields before it publishes.
			return g, fmt.Errorf("magic 0 with data in the control blocks: %w", ErrForeign)
		}
		return g, fmt.Errorf("header not published: %w", ErrNotReady)
	case m == 0:
		return g, fmt.Errorf("header not published: %w", ErrNotReady)
	case m != magic:
		return g, fmt.Errorf("magic %#016x: %w", m, ErrForeign)
	case len(b) < offSlotTable:
		return g, fmt.Errorf("%d bytes, less than the %d-byte header: %w", len(b), offSlotTable, ErrTruncated)
	}
	le := binary.LittleEndian
	if v := le.Uint32(b[offVersion:]); v != layoutVersion {
		return g, fmt.Errorf("layout version %d, this build reads %d: %w", v, layoutVersion, ErrVersion)
	}
	flags := le.Uint32(b[offFlags:])
	capacity := le.Uint64(b[offCapacity:])
	dataOff := le.Uint64(b[offDataOff:])
	segSize := le.Uint64(b[offSegSize:])
	maxFrame := le.Uint32(b[offMaxFrame:])
	slots := le.Uint32(b[offSlots:])
	bad := func(format string, args ...any) (geometry, error) {
		return g, fmt.Errorf("header: "+format+": %w", append(args, ErrCorrupt)...)
	}
	switch {
	case flags&^knownFlags != 0:
		return bad("unknown flags %#x", flags)
	case capacity < minCapacity || capacity > maxCapacity || capacity&(capacity-1) != 0:
		return bad("capacity %d is not a power of two in [%d, %d]", capacity, minCapacity, maxCapacity)
	case slots < 1 || slots > maxSlots || (flags&flagMPSC == 0 && slots != 1):
		return bad("%d producer slots", slots)
	case dataOff != uint64(dataOffset(int(slots))):
		return bad("data offset %d, want %d for %d slots", dataOff, dataOffset(int(slots)), slots)
	case segSize != dataOff+capacity:
		return bad("segment size %d, want %d", segSize, dataOff+capacity)
	}
	g.checksum = flags&flagChecksum != 0
	if g.checksum {
		g.frameFlag = codec.FlagChecksum
	}
	if int(maxFrame) < codec.HeaderLen(g.frameFlag) || uint64(maxFrame) > capacity/2 {
		return bad("max frame %d outside [%d, %d]", maxFrame, codec.HeaderLen(g.frameFlag), capacity/2)
	}
	if uint64(len(b)) < segSize {
		return g, fmt.Errorf("%d bytes, header says %d: %w", len(b), segSize, ErrTruncated)
	}
	g.mode = SPSC
	if flags&flagMPSC != 0 {
		g.mode = MPSC
	}
	g.capacity, g.mask = int(capacity), capacity-1
	g.dataOff, g.segSize = int(dataOff), int(segSize)
	g.maxFrame, g.slots = int(maxFrame), int(slots)
	g.created = time.Unix(0, int64(le.Uint64(b[offCreated:])))
	g.creator = le.Uint32(b[offCreator:])
	return g, nil
}

// attach resolves the control words of a validated segment.
func attach(seg *shm.Segment, g geometry, w Wait) (*Ring, error) {
	b := seg.Bytes()
	r := &Ring{seg: seg, geo: g, wait: w.withDefaults()}
	var err error
	u64 := func(off int) *atomic.Uint64 {
		p, e := shm.Ptr[atomic.Uint64](b, off)
		err = errors.Join(err, e)
		return p
	}
	u32 := func(off int) *atomic.Uint32 {
		p, e := shm.Ptr[atomic.Uint32](b, off)
		err = errors.Join(err, e)
		return p
	}
	r.head, r.tail = u64(offHead), u64(offTail)
	r.consSeq, r.consParked, r.consState = u32(offConsSeq), u32(offConsParked), u32(offConsState)
	r.prodSeq, r.prodWaiters, r.prodState = u32(offProdSeq), u32(offProdWaiters), u32(offProdState)
	for i, off := range [...]int{offStatRecvMsgs, offStatRecvBytes, offStatSkipped, offStatSentMsgs, offStatSentBytes, offStatFull} {
		r.stats[i] = u64(off)
	}
	r.slots = make([]slotWords, g.slots)
	for i := range r.slots {
		base := offSlotTable + i*slotSize
		r.slots[i] = slotWords{state: u32(base + offSlotState), pid: u32(base + offSlotPID),
			claim: u64(base + offSlotClaim), length: u32(base + offSlotLen)}
	}
	if err != nil {
		return nil, err
	}
	r.data = b[g.dataOff : g.dataOff+g.capacity : g.dataOff+g.capacity]
	r.words, err = shm.View[atomic.Uint32](r.data, 0, g.capacity/4)
	if err != nil {
		return nil, err
	}
	if !seg.ReadOnly() {
		l, err := seg.TryRLock(lockAttached, 1)
		if err != nil {
			return nil, err
		}
		r.locks = append(r.locks, l)
	}
	return r, nil
}

// magicWord is the header's magic as an atomic word: Create publishes the
// ring by storing it last.
func magicWord(b []byte) *atomic.Uint64 {
	p, err := shm.Ptr[atomic.Uint64](b, offMagic)
	if err != nil {
		panic(err) // a mapping is page-aligned and at least 8 bytes: unreachable
	}
	return p
}

// Name returns the segment's name.
func (r *Ring) Name() string { return r.seg.Name() }

// Mode returns SPSC or MPSC.
func (r *Ring) Mode() Mode { return r.geo.mode }

// Capacity returns the data region's size in bytes.
func (r *Ring) Capacity() int { return r.geo.capacity }

// MaxMessage returns the largest payload the ring accepts.
func (r *Ring) MaxMessage() int { return r.geo.maxPayload() }

// Checksum reports whether frames carry checksums.
func (r *Ring) Checksum() bool { return r.geo.checksum }

// Owner reports whether this handle created the ring.
func (r *Ring) Owner() bool { return r.seg.Owner() }

// Close releases this handle: it closes the Producer and Consumer taken
// from it that are still open, unmaps the segment and drops its locks. It
// never removes the segment. Calling it again returns nil.
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
	var errs []error
	for _, h := range handles {
		errs = append(errs, h.Close())
	}
	for _, l := range locks {
		errs = append(errs, l.Unlock())
	}
	errs = append(errs, r.seg.Close())
	return errors.Join(errs...)
}

// Unlink removes the ring's name (see shm.Segment.Unlink): only the owner,
// or a tool that proved the owner dead, should. Processes attached keep
// using the ring until they close it.
func (r *Ring) Unlink() error { return r.seg.Unlink() }

// errorf wraps err with the ring's name.
func (r *Ring) errorf(format string, args ...any) error {
	return fmt.Errorf("ring %q: "+format, append([]any{r.seg.Name()}, args...)...)
}

// corrupt reports a broken rule at a position.
func (r *Ring) corrupt(pos uint64, format string, args ...any) error {
	return fmt.Errorf("ring %q: position %d: "+format+": %w", append(append([]any{r.seg.Name(), pos}, args...), ErrCorrupt)...)
}

// Stats are a ring's counters, read from its header. Each side adds to
// them every 256 messages and whenever it waits or closes, so they lag the
// live traffic by at most that much.
type Stats struct {
	Received      uint64 // messages the consumer took
	ReceivedBytes uint64 // their payload bytes
	Skipped       uint64 // records the consumer skipped (MPSC recovery)
	Sent          uint64 // messages producers committed
	SentBytes     uint64 // their payload bytes
	Full          uint64 // times a producer found the ring full
	Head, Tail    uint64 // the cursors: Tail-Head bytes are in flight
}

// Stats reads the ring's counters and cursors. It takes no role and
// changes nothing, so an inspection tool may call it on a read-only handle.
func (r *Ring) Stats() Stats {
	var v [6]uint64
	for i, w := range r.stats {
		v[i] = le64(w.Load())
	}
	return Stats{Received: v[0], ReceivedBytes: v[1], Skipped: v[2], Sent: v[3], SentBytes: v[4], Full: v[5],
		Head: le64(r.head.Load()), Tail: le64(r.tail.Load())}
}
