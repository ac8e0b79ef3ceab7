package ring

import "sync/atomic"

// guard lets Close run on any goroutine while the handle's own goroutine
// may be inside a call (Send, Recv, ...), without a lock on the hot path.
//
// The calling goroutine stores busy=1 and then loads closed; Close stores
// closed=1 and then loads busy. Go's atomics are sequentially consistent,
// so at least one of them sees the other's store: either the call sees
// closed and leaves before touching shared memory, or Close sees the call
// and leaves the handle's finalization (the role's shared state, its lock,
// the reference on the mapping) to the call's exit. finalize runs exactly
// once, on whichever side wins done.
//
// Invariants:
//   - Only the handle's goroutine stores busy.
//   - Shared memory is touched only between a successful enter and exit,
//     or by finalize; finalize runs only when no call is inside.
type guard struct {
	busy   atomic.Uint32
	closed atomic.Uint32
	done   atomic.Uint32
}

// enter marks a call inside the handle, or reports false if the handle is
// closed; the caller must then call leave and return ErrClosed.
func (g *guard) enter() bool {
	g.busy.Swap(1) // fence: then the load of closed
	return g.closed.Load() == 0
}

// leave marks the call done and reports whether the caller must finalize:
// the handle was closed while it was inside.
func (g *guard) leave() bool {
	g.busy.Swap(0) // fence: then the load of closed
	return g.closed.Load() != 0 && g.done.CompareAndSwap(0, 1)
}

// close marks the handle closed and reports whether the caller must
// finalize now (no call is inside), and whether this was the first close.
func (g *guard) close() (finalize, first bool) {
	if !g.closed.CompareAndSwap(0, 1) {
		return false, false
	}
	return g.busy.Load() == 0 && g.done.CompareAndSwap(0, 1), true
}

// isClosed reports whether Close was called.
func (g *guard) isClosed() bool { return g.closed.Load() != 0 }
