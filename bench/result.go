package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Schema identifies the JSON layout of a Report. It changes only when a
// field is removed or changes meaning; new fields may be added within one
// version, so readers should ignore fields they do not know.
//
// v2 (from v1): the floor carries the whole message (v1's floor, one cache
// line carrying 8 bytes, is now "line"); a run is interleaved rounds
// (Config.Rounds, Config.RoundNS, Result.Rounds); Ratios are medians of
// per-round ratios, with their spread in Result.Spread.
const Schema = "ringwire.bench/v2"

// Report is what pingpong -json prints: one run, every case in it.
// The layout is documented field by field here and in docs/BENCHMARKS.md.
type Report struct {
	// Schema is always the constant Schema.
	Schema string `json:"schema"`
	// Date is when the run started (RFC 3339).
	Date time.Time `json:"date"`
	Host Host      `json:"host"`
	// Config is the run's settings, as the flags gave them.
	Config Config `json:"config"`
	// Results lists one entry per (size, transport), sizes in the order
	// given, transports in the order given within a size.
	Results []Result `json:"results"`
}

// Host describes the machine.
type Host struct {
	CPU    string `json:"cpu"`    // model name, from /proc/cpuinfo
	CPUs   int    `json:"cpus"`   // logical CPUs online
	Kernel string `json:"kernel"` // uname -r
	OS     string `json:"os"`     // GOOS
	Arch   string `json:"arch"`   // GOARCH
	Go     string `json:"go"`     // runtime.Version()
	// Timer is the clock that timed round trips: "tsc" (the invariant
	// time-stamp counter, calibrated against CLOCK_MONOTONIC) or
	// "monotonic". One-way latencies always use CLOCK_MONOTONIC.
	Timer string `json:"timer"`
}

// Config is the run's settings.
type Config struct {
	Mode       Mode     `json:"mode"`       // "pingpong" or "stream"
	Transports []string `json:"transports"` // in the order run
	Sizes      []int    `json:"sizes"`      // message sizes in bytes
	// N is the number of measured messages per case (round trips in
	// pingpong); 0 means the case ran for DurationNS instead.
	N int64 `json:"n"`
	// DurationNS bounds each case's measured part, RoundNS times Rounds;
	// 0 means no bound (N).
	DurationNS int64 `json:"duration_ns"`
	// Rounds is how many interleaved rounds each size ran: in each, every
	// transport of the size ran once, for RoundNS (or its share of N).
	Rounds int `json:"rounds"`
	// RoundNS bounds one round of one case; 0 means no bound (N).
	RoundNS int64 `json:"round_ns"`
	// WarmupNS is how long each case ran, unrecorded, before its first
	// round (later rounds start with at most 5 ms unrecorded).
	WarmupNS int64 `json:"warmup_ns"`
	// Wait is the ring's wait strategy: spin, yield, block or adaptive.
	Wait string `json:"wait"`
	// GapNS is the idle time between pings (pingpong); 0 means back to
	// back.
	GapNS int64 `json:"gap_ns"`
	// Pin: the measuring thread ran on cpu0 and the peer's on cpu1.
	Pin bool `json:"pin"`
	// Capacity is the ring's data region in bytes.
	Capacity int `json:"capacity"`
	// ZeroCopy: the ring's receiver read messages in place (Peek/Release)
	// rather than copying them out (RecvAppend).
	ZeroCopy bool `json:"zero_copy"`
}

// Result is one case: one transport at one message size.
type Result struct {
	Transport string `json:"transport"`
	Mode      Mode   `json:"mode"`
	Size      int    `json:"size"` // message size in bytes
	// Count is the number of measured messages (round trips in pingpong),
	// every round.
	Count int64 `json:"count"`
	// ElapsedNS is the measured time, summed over the rounds: in pingpong
	// the sum of the round trips (idle gaps excluded), in stream the time
	// from each round's first measured message's arrival to its last's.
	ElapsedNS int64 `json:"elapsed_ns"`
	// MsgsPerSec is Count / ElapsedNS: round trips per second in
	// pingpong, messages per second one way in stream.
	MsgsPerSec float64 `json:"msgs_per_sec"`
	// BytesPerSec is MsgsPerSec * Size (one way).
	BytesPerSec float64 `json:"bytes_per_sec"`
	// Latency is the round trip (pingpong) or the one-way latency
	// (stream), over every round; absent for memcpy, which has none.
	Latency *Latency `json:"latency,omitempty"`
	// Rounds lists the figures of each round, in the order run.
	Rounds []Round `json:"rounds,omitempty"`
	// Ratios compare this result with the references at the same size in
	// the same run: each is the median over the rounds of the ratio of
	// this result's round to the reference's round of the same number.
	// Keys:
	//   "p50/floor", "p99/floor": latency quantile over the floor's (pingpong)
	//   "p50/line", "p99/line":   latency quantile over the line's (pingpong)
	//   "p50/uds", "p99/uds":     latency quantile over the unix socket's (pingpong)
	//   "msgs/uds":               msgs/s over the unix socket's (stream)
	//   "bytes/memcpy":           bytes/s over memcpy's (stream)
	// A key is absent when its reference was not run or failed.
	Ratios map[string]float64 `json:"ratios,omitempty"`
	// Spread has, for each key of Ratios, the per-round ratios' median
	// (the same value), quartiles, minimum, maximum and count.
	Spread map[string]Spread `json:"spread,omitempty"`
	// Note says what is special about this transport's measurement, if
	// anything (the line carries 8 bytes whatever the size).
	Note string `json:"note,omitempty"`
	// Error is why the case failed; the other fields are then zero.
	Error string `json:"error,omitempty"`
}

// Latency is a latency distribution, in nanoseconds.
type Latency struct {
	Kind    string `json:"kind"`    // "rtt" or "one-way"
	Samples int64  `json:"samples"` // how many values were recorded
	MinNS   int64  `json:"min_ns"`
	MeanNS  int64  `json:"mean_ns"`
	P50NS   int64  `json:"p50_ns"`
	P90NS   int64  `json:"p90_ns"`
	P99NS   int64  `json:"p99_ns"`
	P999NS  int64  `json:"p999_ns"`
	MaxNS   int64  `json:"max_ns"`
	// Curve is the percentile curve the plots draw: Q is a percentile
	// (0 to 100), NS the latency at it; see CurveQuantiles.
	Curve []Point `json:"curve,omitempty"`
}

// Round is one round of one case.
type Round struct {
	Count      int64   `json:"count"`      // measured messages
	ElapsedNS  int64   `json:"elapsed_ns"` // measured time, as Result's
	MsgsPerSec float64 `json:"msgs_per_sec"`
	// P50NS and P99NS are the round's latency quantiles (round trip or
	// one way); 0 for memcpy.
	P50NS int64 `json:"p50_ns,omitempty"`
	P99NS int64 `json:"p99_ns,omitempty"`
}

// Point is one point of a percentile curve.
type Point struct {
	Q  float64 `json:"q"`
	NS int64   `json:"ns"`
}

// WriteJSON writes the report, indented.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadReport decodes a report and checks its schema.
func ReadReport(rd io.Reader) (*Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, err
	}
	if r.Schema != Schema {
		return nil, fmt.Errorf("bench: report schema %q, want %q", r.Schema, Schema)
	}
	return &r, nil
}

// ComputeRatios fills every result's Ratios and Spread from the references
// at the same size: floor, line and uds in pingpong, uds and memcpy in
// stream. A ratio is computed round by round (round i of the result over
// round i of the reference; a result without Rounds counts as one round of
// its overall figures), and Ratios holds the median.
func ComputeRatios(rs []Result) {
	ref := func(name string, size int) *Result {
		for i := range rs {
			if rs[i].Transport == name && rs[i].Size == size && rs[i].Error == "" {
				return &rs[i]
			}
		}
		return nil
	}
	type metric struct {
		key string
		ref string
		of  func(Round) float64
	}
	p50 := func(r Round) float64 { return float64(r.P50NS) }
	p99 := func(r Round) float64 { return float64(r.P99NS) }
	rate := func(r Round) float64 { return r.MsgsPerSec }
	metrics := map[Mode][]metric{
		PingPong: {
			{"p50/floor", "floor", p50}, {"p99/floor", "floor", p99},
			{"p50/line", "line", p50}, {"p99/line", "line", p99},
			{"p50/uds", "uds", p50}, {"p99/uds", "uds", p99},
		},
		// Both ends of a stream ratio have the same size, so bytes/s
		// compare as msgs/s do.
		Stream: {{"msgs/uds", "uds", rate}, {"bytes/memcpy", "memcpy", rate}},
	}
	for i := range rs {
		r := &rs[i]
		r.Ratios, r.Spread = nil, nil
		if r.Error != "" {
			continue
		}
		for _, m := range metrics[r.Mode] {
			f := ref(m.ref, r.Size)
			if f == nil {
				continue
			}
			a, b := roundsOf(r), roundsOf(f)
			var vs []float64
			for j := range min(len(a), len(b)) {
				if x, y := m.of(a[j]), m.of(b[j]); x > 0 && y > 0 {
					vs = append(vs, x/y)
				}
			}
			sp, ok := SpreadOf(vs)
			if !ok {
				continue
			}
			if r.Ratios == nil {
				r.Ratios, r.Spread = map[string]float64{}, map[string]Spread{}
			}
			r.Ratios[m.key], r.Spread[m.key] = sp.Median, sp
		}
	}
}

// roundsOf returns a result's rounds, or its overall figures as one round.
func roundsOf(r *Result) []Round {
	if len(r.Rounds) > 0 {
		return r.Rounds
	}
	one := Round{Count: r.Count, ElapsedNS: r.ElapsedNS, MsgsPerSec: r.MsgsPerSec}
	if r.Latency != nil {
		one.P50NS, one.P99NS = r.Latency.P50NS, r.Latency.P99NS
	}
	return []Round{one}
}
