package ring

import "golang.org/x/sys/unix"

// osYield gives the processor to another runnable thread of any process:
// sched_yield(2).
func osYield() { unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }
