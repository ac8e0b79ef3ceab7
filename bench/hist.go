package bench

import (
	"math"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram records latencies in nanoseconds, with three significant digits
// from 1 ns to one minute, in fixed memory: recording allocates nothing, so
// it can run inside a measured loop of any length. It also keeps the exact
// minimum, maximum and sum.
type Histogram struct {
	h        *hdrhistogram.Histogram
	n        int64
	sum      float64
	min, max int64
}

// maxTrackable is the largest latency recorded as itself; larger ones are
// recorded as it (and counted in the exact maximum).
const maxTrackable = int64(60e9)

// NewHistogram makes an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{h: hdrhistogram.New(1, maxTrackable, 3), min: math.MaxInt64}
}

// Record adds one latency in nanoseconds. Values below 1 ns count as 1 ns.
func (h *Histogram) Record(ns int64) {
	if ns < 1 {
		ns = 1
	}
	h.n++
	h.sum += float64(ns)
	if ns < h.min {
		h.min = ns
	}
	if ns > h.max {
		h.max = ns
	}
	v := ns
	if v > maxTrackable {
		v = maxTrackable
	}
	_ = h.h.RecordValue(v) // in range by construction
}

// Count is the number of recorded values.
func (h *Histogram) Count() int64 { return h.n }

// Sum is the sum of recorded values, in nanoseconds.
func (h *Histogram) Sum() float64 { return h.sum }

// Reset empties the histogram.
func (h *Histogram) Reset() {
	h.h.Reset()
	h.n, h.sum, h.min, h.max = 0, 0, math.MaxInt64, 0
}

// Quantile returns the value at percentile q (0 to 100), clamped to the
// exact minimum and maximum, so quantiles never decrease with q and never
// pass the maximum. It returns 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	if q <= 0 {
		return h.min
	}
	if q >= 100 {
		return h.max
	}
	v := h.h.ValueAtQuantile(q)
	return min(max(v, h.min), h.max)
}

// CurveQuantiles are the percentiles a Latency's curve lists: 0, then
// 1-10^(-k/10) for k = 1 to 50 (from 20.6% to 99.999%), then 100.
func CurveQuantiles() []float64 {
	qs := []float64{0}
	for k := 1; k <= 50; k++ {
		qs = append(qs, 100*(1-math.Pow(10, -float64(k)/10)))
	}
	return append(qs, 100)
}

// Latency summarises the histogram. kind is "rtt" or "one-way".
func (h *Histogram) Latency(kind string) *Latency {
	l := &Latency{Kind: kind, Samples: h.n}
	if h.n == 0 {
		return l
	}
	l.MinNS = h.min
	l.MaxNS = h.max
	l.MeanNS = int64(math.Round(h.sum / float64(h.n)))
	l.P50NS = h.Quantile(50)
	l.P90NS = h.Quantile(90)
	l.P99NS = h.Quantile(99)
	l.P999NS = h.Quantile(99.9)
	for _, q := range CurveQuantiles() {
		l.Curve = append(l.Curve, Point{Q: math.Round(q*1e4) / 1e4, NS: h.Quantile(q)})
	}
	return l
}

// Merge adds o's values to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	h.h.Merge(o.h) // o's values are in h's range: both are NewHistogram's
	h.n += o.n
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}
