package futex

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Blocked waiters are observed through /proc/PID/task/TID/syscall, which
// shows the system call a sleeping thread is blocked in and its arguments.
// That lets the tests assert exact Wake counts without racing the waiters
// into the kernel. If the file cannot be read (a hardened /proc), the tests
// fall back to a generous sleep and may then, rarely, fail spuriously.

// blockedThread is one thread found asleep in futex(2) on the address asked
// for, with the op it passed.
type blockedThread struct {
	tid int
	op  uint64
}

// futexSleepers lists the threads of process pid blocked in futex(addr, ...)
// with a wait op (FUTEX_WAIT_BITSET, with or without the private flag).
func futexSleepers(pid int, addr uintptr) ([]blockedThread, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []blockedThread
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "syscall"))
		if errors.Is(err, os.ErrNotExist) {
			continue // thread exited
		}
		if err != nil {
			return nil, err
		}
		// "running", or "NR arg0 arg1 ... sp pc" with args in hex.
		f := strings.Fields(string(b))
		if len(f) < 3 || f[0] != strconv.Itoa(unix.SYS_FUTEX) {
			continue
		}
		a0, err0 := strconv.ParseUint(f[1], 0, 64)
		op, err1 := strconv.ParseUint(f[2], 0, 64)
		if err0 != nil || err1 != nil || uintptr(a0) != addr || op&^128 != opWaitBitset {
			continue
		}
		tid, _ := strconv.Atoi(e.Name())
		out = append(out, blockedThread{tid, op})
	}
	return out, nil
}

// awaitSleepers waits until exactly want threads of pid are asleep on addr,
// and checks that they used a shared (not private) futex.
func awaitSleepers(t *testing.T, pid int, addr uintptr, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := futexSleepers(pid, addr)
		if err != nil {
			t.Logf("cannot observe futex sleepers (%v); sleeping instead", err)
			time.Sleep(200 * time.Millisecond)
			return
		}
		if len(got) == want {
			for _, b := range got {
				if b.op != opWaitBitset {
					t.Errorf("thread %d waits with futex op %#x, want %#x (shared, no FUTEX_PRIVATE_FLAG)", b.tid, b.op, opWaitBitset)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d threads of pid %d asleep on %#x after 5s, want %d", len(got), pid, addr, want)
		}
		time.Sleep(time.Millisecond)
	}
}

func addrOf(p *uint32) uintptr { return uintptr(unsafe.Pointer(p)) }

// TestKernelEAGAIN exercises the path where the value changes between the
// user-space check and the kernel's: the kernel's EAGAIN must read as nil.
func TestKernelEAGAIN(t *testing.T) {
	w := new(uint32)
	*w = 1
	if errno := futexWait(w, 0, nil); errno != unix.EAGAIN {
		t.Fatalf("futex(FUTEX_WAIT_BITSET) on a changed word = %v, want EAGAIN", errno)
	}
	for _, timeout := range []time.Duration{-1, time.Second} {
		if err := wait(w, 0, timeout); err != nil {
			t.Errorf("wait(changed, %v) = %v, want nil", timeout, err)
		}
	}
	if n := testing.AllocsPerRun(200, func() { wait(w, 0, time.Second) }); n != 0 {
		t.Errorf("wait(changed) via the kernel: %v allocations, want 0", n)
	}
}

// TestSyscallError checks that kernel errors other than the expected ones
// are reported, wrapping the errno: EFAULT for a word the kernel cannot
// access, EINVAL for a misaligned one (Wait and Wake refuse those before the
// call, so this goes through the internal functions).
func TestSyscallError(t *testing.T) {
	mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_NONE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	w := (*uint32)(unsafe.Pointer(&mem[0]))
	if err := wait(w, 0, time.Second); !errors.Is(err, unix.EFAULT) {
		t.Errorf("wait(inaccessible) = %v, want EFAULT", err)
	}
	if n, err := wake(w, 1); n != 0 || !errors.Is(err, unix.EFAULT) {
		t.Errorf("wake(inaccessible) = %d, %v, want 0, EFAULT", n, err)
	}
	var se *os.SyscallError
	if err := wait(w, 0, -1); !errors.As(err, &se) || se.Syscall != "futex" {
		t.Errorf("wait(inaccessible) = %#v, want an *os.SyscallError for futex", err)
	}

	buf := new([2]uint32)
	misaligned := (*uint32)(unsafe.Add(unsafe.Pointer(&buf[0]), 2))
	if err := wait(misaligned, 1, time.Second); !errors.Is(err, unix.EINVAL) {
		t.Errorf("wait(misaligned) = %v, want EINVAL", err)
	}
	if n, err := wake(misaligned, 1); n != 0 || !errors.Is(err, unix.EINVAL) {
		t.Errorf("wake(misaligned) = %d, %v, want 0, EINVAL", n, err)
	}
}

// TestDeadlineSurvivesSignals hammers the waiting thread with signals.
// With a timeout, futex(2) returns EINTR whenever a handler runs; Wait
// must retry against the same absolute deadline. A Wait that re-armed a
// relative timeout on every retry would not return until the signals stop.
func TestDeadlineSurvivesSignals(t *testing.T) {
	const timeout = 200 * time.Millisecond
	type result struct {
		eintr   int // EINTRs seen by a raw futex call (the premise)
		err     error
		elapsed time.Duration
	}
	w := new(uint32)
	tidc := make(chan int, 1)
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tidc <- unix.Gettid()
		var r result
		// Premise: signals do interrupt a timed futex wait on this kernel.
		var ts unix.Timespec
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		ts = unix.NsecToTimespec(ts.Nano() + int64(50*time.Millisecond))
		for futexWait(w, 0, &ts) == unix.EINTR {
			r.eintr++
		}
		start := time.Now()
		r.err = Wait(w, 0, timeout)
		r.elapsed = time.Since(start)
		res <- r
	}()
	tid, pid := <-tidc, os.Getpid()
	tick := time.NewTicker(500 * time.Microsecond)
	defer tick.Stop()
	giveUp := time.After(timeout + 5*time.Second)
	sent := 0
	for {
		select {
		case <-tick.C:
			if err := unix.Tgkill(pid, tid, unix.SIGURG); err != nil {
				t.Fatalf("tgkill: %v", err)
			}
			sent++
		case <-giveUp:
			t.Fatalf("Wait(%v) still blocked 5s past its deadline while receiving signals", timeout)
		case r := <-res:
			t.Logf("sent %d signals; a raw timed futex wait saw %d EINTRs", sent, r.eintr)
			if r.eintr == 0 {
				t.Log("no EINTR observed: the retry path was not exercised")
			}
			checkTimeoutErr(t, "Wait under signals", r.err)
			if r.elapsed < timeout || r.elapsed > timeout+1500*time.Millisecond {
				t.Errorf("Wait(%v) under signals returned after %v", timeout, r.elapsed)
			}
			return
		}
	}
}

// TestWakeCounts parks N waiters on one word (half with a deadline, half
// without) and checks that Wake wakes exactly as many as asked and says so.
func TestWakeCounts(t *testing.T) {
	const N, k = 6, 2
	w := new(uint32)
	addr := addrOf(w)
	returned := make(chan error, N)
	t.Cleanup(func() { Wake(w, All) }) // release stragglers if a check fails
	for i := range N {
		timeout := time.Duration(-1)
		if i%2 == 0 {
			timeout = 10 * time.Second
		}
		go func() {
			returned <- Wait(w, 0, timeout)
		}()
	}
	awaitSleepers(t, os.Getpid(), addr, N)

	// n == 0 must not wake anyone (the kernel itself would wake one).
	if n, err := Wake(w, 0); n != 0 || err != nil {
		t.Fatalf("Wake(0) = %d, %v, want 0, nil", n, err)
	}
	if n, err := Wake(w, k); n != k || err != nil {
		t.Fatalf("Wake(%d) with %d asleep = %d, %v, want %d, nil", k, N, n, err, k)
	}
	for range k {
		select {
		case err := <-returned:
			if err != nil {
				t.Errorf("woken Wait = %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Wake reported a wake-up but no waiter returned")
		}
	}
	awaitSleepers(t, os.Getpid(), addr, N-k)
	select {
	case err := <-returned:
		t.Fatalf("a waiter beyond the %d woken returned: %v", k, err)
	default:
	}

	if n, err := Wake(w, All); n != N-k || err != nil {
		t.Fatalf("Wake(All) = %d, %v, want %d, nil", n, err, N-k)
	}
	for range N - k {
		select {
		case err := <-returned:
			if err != nil {
				t.Errorf("woken Wait = %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Wake(All) reported wake-ups but not every waiter returned")
		}
	}
}

// Cross-process tests. The test binary re-executes itself to run
// TestHelperProcess in a child with one of these roles; both map the same
// 4 KiB file. Layout: word at offset 0, the child's address of the word at
// 8 (so the parent can find it in /proc), payload at 16.
const (
	envRole = "RINGWIRE_FUTEX_HELPER_ROLE"
	envFile = "RINGWIRE_FUTEX_HELPER_FILE"

	payloadValue = 0x5eed
)

// Exit codes of the helper child.
const (
	exitOK = iota
	exitSetup
	exitTimeout
	exitWaitErr
	exitWrongValue
	exitWakeErr
	exitWakeCount
)

type sharedPage struct {
	mem     []byte
	word    *uint32
	addr    *uint64
	payload *uint32
}

func mapPage(path string, create bool) (*sharedPage, error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the mapping outlives the descriptor
	if create {
		if err := f.Truncate(4096); err != nil {
			return nil, err
		}
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	return &sharedPage{
		mem:     mem,
		word:    (*uint32)(unsafe.Pointer(&mem[0])),
		addr:    (*uint64)(unsafe.Pointer(&mem[8])),
		payload: (*uint32)(unsafe.Pointer(&mem[16])),
	}, nil
}

func newPage(t *testing.T) (*sharedPage, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "futex-page")
	p, err := mapPage(path, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(p.mem) })
	return p, path
}

func startHelper(t *testing.T, role, path string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestHelperProcess$", "-test.count=1", "-test.timeout=30s")
	// A race-enabled child otherwise sleeps 1s at exit (atexit_sleep_ms).
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append(os.Environ(), envRole+"="+role, envFile+"="+path, "GORACE="+gorace)
	out := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

// waitHelper waits for the child and returns its exit code.
func waitHelper(t *testing.T, cmd *exec.Cmd, out *bytes.Buffer) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if code := ee.ExitCode(); code >= 0 {
				return code
			}
			t.Fatalf("helper died: %v\n%s", err, out)
		}
		if err != nil {
			t.Fatalf("helper: %v\n%s", err, out)
		}
		return 0
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("helper did not exit\n%s", out)
		return -1
	}
}

// TestHelperProcess is the child side of the cross-process tests; it does
// nothing unless started by one of them.
func TestHelperProcess(t *testing.T) {
	role := os.Getenv(envRole)
	if role == "" {
		t.Skip("helper for the cross-process tests")
	}
	p, err := mapPage(os.Getenv(envFile), false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(exitSetup)
	}
	switch role {
	case "wait":
		// Sleep until the parent publishes 1 and wakes us.
		atomic.StoreUint64(p.addr, uint64(addrOf(p.word)))
		deadline := time.Now().Add(10 * time.Second)
		for atomic.LoadUint32(p.word) == 0 {
			err := WaitUntil(p.word, 0, deadline)
			if errors.Is(err, ErrTimeout) {
				os.Exit(exitTimeout)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(exitWaitErr)
			}
		}
		if atomic.LoadUint32(p.word) != 1 || atomic.LoadUint32(p.payload) != payloadValue {
			os.Exit(exitWrongValue)
		}
		os.Exit(exitOK)
	case "wake":
		// The parent is already asleep on the word: publish and wake it.
		atomic.StoreUint32(p.payload, payloadValue)
		atomic.StoreUint32(p.word, 1)
		n, err := Wake(p.word, 1)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(exitWakeErr)
		}
		if n != 1 {
			fmt.Fprintf(os.Stderr, "Wake = %d, want 1\n", n)
			os.Exit(exitWakeCount)
		}
		os.Exit(exitOK)
	}
	os.Exit(exitSetup)
}

// TestCrossProcessWakeChild: a child process sleeps on a word in a shared
// file mapping; the parent publishes a value and wakes it.
func TestCrossProcessWakeChild(t *testing.T) {
	p, path := newPage(t)
	cmd, out := startHelper(t, "wait", path)
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()

	// The child publishes the address it mapped the word at, then sleeps.
	deadline := time.Now().Add(10 * time.Second)
	var childAddr uint64
	for childAddr = atomic.LoadUint64(p.addr); childAddr == 0; childAddr = atomic.LoadUint64(p.addr) {
		if time.Now().After(deadline) {
			t.Fatalf("child did not start\n%s", out)
		}
		time.Sleep(time.Millisecond)
	}
	awaitSleepers(t, cmd.Process.Pid, uintptr(childAddr), 1)

	atomic.StoreUint32(p.payload, payloadValue)
	atomic.StoreUint32(p.word, 1)
	n, err := Wake(p.word, 1)
	if err != nil {
		t.Fatalf("Wake = %v", err)
	}
	if n != 1 {
		t.Errorf("Wake with the child asleep = %d, want 1", n)
	}
	if code := waitHelper(t, cmd, out); code != exitOK {
		t.Fatalf("child exited %d, want %d (woken with the new value)\n%s", code, exitOK, out)
	}
}

// TestCrossProcessWakeParent: the parent sleeps on the word; a child
// process publishes and wakes it, and checks Wake's count.
func TestCrossProcessWakeParent(t *testing.T) {
	p, path := newPage(t)
	type result struct {
		word, payload uint32
		err           error
	}
	res := make(chan result, 1)
	t.Cleanup(func() { Wake(p.word, All) })
	go func() {
		deadline := time.Now().Add(10 * time.Second)
		var err error
		for atomic.LoadUint32(p.word) == 0 && err == nil {
			err = WaitUntil(p.word, 0, deadline)
		}
		res <- result{atomic.LoadUint32(p.word), atomic.LoadUint32(p.payload), err}
	}()
	awaitSleepers(t, os.Getpid(), addrOf(p.word), 1)

	cmd, out := startHelper(t, "wake", path)
	if code := waitHelper(t, cmd, out); code != exitOK {
		t.Fatalf("child exited %d, want %d (Wake returned 1)\n%s", code, exitOK, out)
	}
	select {
	case r := <-res:
		if r.err != nil || r.word != 1 || r.payload != payloadValue {
			t.Fatalf("parent waiter: word %d payload %#x err %v, want 1 %#x nil", r.word, r.payload, r.err, payloadValue)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("parent waiter not woken by the child")
	}
}

// BenchmarkWaitChangedKernel is the cost of a Wait that passes the
// user-space check and learns in the kernel that the value changed (EAGAIN):
// a clock read and a futex call.
func BenchmarkWaitChangedKernel(b *testing.B) {
	w := new(uint32)
	*w = 1
	b.ReportAllocs()
	for b.Loop() {
		if err := wait(w, 0, time.Second); err != nil {
			b.Fatal(err)
		}
	}
}
