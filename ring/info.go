package ring

import (
	"encoding/binary"
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
	if in.Consumer, err = r.roleState(le32(r.consState.Load()), lockConsumer); err != nil {
		return in, err
	}
	b := r.seg.Bytes()
	for i := range r.geo.slots {
		base := offSlotTable + i*slotSize
		state := binary.LittleEndian.Uint32(b[base+offSlotState:])
		if r.geo.mode == SPSC {
			state = le32(r.prodState.Load())
		}
		st, err := r.roleState(state, slotLock(i))
		if err != nil {
			return in, err
		}
		if st != RoleNone {
			in.Producers = append(in.Producers, ProducerInfo{Slot: i, State: st, PID: binary.LittleEndian.Uint32(b[base+offSlotPID:])})
		}
	}
	return in, nil
}

// roleState combines a role's state word with its lock.
func (r *Ring) roleState(state uint32, lock int64) (RoleState, error) {
	held, err := r.seg.Locked(lock, 1)
	switch {
	case err != nil:
		return RoleNone, err
	case held:
		return RoleAlive, nil
	case state == stateAttached:
		return RoleDead, nil
	case state == stateClosed:
		return RoleClosed, nil
	}
	return RoleNone, nil
}
