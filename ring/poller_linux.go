//go:build linux && (amd64 || arm64)

package ring

import (
	"errors"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// futex_waitv(2), Linux 5.16 and later: one system call that sleeps on up
// to futexWaitvMax futex words, until any of them is woken.
const (
	sysFutexWaitv = 449  // the same number on amd64 and arm64
	futex2SizeU32 = 0x02 // FUTEX2_SIZE_U32; FUTEX2_PRIVATE (128) is absent: the words are shared
	futexWaitvMax = 128  // FUTEX_WAITV_MAX
)

// futexWaitv is struct futex_waitv of <linux/futex.h>.
type futexWaitv struct {
	val      uint64
	uaddr    uint64
	flags    uint32
	reserved uint32
}

// errNoWaitv: the kernel has no futex_waitv.
var errNoWaitv = errors.New("futex_waitv: not implemented")

// waitvBuf is the system call's argument, one per Poller, reused by every
// park.
type waitvBuf [futexWaitvMax]futexWaitv

// waitv sleeps until one of the words is woken or moved from its value,
// or until the absolute deadline, measured on CLOCK_MONOTONIC. It returns
// nil for a wake-up, a word that moved (EAGAIN) or a signal (EINTR: the
// caller polls again), os.ErrDeadlineExceeded for the deadline, and
// errNoWaitv for ENOSYS.
func waitv(words []pollWord, until time.Time, buf *waitvBuf) error {
	n := len(words)
	for i := range words {
		buf[i] = futexWaitv{val: uint64(words[i].val), uaddr: uint64(uintptr(unsafe.Pointer(words[i].seq))), flags: futex2SizeU32}
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return os.NewSyscallError("clock_gettime", err)
	}
	ts = unix.NsecToTimespec(ts.Nano() + max(int64(time.Until(until)), 0))
	_, _, errno := unix.Syscall6(sysFutexWaitv, uintptr(unsafe.Pointer(&buf[0])), uintptr(n), 0,
		uintptr(unsafe.Pointer(&ts)), uintptr(unix.CLOCK_MONOTONIC), 0)
	switch errno {
	case 0, unix.EAGAIN, unix.EINTR:
		return nil
	case unix.ETIMEDOUT:
		return os.ErrDeadlineExceeded
	case unix.ENOSYS:
		return errNoWaitv
	}
	return os.NewSyscallError("futex_waitv", errno)
}
