package ring

import (
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
	return [...]string{"none", "alive", "closed", "dead"}[s]
}

// Info describes a ring for inspection: geometry, who is attached and
// alive, and the counters. Reading it takes no role and changes nothing.
type Info struct {
	Name        string
	Mode        Mode
	Capacity    int
	MaxMessage  int
	Checksum    bool
	SegmentSize int
	Created     time.Time
	CreatorPID  uint32 // informational: a PID is no proof of life
	// OwnerAlive: the creating handle is still open in a live process.
	OwnerAlive bool
	// Attached: some live process has the ring open (other than through a
	// read-only handle).
	Attached bool
	Consumer RoleState
	// Producers holds one state per producer slot that was ever used (all
	// slots for MPSC, one for SPSC).
	Producers []ProducerInfo
	Stats     Stats
}

// ProducerInfo is one producer slot.
type ProducerInfo struct {
	Slot  int
	State RoleState
	PID   uint32 // informational
}

// Info reads the ring's description. It works on read-only handles.
func (r *Ring) Info() (Info, error) {
	in := Info{
		Name: r.Name(), Mode: r.geo.mode, Capacity: r.geo.capacity, MaxMessage: r.geo.maxPayload(),
		Checksum: r.geo.checksum, SegmentSize: r.geo.segSize, Created: r.geo.created,
		CreatorPID: r.geo.creator, Stats: r.Stats(),
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
	for i := range r.slots {
		state := r.slots[i].state
		if r.geo.mode == SPSC {
			state = r.prodState
		}
		st, err := r.roleState(state, slotLock(i))
		if err != nil {
			return in, err
		}
		if st != RoleNone {
			in.Producers = append(in.Producers, ProducerInfo{Slot: i, State: st, PID: le32(r.slots[i].pid.Load())})
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
