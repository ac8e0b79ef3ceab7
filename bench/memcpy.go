package bench

import (
	"errors"
	"os"
	"time"
)

// MemcpyReference is the bandwidth reference of stream mode: in this one
// process, stamp size-byte messages, copy them one after another into a
// region as large as the ring's data region, wrapping around, as the
// ring's producer does, and read every copied byte back and check it, as
// every stream receiver does. It has no latency.
type MemcpyReference struct{}

// Name implements Transport.
func (MemcpyReference) Name() string { return "memcpy" }

// Supports implements Modes: stream only.
func (MemcpyReference) Supports(m Mode) bool { return m == Stream }

var errSelfTimed = errors.New("memcpy is measured in-process; it has no ends")

// Setup implements Transport; memcpy is SelfTimed, so it is never called.
func (MemcpyReference) Setup(Env) (Setup, error) { return nil, errSelfTimed }

// Attach implements Transport; it is never called.
func (MemcpyReference) Attach(Env, string, []*os.File) (Conn, error) { return nil, errSelfTimed }

// Measure implements SelfTimed.
func (MemcpyReference) Measure(c Case, progress *Progress) (Result, error) {
	region := max(c.Capacity, c.Size)
	pat := newPattern(c.Size)
	src := make([]byte, c.Size)
	pat.fill(src)
	dst := make([]byte, region)
	for i := range dst {
		dst[i] = 1 // fault the pages in
	}
	off := 0
	var key uint64
	var bad error
	step := func() {
		pat.stamp(src, wordMeasured, key)
		m := dst[off : off+c.Size]
		copy(m, src)
		if _, err := pat.check(m, key); err != nil && bad == nil {
			bad = err
		}
		key++
		off += c.Size
		if off+c.Size > len(dst) {
			off = 0
		}
	}
	if c.Pin {
		unpin, err := pinThread(0)
		if err != nil {
			return Result{}, err
		}
		defer unpin()
	}
	deadline := Mono() + int64(c.Warmup)
	for Mono() < deadline {
		for range 64 {
			step()
		}
	}
	start := Mono()
	if c.Duration > 0 {
		deadline = start + int64(c.Duration)
	}
	var n int64
	for c.N == 0 || n < c.N {
		step()
		n++
		if n&63 == 0 {
			progress.set(n)
			if c.Duration > 0 && Mono() >= deadline {
				break
			}
		}
	}
	elapsed := Mono() - start
	if bad != nil {
		return Result{}, bad
	}
	r := Result{Count: n, ElapsedNS: elapsed}
	r.setRates(c.Size)
	return r, nil
}

func (r *Result) setRates(size int) {
	if r.ElapsedNS > 0 {
		r.MsgsPerSec = float64(r.Count) / (float64(r.ElapsedNS) / float64(time.Second))
		r.BytesPerSec = r.MsgsPerSec * float64(size)
	}
}
