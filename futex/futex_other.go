//go:build !linux

package futex

// The portable fallback: there is no cross-process futex outside Linux that
// this package can rely on (macOS's __ulock_wait is private API), so waiting
// is a sleep-poll loop on the shared word and Wake has nothing to do.
//
// This file and futex_linux.go are the only files of the package that import
// unsafe, and only one of them is compiled into any build.

import (
	"sync/atomic"
	"time"
	"unsafe"
)

// Poll interval bounds: the first re-check comes after minPoll, and the
// interval doubles up to maxPoll, so a short wait reacts quickly and a long
// one costs about a thousand wake-ups per second.
const (
	minPoll = 10 * time.Microsecond
	maxPoll = time.Millisecond
)

// aligned reports whether p is non-nil and 4-byte aligned.
func aligned(p *uint32) bool {
	return p != nil && uintptr(unsafe.Pointer(p))%4 == 0
}

// word returns the address of the uint32 held by a. atomic.Uint32 is a
// struct whose only field of non-zero size is its uint32 value.
func word(a *atomic.Uint32) *uint32 {
	return (*uint32)(unsafe.Pointer(a))
}

// wait polls *addr until it differs from val or timeout passes (< 0: no
// deadline; the callers handle timeout == 0). It sleeps between loads,
// backing off from minPoll to maxPoll, and never sleeps past the deadline.
// It has no spurious returns, but callers must not rely on that.
func wait(addr *uint32, val uint32, timeout time.Duration) error {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	interval := minPoll
	for {
		sleep := interval
		if timeout > 0 {
			left := time.Until(deadline)
			if left <= 0 {
				return ErrTimeout
			}
			sleep = min(sleep, left)
		}
		time.Sleep(sleep)
		if atomic.LoadUint32(addr) != val {
			return nil
		}
		interval = min(2*interval, maxPoll)
	}
}

// wake cannot wake pollers and cannot count them: they notice the new value
// on their own within maxPoll.
func wake(addr *uint32, n int) (int, error) {
	return 0, nil
}
