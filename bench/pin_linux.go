package bench

import (
	"fmt"
	"os/exec"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// pinThread locks the calling goroutine to its thread and binds the thread
// to one CPU with sched_setaffinity. The returned function restores the
// thread's former affinity and unlocks it.
func pinThread(cpu int) (func(), error) {
	runtime.LockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("pin to cpu%d: sched_setaffinity: %w", cpu, err)
	}
	return func() {
		_ = unix.SchedSetaffinity(0, &old) // best effort: the thread is ours
		runtime.UnlockOSThread()
	}, nil
}

// PinSupported reports whether -pin works on this system.
func PinSupported() bool { return true }

// peerAttr makes the peer die with its parent, so an interrupted or killed
// run never leaves a peer polling a ring.
func peerAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
