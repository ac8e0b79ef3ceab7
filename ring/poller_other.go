//go:build !linux || !(amd64 || arm64)

package ring

import (
	"errors"
	"time"
)

// Without futex_waitv the Poller sleeps on one word at a time (see Poller).
const futexWaitvMax = 128

var errNoWaitv = errors.New("futex_waitv: not available on this platform")

type waitvBuf struct{}

func init() { waitvMissing.Store(true) }

func waitv([]pollWord, time.Time, *waitvBuf) error { return errNoWaitv }
