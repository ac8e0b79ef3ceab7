package bench

import (
	"sync"
	"time"
	_ "unsafe" // for go:linkname

	"github.com/loov/hrtime"
)

// Mono returns CLOCK_MONOTONIC in nanoseconds: the runtime's own clock (a
// vDSO call on Linux, some 25 ns). Unlike time.Now, whose monotonic reading
// counts from the process's start, it is comparable between processes on one
// host, so a timestamp taken by one process can be subtracted from a reading
// taken by another.
func Mono() int64 { return nanotime() }

//go:linkname nanotime runtime.nanotime
func nanotime() int64

// ticks is the clock that times round trips inside one process: the CPU's
// time-stamp counter where it is invariant (some 10 ns to read), else Mono.
type ticks struct {
	tsc bool
	// ns = count * mul >> 32, calibrated once.
	mul uint64
}

var (
	clockOnce sync.Once
	clock     ticks
)

// timer returns the calibrated round-trip clock. The first call takes some
// 20 ms: the counter is calibrated against CLOCK_MONOTONIC over that span
// (hrtime's own calibration spans only some microseconds).
func timer() ticks {
	clockOnce.Do(func() { clock = calibrate(20 * time.Millisecond) })
	return clock
}

func calibrate(span time.Duration) ticks {
	if !hrtime.TSCSupported() {
		return ticks{}
	}
	m0, c0 := nanotime(), int64(hrtime.TSC())
	time.Sleep(span)
	m1, c1 := nanotime(), int64(hrtime.TSC())
	dm, dc := m1-m0, c1-c0
	if dm <= 0 || dc <= 0 {
		return ticks{}
	}
	// ns = count * mul >> 32
	mul := uint64(float64(dm) / float64(dc) * (1 << 32))
	if mul == 0 {
		return ticks{}
	}
	return ticks{tsc: true, mul: mul}
}

func (t ticks) now() int64 {
	if t.tsc {
		return int64(hrtime.TSC())
	}
	return nanotime()
}

// ns converts a difference of two now() readings to nanoseconds.
func (t ticks) ns(d int64) int64 {
	if !t.tsc {
		return d
	}
	if d < 0 {
		return 0
	}
	hi, lo := uint64(d)>>32, uint64(d)&(1<<32-1)
	return int64(hi*t.mul + lo*t.mul>>32)
}

// fromNS converts nanoseconds to a difference of now() readings.
func (t ticks) fromNS(ns int64) int64 {
	if !t.tsc || t.mul == 0 {
		return ns
	}
	return int64(float64(ns) * float64(1<<32) / float64(t.mul))
}

// TimerSource names the clock that times round trips: "tsc" or "monotonic".
func TimerSource() string {
	if timer().tsc {
		return "tsc"
	}
	return "monotonic"
}
