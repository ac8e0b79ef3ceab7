// Package futex puts a thread to sleep on a 32-bit word in memory and wakes
// it from another thread or another process that maps the same memory.
//
// It is the blocking primitive under ringwire's shared-memory rings: a
// consumer that finds its ring empty parks on a futex word instead of
// spinning, and a producer wakes it after publishing. The package is a thin,
// allocation-free wrapper around Linux futex(2), with a portable sleep-poll
// fallback on other systems.
//
// # The futex word
//
// A futex word is a uint32 that both sides access only through sync/atomic.
// It must be 4-byte aligned; Wait and Wake return [ErrBadAddress] for a nil
// or misaligned address instead of calling into the kernel. For use across
// processes the word lives in a MAP_SHARED mapping (a file in /dev/shm, a
// memfd, ...) that every participant maps; the kernel identifies the futex by
// the underlying page and offset, so the word may sit at a different virtual
// address in each process. A word in ordinary Go memory works too, between
// goroutines of one process. [WaitAtomic] and [WakeAtomic] accept a
// *sync/atomic.Uint32 for that case.
//
// This package never uses FUTEX_PRIVATE_FLAG. A private futex is keyed by
// (address space, virtual address), so a Wake from another process would
// never reach the waiter. Shared futexes cost a little more in the kernel and
// are correct everywhere, including within one process.
//
// # Waiting and waking
//
// [Wait](addr, val, timeout) atomically checks that *addr still equals val
// and, if so, sleeps until a [Wake] on the same word, the timeout, or a
// spurious wake-up. If *addr no longer equals val it returns nil at once (in
// user space when it can tell before the system call, otherwise through the
// kernel's EAGAIN). [WaitUntil] takes an absolute deadline instead of a
// duration.
//
// A nil result does not mean anything changed: Wait may return nil because
// the value changed, because someone called Wake, or for no reason at all.
// Callers always re-check their own condition in a loop:
//
//	for !ready() {
//		if err := futex.Wait(&word, seen, time.Second); err != nil && !errors.Is(err, futex.ErrTimeout) {
//			return err
//		}
//		// timed out or woken: loop and re-check (and check the peer is alive)
//	}
//
// [Wake](addr, n) wakes at most n threads sleeping on addr and reports how
// many it woke; pass [All] to wake every waiter. Waking with nobody asleep is
// harmless and costs one system call.
//
// # Avoiding lost wake-ups without a system call per message
//
// The futex word should not be the data itself. A ring carries its state in
// cursors and record headers; the futex word is a separate sequence word
// whose only job is to be waited on. Next to it sits an announcement: a flag
// or a count of waiters. With seq an atomic.Uint32 and waiters an
// atomic.Int32, both in the shared mapping, the waiter (consumer) does:
//
//	for {
//		if ringHasData() {
//			consume()
//			continue
//		}
//		waiters.Add(1)  // 1. announce
//		s := seq.Load() // 2. read the sequence word
//		if ringHasData() { // 3. re-check
//			waiters.Add(-1)
//			continue
//		}
//		futex.WaitAtomic(&seq, s, timeout) // 4. sleep unless seq moved
//		waiters.Add(-1)
//	}
//
// and the waker (producer) does:
//
//	publish() // atomic store of the record header or cursor
//	if waiters.Load() != 0 {
//		seq.Add(1)
//		futex.WakeAtomic(&seq, futex.All)
//	}
//
// Why no wake-up is lost: both sides perform a store followed by a load of
// the other side's location (the waiter stores its announcement then loads
// the ring; the producer stores the record then loads the announcement).
// That StoreLoad pattern needs sequential consistency, which Go's
// sync/atomic operations provide (they are all sequentially consistent), so
// at least one side sees the other's store. If the producer sees the
// announcement, it bumps seq and wakes: a waiter that read s before the bump
// either finds seq != s in the kernel (EAGAIN, Wait returns nil) or is
// already asleep and gets woken; a waiter that read s after the bump
// re-checks after it too, and sees the record. If the producer does not see the
// announcement, the waiter's re-check is guaranteed to see the record and it
// does not sleep. The order on the waiter's side matters: load s before
// re-checking the ring, never after, or a bump between the re-check and the
// load is missed.
//
// The producer's fast path is one atomic load of the announcement: while the
// consumer is busy (or spinning before it parks), no system call is made.
// Parking is expensive in the other direction too: waking a sleeping thread
// costs from several to tens of microseconds (on a virtual machine an idle
// virtual CPU must be woken), against tens of nanoseconds for a poll that
// finds data, so consumers should poll for a while before announcing
// themselves and parking.
//
// # Timeouts and dead peers
//
// A peer process can die at any moment, including between publishing and
// waking, or while holding the only reference that would ever wake you. Wait
// with a timeout and check the peer's liveness when it expires. A negative
// timeout (or a zero deadline) waits forever; that is supported but
// discouraged for cross-process use.
//
// On Linux the deadline is an absolute CLOCK_MONOTONIC time computed once per
// call and passed to FUTEX_WAIT_BITSET, so retries after EINTR (Go's runtime
// delivers signals to its threads routinely) do not stretch the timeout.
// On timeout Wait returns [ErrTimeout], for which
// errors.Is(err, os.ErrDeadlineExceeded) is true. A timeout races with
// wake-ups like any other return, so re-check the condition once more after
// it.
//
// Other errors come from the kernel (EFAULT for an address that is not
// mapped, for instance) and are returned as *os.SyscallError wrapping the
// errno.
//
// # Other systems
//
// On systems other than Linux there is no portable cross-process futex, so
// Wait falls back to polling: it loads the word, sleeping between loads with
// a back-off from 10 us to 1 ms, until the value differs from val or the
// deadline passes. It works across processes (it only reads shared memory)
// but reacts within a millisecond rather than microseconds, and it burns a
// little CPU per waiter. Wake validates its arguments and returns 0, nil: it
// has nothing to wake and cannot count the pollers. Code must therefore not
// rely on Wake's count for correctness, only for tests and statistics.
//
// # Race detector
//
// The race detector does not see accesses to memory mapped from a file, and
// it does not know that a futex wake-up orders memory. Use sync/atomic for
// every access to a futex word and to the data it guards.
package futex
