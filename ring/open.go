package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/ringwire/ringwire/codec"
	"github.com/ringwire/ringwire/shm"
)

// Create makes a ring in a new segment called name ("" for a unique name)
// and attaches to it. The segment's pages are reserved first, every lane's
// included, so a full /dev/shm is an error here (wrapping syscall.ENOSPC),
// never a SIGBUS later. The header is published last: a process that opens
// the ring before Create returns waits for it or gets ErrNotReady, never a
// half-built ring.
//
// The segment holds the control blocks and Slots lanes (1 for SPSC) of
// Capacity bytes each, so it takes a little more than Slots*Capacity bytes
// of /dev/shm.
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
	g.instance = instanceID()
	g.created = time.Now()
	g.creator = uint32(os.Getpid())
	le.PutUint32(b[offFlags:], flags)
	le.PutUint64(b[offCapacity:], uint64(g.capacity))
	le.PutUint64(b[offDataOff:], uint64(g.dataOff))
	le.PutUint64(b[offSegSize:], uint64(g.segSize))
	le.PutUint32(b[offMaxFrame:], uint32(g.maxFrame))
	le.PutUint32(b[offLanes:], uint32(g.lanes))
	le.PutUint64(b[offCreated:], uint64(g.created.UnixNano()))
	le.PutUint32(b[offCreator:], g.creator)
	le.PutUint64(b[offInstance:], g.instance)
	r, err := attach(seg, g, o.Wait)
	if err != nil {
		owner.Unlock()
		seg.Close()
		seg.Unlink()
		return nil, fmt.Errorf("ring: create %q: %w", seg.Name(), err)
	}
	r.locks = append(r.locks, owner)
	// Publish: magic last, with an atomic store that orders every write
	// above before it.
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
	capacity = ceilPow2(capacity)
	g.capacity, g.mask = capacity, uint64(capacity-1)
	switch o.Mode {
	case SPSC:
		if o.Slots > 1 {
			return g, fmt.Errorf("SPSC ring with %d lanes: %w", o.Slots, ErrBadOptions)
		}
		g.lanes = 1
	case MPSC:
		g.lanes = o.Slots
		if g.lanes == 0 {
			g.lanes = DefaultLanes
		}
		if g.lanes < 1 || g.lanes > maxLanes {
			return g, fmt.Errorf("%d lanes outside [1, %d]: %w", o.Slots, maxLanes, ErrBadOptions)
		}
	default:
		return g, fmt.Errorf("%v: %w", o.Mode, ErrBadOptions)
	}
	if uint64(g.lanes)*uint64(capacity) > maxCapacity {
		return g, fmt.Errorf("%d lanes of %d bytes exceed %d bytes: %w", g.lanes, capacity, uint64(maxCapacity), ErrBadOptions)
	}
	if o.Checksum {
		g.frameFlag = codec.FlagChecksum
	}
	// Largest frame: half a lane, and no more than a frame's int32 length
	// word holds, down to a multiple of 8.
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
	g.dataOff = dataOffset(g.lanes)
	g.segSize = g.dataOff + g.lanes*capacity
	return g, nil
}

// Open attaches to the ring called name. It validates the header before it
// trusts anything in the segment: magic (ErrForeign), layout version
// (ErrVersion), size against the geometry (ErrTruncated), and the geometry
// itself (ErrCorrupt). A ring still being created is waited for up to
// AttachOptions.Timeout (ErrNotReady). A missing name gives an error
// satisfying errors.Is(err, fs.ErrNotExist); a name that is not a regular
// file (a socket, a FIFO, a directory) gives shm.ErrNotSegment.
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
	if (v == layoutVersion || allZero(b[:headerFields])) && allZero(b[headerFields:min(len(b), offLaneTable)]) {
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
// returns its geometry. It reads each header field once, after an atomic
// load of the magic that acquires everything Create wrote before
// publishing it.
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
		if !allZero(b[headerFields:min(len(b), offLaneTable)]) {
			// Create writes only header fields before it publishes.
			return g, fmt.Errorf("magic 0 with data in the control blocks: %w", ErrForeign)
		}
		return g, fmt.Errorf("header not published: %w", ErrNotReady)
	case m == 0:
		return g, fmt.Errorf("header not published: %w", ErrNotReady)
	case m != magic:
		return g, fmt.Errorf("magic %#016x: %w", m, ErrForeign)
	case len(b) < offLaneTable:
		return g, fmt.Errorf("%d bytes, less than the %d-byte header: %w", len(b), offLaneTable, ErrTruncated)
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
	lanes := le.Uint32(b[offLanes:])
	bad := func(format string, args ...any) (geometry, error) {
		return g, fmt.Errorf("header: "+format+": %w", append(args, ErrCorrupt)...)
	}
	switch {
	case flags&^knownFlags != 0:
		return bad("unknown flags %#x", flags)
	case capacity < minCapacity || capacity > maxCapacity || capacity&(capacity-1) != 0:
		return bad("capacity %d is not a power of two in [%d, %d]", capacity, minCapacity, maxCapacity)
	case lanes < 1 || lanes > maxLanes || (flags&flagMPSC == 0 && lanes != 1):
		return bad("%d lanes", lanes)
	case uint64(lanes)*capacity > maxCapacity:
		return bad("%d lanes of %d bytes", lanes, capacity)
	case dataOff != uint64(dataOffset(int(lanes))):
		return bad("data offset %d, want %d for %d lanes", dataOff, dataOffset(int(lanes)), lanes)
	case segSize != dataOff+uint64(lanes)*capacity:
		return bad("segment size %d, want %d", segSize, dataOff+uint64(lanes)*capacity)
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
	g.maxFrame, g.lanes = int(maxFrame), int(lanes)
	g.created = time.Unix(0, int64(le.Uint64(b[offCreated:])))
	g.creator = le.Uint32(b[offCreator:])
	g.instance = le.Uint64(b[offInstance:])
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
	r.consSeq, r.consParked, r.consState, r.consPID = u32(offConsSeq), u32(offConsParked), u32(offConsState), u32(offConsPID)
	r.recvMsgs, r.recvBytes = u64(offStatRecvMsgs), u64(offStatRecvBytes)
	ready, e := shm.View[atomic.Uint64](b, offReady, readyWords)
	err = errors.Join(err, e)
	r.ready = ready
	r.lanes = make([]lane, g.lanes)
	for i := range r.lanes {
		base := laneBase(i)
		l := &r.lanes[i]
		l.idx = i
		l.tail, l.state, l.pid = u64(base+offLaneTail), u32(base+offLaneState), u32(base+offLanePID)
		l.sentMsgs, l.sentBytes, l.full = u64(base+offLaneSentMsgs), u64(base+offLaneSentBytes), u64(base+offLaneFull)
		l.signal = u32(base + offLaneSignal)
		l.head, l.seq, l.waiting = u64(base+offLaneHead), u32(base+offLaneSeq), u32(base+offLaneWaiting)
		start := g.dataOff + i*g.capacity
		l.data = b[start : start+g.capacity : start+g.capacity]
		words, e := shm.View[atomic.Uint32](l.data, 0, g.capacity/4)
		err = errors.Join(err, e)
		l.words = words
	}
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
	r.refs.Store(1)
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
