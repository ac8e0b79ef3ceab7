//go:build ringcrash

package ring

import (
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
)

// With the ringcrash tag, the process kills itself with SIGKILL the n-th
// time it passes the crash point named by $RINGWIRE_CRASH (n is
// $RINGWIRE_CRASH_AFTER, default 1). SIGKILL leaves no chance to clean
// up, as a real crash would.

var (
	crashTarget crashPoint
	crashAfter  atomic.Int64
)

func init() {
	name := os.Getenv("RINGWIRE_CRASH")
	for p := crashPoint(1); p < numCrashPoints; p++ {
		if p.String() == name {
			crashTarget = p
		}
	}
	n, err := strconv.Atoi(os.Getenv("RINGWIRE_CRASH_AFTER"))
	if err != nil || n < 1 {
		n = 1
	}
	crashAfter.Store(int64(n))
}

func crashAt(p crashPoint) {
	if p == crashTarget && crashAfter.Add(-1) == 0 {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
