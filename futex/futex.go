package futex

import (
	"errors"
	"math"
	"os"
	"sync/atomic"
	"time"
)

// All passed as n to [Wake] wakes every waiter on the word.
const All = math.MaxInt32

// ErrTimeout is returned by the Wait functions when the timeout or deadline
// passes while the word still holds the expected value.
// errors.Is(ErrTimeout, os.ErrDeadlineExceeded) is true, and ErrTimeout has a
// Timeout method that reports true, like the net and os timeout errors.
var ErrTimeout error = timeoutError{}

// ErrBadAddress is returned by Wait and Wake for a nil address or one that is
// not 4-byte aligned. The kernel would fail such a call with EFAULT or
// EINVAL; this package does not make the call.
var ErrBadAddress = errors.New("futex: address is nil or not 4-byte aligned")

type timeoutError struct{}

func (timeoutError) Error() string { return "futex: wait timed out" }

// Timeout reports true: this error is a timeout.
func (timeoutError) Timeout() bool { return true }

// Is makes errors.Is(err, os.ErrDeadlineExceeded) true.
func (timeoutError) Is(target error) bool { return target == os.ErrDeadlineExceeded }

// Wait atomically performs
//
//	if *addr == val { sleep }
//
// and returns after a [Wake] on the same word (from this or any process that
// maps the same memory), after timeout, or spuriously. Might be woken up
// spuriously; that's allowed, so callers must re-check their condition in a
// loop.
//
// Wait returns nil on a wake-up, when *addr != val on entry (checked first in
// user space, and again by the kernel under its lock, where it is EAGAIN), or
// spuriously. When the timeout passes it returns [ErrTimeout]
// (errors.Is(err, os.ErrDeadlineExceeded) is true). It returns
// [ErrBadAddress] for a nil or misaligned addr, and an *os.SyscallError for
// any other failure of the system call.
//
// A negative timeout waits with no deadline. That is discouraged across
// processes: if the peer that should wake you dies, the waiter hangs forever.
// A zero timeout never sleeps: it returns ErrTimeout if *addr == val and nil
// otherwise.
//
// On Linux Wait is FUTEX_WAIT_BITSET (never with FUTEX_PRIVATE_FLAG) with an
// absolute CLOCK_MONOTONIC deadline computed once, so EINTR retries do not
// extend the timeout. Elsewhere it polls; see the package documentation.
// Wait does not allocate.
func Wait(addr *uint32, val uint32, timeout time.Duration) error {
	if !aligned(addr) {
		return ErrBadAddress
	}
	if atomic.LoadUint32(addr) != val {
		return nil
	}
	if timeout == 0 {
		return ErrTimeout
	}
	return wait(addr, val, timeout)
}

// WaitUntil is [Wait] with an absolute deadline. The deadline is compared
// with time.Now using its monotonic clock reading when it has one (any Time
// derived from time.Now does), so wall-clock jumps do not affect it. The zero
// Time means no deadline. A deadline that has already passed behaves like a
// zero timeout.
func WaitUntil(addr *uint32, val uint32, deadline time.Time) error {
	if !aligned(addr) {
		return ErrBadAddress
	}
	if atomic.LoadUint32(addr) != val {
		return nil
	}
	if deadline.IsZero() {
		return wait(addr, val, -1)
	}
	d := time.Until(deadline)
	if d <= 0 {
		return ErrTimeout
	}
	return wait(addr, val, d)
}

// Wake wakes at most n threads sleeping in Wait on addr, in this or any
// other process that maps the same memory, and returns how many it woke.
// Pass [All] to wake every waiter; n larger than All is treated as All.
// n <= 0 wakes nobody and makes no system call (the kernel would wake one
// waiter for n == 0).
//
// Wake does not change *addr: publish the new value with an atomic store or
// add before calling Wake, as described in the package documentation.
//
// On Linux Wake is FUTEX_WAKE without FUTEX_PRIVATE_FLAG and does not
// allocate. Elsewhere it validates addr and returns 0, nil: waiters poll and
// cannot be counted.
func Wake(addr *uint32, n int) (int, error) {
	if !aligned(addr) {
		return 0, ErrBadAddress
	}
	if n <= 0 {
		return 0, nil
	}
	if n > All {
		n = All
	}
	return wake(addr, n)
}

// WaitAtomic is [Wait] on the word held by a.
func WaitAtomic(a *atomic.Uint32, val uint32, timeout time.Duration) error {
	return Wait(word(a), val, timeout)
}

// WaitAtomicUntil is [WaitUntil] on the word held by a.
func WaitAtomicUntil(a *atomic.Uint32, val uint32, deadline time.Time) error {
	return WaitUntil(word(a), val, deadline)
}

// WakeAtomic is [Wake] on the word held by a.
func WakeAtomic(a *atomic.Uint32, n int) (int, error) {
	return Wake(word(a), n)
}
