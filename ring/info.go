package ring

import (
	"fmt"
	"sync/atomic"
	"time"
)

// RoleState is what a ring's header and locks say of a role.
type RoleState uint8

const (
	// RoleNone: never taken.
	RoleNone RoleState = iota
	// RoleAlive: taken, and its holder's lock is held: the holder is alive.
	RoleAlive
	// RoleClosed: its last holder gave it up cleanly.
	RoleClosed
	// RoleDead: taken, but nobody holds its lock: the holder died.
	RoleDead
)

func (s RoleState) String() string {
	if s <= RoleDead {
		return [...]string{"none", "alive", "closed", "dead"}[s]
	}
	return fmt.Sprintf("RoleState(%d)", uint8(s))
}

// Info describes a ring for inspection: geometry, who is attached and
// alive, each lane's fill and counters. Reading it takes no role and
// changes nothing.
type Info struct {
	Name        string
	Mode        Mode
	Capacity    int // per lane
	MaxMessage  int
	Checksum    bool
	SegmentSize int
	Created     time.Time
	CreatorPID  uint32 // informational: a PID is no proof of life
	Instance    uint64
	// OwnerAlive: the creating handle is still open in a live process.
	OwnerAlive bool
	// Attached: some live process has the ring open (other than through a
	// read-only handle).
	Attached    bool
	Consumer    RoleState
	ConsumerPID uint32 // informational
	// Lanes holds every lane that was ever taken by a producer (the one
	// lane of an SPSC ring always).
	Lanes []LaneInfo
	Stats Stats
}

// LaneInfo is one lane.
type LaneInfo struct {
	Lane  int
	State RoleState // its producer's
	PID   uint32    // informational
	// Head is the consumer's released position; Tail the producer's
	// published one, which lags its commits by up to 256 messages while
	// it sends, and is exact once it waits or closes. Tail-Head bytes are
	// in flight.
	Head, Tail            uint64
	Sent, SentBytes, Full uint64
}

// Info reads the ring's description. It works on read-only handles.
func (r *Ring) Info() (Info, error) {
	if !r.acquire() {
		return Info{}, r.errorf("info: %w", ErrClosed)
	}
	defer r.release()
	in := Info{
		Name: r.Name(), Mode: r.geo.mode, Capacity: r.geo.capacity, MaxMessage: r.geo.maxPayload(),
		Checksum: r.geo.checksum, SegmentSize: r.geo.segSize, Created: r.geo.created,
		CreatorPID: r.geo.creator, Instance: r.geo.instance, Stats: r.Stats(),
		ConsumerPID: le32(r.consPID.Load()),
	}
	var err error
	if in.OwnerAlive, err = r.seg.Locked(lockOwner, 1); err != nil {
		return in, err
	}
	if in.Attached, err = r.seg.Locked(lockAttached, 1); err != nil {
		return in, err
	}
	if in.Consumer, err = r.roleState(r.consState, lockConsumer); err != nil {
		return in, err
	}
	for i := range r.lanes {
		l := &r.lanes[i]
		st, err := r.roleState(l.state, l.lock())
		if err != nil {
			return in, err
		}
		if st != RoleNone || len(r.lanes) == 1 {
			in.Lanes = append(in.Lanes, LaneInfo{Lane: i, State: st, PID: le32(l.pid.Load()),
				Head: le64(l.head.Load()), Tail: le64(l.tail.Load()),
				Sent: le64(l.sentMsgs.Load()), SentBytes: le64(l.sentBytes.Load()), Full: le64(l.full.Load())})
		}
	}
	return in, nil
}

// roleState combines a role's state word with its lock. The word is read
// before and after the lock is probed: a holder stores "closed" before it
// unlocks, and a new holder locks before it stores "attached", so the role
// is dead only if it read "attached" both times around a free lock. One
// read would call a peer that closed cleanly during the probe dead.
func (r *Ring) roleState(word *atomic.Uint32, lock int64) (RoleState, error) {
	before := le32(word.Load())
	held, err := r.seg.Locked(lock, 1)
	if err != nil {
		return RoleNone, err
	}
	after := le32(word.Load())
	switch {
	case held:
		return RoleAlive, nil
	case before == stateAttached && after == stateAttached:
		return RoleDead, nil
	case after == stateClosed:
		return RoleClosed, nil
	case after == stateAttached:
		return RoleAlive, nil // taken just now: its holder locked before storing
	}
	return RoleNone, nil
}
