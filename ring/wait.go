package ring

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"time"

	"github.com/ringwire/ringwire/futex"
)

// WaitMode selects how a side waits for its peer: for data on an empty
// ring, or for room on a full one.
type WaitMode uint8

const (
	// Adaptive polls for Wait.Spin rounds, yields the processor for
	// Wait.Yield rounds, then parks on the futex. While messages flow it
	// never enters the kernel; when the ring goes idle it stops burning a
	// CPU. The default.
	Adaptive WaitMode = iota
	// Spin polls without pause: the lowest latency, one CPU fully busy per
	// waiting side.
	Spin
	// Yield polls and calls runtime.Gosched between polls.
	Yield
	// Block parks on the futex at once: no CPU while waiting, a kernel
	// wake-up (tens of microseconds on a VM) per message when idle.
	Block
)

func (m WaitMode) String() string {
	switch m {
	case Adaptive:
		return "adaptive"
	case Spin:
		return "spin"
	case Yield:
		return "yield"
	case Block:
		return "block"
	}
	return "WaitMode(?)"
}

// ParseWaitMode reads the names String prints.
func ParseWaitMode(s string) (WaitMode, error) {
	for m := Adaptive; m <= Block; m++ {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, errors.New("ring: unknown wait mode " + s + " (want adaptive, spin, yield or block)")
}

// Wait is a side's wait strategy. The zero value is Adaptive with the
// defaults below.
type Wait struct {
	Mode WaitMode
	// Spin is how many polls Adaptive makes before it yields; 0 means
	// 2048, some microseconds.
	Spin int
	// Yield is how many times Adaptive yields the processor to other
	// processes (sched_yield) before it parks; 0 means 64.
	Yield int
	// PeerCheck is how often a waiting side checks that its peer is alive
	// (a lock probe, one system call), and the longest a parked side sleeps
	// between checks; 0 means DefaultPeerCheck. A dead peer is reported
	// within about this time.
	PeerCheck time.Duration
}

func (w Wait) withDefaults() Wait {
	if w.Spin <= 0 {
		w.Spin = 2048
	}
	if w.Yield <= 0 {
		w.Yield = 64
	}
	if w.PeerCheck <= 0 {
		w.PeerCheck = DefaultPeerCheck
	}
	return w
}

// pause spends the i-th failed poll as the strategy says, and reports
// whether it is time to park instead. Adaptive and Yield give the
// processor to other processes with sched_yield, not runtime.Gosched,
// which only switches goroutines: with more busy processes than CPUs the
// peer this side waits for may be the one that needs the CPU.
func (w *Wait) pause(i int) (park bool) {
	switch w.Mode {
	case Spin:
		return false
	case Yield:
		osYield()
		return false
	case Block:
		return true
	}
	if i < w.Spin {
		return false
	}
	if i < w.Spin+w.Yield {
		osYield()
		return false
	}
	return true
}

// waiter is one side of the wake-up protocol, as await needs it.
type waiter interface {
	// poll reports whether the awaited condition holds, or why waiting
	// cannot succeed: this handle was closed (ErrClosed), the peer closed
	// (io.EOF for a consumer, ErrClosed for a producer), or the shared
	// state is corrupt. It makes no system call.
	poll() (bool, error)
	// ended is poll's costlier half, made every 256 polls and before
	// parking: end-of-stream conditions that need more than a load or two.
	// It makes no system call.
	ended() error
	// peer reports whether the peer died (ErrPeerDead): a lock probe, made
	// once per Wait.PeerCheck.
	peer() error
	// announce declares that this side may sleep; retract withdraws it.
	announce()
	retract()
}

// await waits until w.poll holds, ctx ends, the handle closes, or the
// peer is found dead or gone.
//
// The wake-up protocol, which loses no wake-up and costs no syscall while
// messages flow. The sleeper:
//
//	s := seq.Load()     // 1. snapshot the futex word
//	announce()          // 2. publish "I may sleep" (atomic store)
//	if poll() { ... }   // 3. re-check the ring
//	futex.Wait(seq, s)  // 4. sleep unless seq moved since 1
//
// The waker publishes its change to the ring (an atomic store), then loads
// the announcement, and only if it is set adds 1 to seq and calls
// futex.Wake. Go's atomics are sequentially consistent, so of the two
// store-then-load pairs (announce, poll) and (publish, load announcement)
// at least one load sees the other side's store: either the sleeper's
// re-check sees the change and it does not sleep, or the waker sees the
// announcement and bumps seq after the snapshot, so the futex wait returns
// at once or is woken. Close is a waker too: it stores closed, then bumps
// seq and wakes. Spurious wake-ups only cost a loop.
//
// Every store of such a pair (the commit, the announcements, signal, the
// head, busy) is a Swap, not a Store. In a normal build both are an XCHG on
// amd64, a full fence; but the race detector's atomic store is a release
// store, a plain MOV that a later load may pass, and with it the pairs
// lose wake-ups (seen: a Block-mode ping-pong stalled a few times in a
// hundred under -race, never without). A Swap is a read-modify-write, an
// XCHG in either build.
//
// Contract of the futex wait (package futex): FUTEX_WAIT_BITSET on a word
// of the shared mapping, without FUTEX_PRIVATE_FLAG, with an absolute
// CLOCK_MONOTONIC deadline: the earlier of the context's deadline and
// now+PeerCheck. EAGAIN (the word moved) and EINTR return at once; both
// are a reason to poll again, not an error.
func (r *Ring) await(ctx context.Context, w waiter, seq *atomic.Uint32) error {
	deadline, hasDeadline := ctx.Deadline()
	var stop func() bool
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	checked := time.Now()
	for i := 0; ; i++ {
		if ok, err := w.poll(); ok || err != nil {
			return err
		}
		park := r.wait.pause(i)
		if !park && i&255 != 255 {
			continue
		}
		// The slow checks: cancellation, deadline, the peer.
		if err := ctx.Err(); err != nil {
			return err
		}
		now := time.Now()
		if hasDeadline && !now.Before(deadline) {
			return context.DeadlineExceeded
		}
		err := w.ended()
		if err == nil && now.Sub(checked) >= r.wait.PeerCheck {
			checked = now
			if err := r.checkSize(); err != nil {
				return err // and touch nothing more of the mapping
			}
			err = w.peer()
		}
		if err != nil {
			// Whatever the peer did before it went is still delivered.
			if ok, perr := w.poll(); ok || perr != nil {
				return perr
			}
			return err
		}
		if !park {
			continue
		}
		if stop == nil && ctx.Done() != nil {
			// The callback may run after await has returned (stop cannot
			// stop one already started), even after the Ring is closed:
			// it touches the mapping only while it holds a reference.
			stop = context.AfterFunc(ctx, func() {
				if r.acquire() {
					seq.Add(1)
					futex.WakeAtomic(seq, futex.All)
					r.release()
				}
			})
		}
		s := seq.Load()
		w.announce()
		if ok, err := w.poll(); ok || err != nil {
			w.retract()
			return err
		}
		until := checked.Add(r.wait.PeerCheck)
		if hasDeadline && deadline.Before(until) {
			until = deadline
		}
		err = futex.WaitAtomicUntil(seq, s, until)
		w.retract()
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return r.errorf("futex wait: %w", err)
		}
	}
}

// checkSize reports ErrTruncated if the segment's file is now shorter than
// the ring: another process shrank it, and the next access past its end
// would be a SIGBUS. Checked at every peer check of a waiting side; a side
// that never waits is not protected, which is why rings are created 0600.
func (r *Ring) checkSize() error {
	n, err := r.seg.FileSize()
	if err != nil {
		return r.errorf("segment size: %w", err)
	}
	if n < int64(r.geo.segSize) {
		return r.errorf("the segment file shrank to %d bytes, the ring needs %d: %w", n, r.geo.segSize, ErrTruncated)
	}
	return nil
}
