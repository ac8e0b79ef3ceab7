//go:build linux

package futex

// This file and futex_other.go are the only files of the package that import
// unsafe, and only one of them is compiled into any build. Every use is here:
// the address checks, the *atomic.Uint32 conversion, and passing pointers to
// the futex system call.

import (
	"math"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Operations and arguments of futex(2), from <linux/futex.h>; x/sys/unix
// defines SYS_FUTEX but not these. FUTEX_PRIVATE_FLAG (128) is deliberately
// absent: the words live in memory shared between processes.
const (
	opWake         = 1          // FUTEX_WAKE
	opWaitBitset   = 9          // FUTEX_WAIT_BITSET
	bitsetMatchAny = 0xffffffff // FUTEX_BITSET_MATCH_ANY
)

// aligned reports whether p is non-nil and 4-byte aligned, as futex(2)
// requires of its word.
func aligned(p *uint32) bool {
	return p != nil && uintptr(unsafe.Pointer(p))%4 == 0
}

// word returns the address of the uint32 held by a. atomic.Uint32 is a
// struct whose only field of non-zero size is its uint32 value.
func word(a *atomic.Uint32) *uint32 {
	return (*uint32)(unsafe.Pointer(a))
}

// futexWait atomically performs
//
//	if *addr == val { sleep }
//
// in the kernel, as FUTEX_WAIT_BITSET on a shared futex, and returns the
// errno (0 for a wake-up, which may be spurious). If ts is non-nil it is an
// absolute CLOCK_MONOTONIC deadline: WAIT_BITSET takes absolute times,
// measured on CLOCK_MONOTONIC unless FUTEX_CLOCK_REALTIME is set. A nil ts
// sleeps without a deadline.
//
// Errors: EAGAIN if *addr != val, ETIMEDOUT once the deadline passes, EINTR
// when a signal handler ran (with a timeout the kernel does not restart the
// call itself, and Go installs handlers for every signal), EFAULT if addr is
// not mapped, EINVAL if it is misaligned or ts is malformed.
func futexWait(addr *uint32, val uint32, ts *unix.Timespec) unix.Errno {
	// Pointers converted to uintptr in the call expression of an assembly
	// function (unix.Syscall6) are kept alive for the duration of the call.
	_, _, errno := unix.Syscall6(unix.SYS_FUTEX,
		uintptr(unsafe.Pointer(addr)), opWaitBitset, uintptr(val),
		uintptr(unsafe.Pointer(ts)), 0, bitsetMatchAny)
	return errno
}

// futexWake wakes at most n (> 0) waiters on addr, whatever bitset they
// waited with, and returns how many it woke. FUTEX_WAKE never blocks;
// it fails only with EFAULT or EINVAL for a bad address.
func futexWake(addr *uint32, n int) (int, unix.Errno) {
	r, _, errno := unix.Syscall6(unix.SYS_FUTEX,
		uintptr(unsafe.Pointer(addr)), opWake, uintptr(n), 0, 0, 0)
	return int(r), errno
}

// wait sleeps while *addr == val, for at most timeout (< 0: no deadline;
// the callers handle timeout == 0). It retries EINTR against the same
// absolute deadline and maps the remaining errnos to the package's results.
func wait(addr *uint32, val uint32, timeout time.Duration) error {
	var ts unix.Timespec
	var tsp *unix.Timespec
	if timeout >= 0 {
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
			return os.NewSyscallError("clock_gettime", err)
		}
		ns := ts.Nano()
		if int64(timeout) > math.MaxInt64-ns {
			ns = math.MaxInt64 // ~292 years of uptime: never
		} else {
			ns += int64(timeout)
		}
		ts = unix.NsecToTimespec(ns)
		tsp = &ts
	}
	for {
		switch errno := futexWait(addr, val, tsp); errno {
		case 0, unix.EAGAIN:
			// Woken (perhaps spuriously), or the value had changed.
			return nil
		case unix.EINTR:
			// A signal handler ran; the deadline in ts is absolute, so
			// retrying does not stretch the timeout.
		case unix.ETIMEDOUT:
			return ErrTimeout
		default:
			return os.NewSyscallError("futex", errno)
		}
	}
}

// wake wakes at most n (0 < n <= All) waiters on addr.
func wake(addr *uint32, n int) (int, error) {
	woken, errno := futexWake(addr, n)
	if errno != 0 {
		return 0, os.NewSyscallError("futex", errno)
	}
	return woken, nil
}
