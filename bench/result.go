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
const Schema = "ringwire.bench/v1"

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
	// DurationNS bounds each case's measured part; 0 means no bound (N).
	DurationNS int64 `json:"duration_ns"`
	// WarmupNS is how long each case ran, unrecorded, before measuring.
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
	// Count is the number of measured messages (round trips in pingpong).
	Count int64 `json:"count"`
	// ElapsedNS is the measured time: in pingpong the sum of the round
	// trips (idle gaps excluded), in stream the time from the first
	// measured message's arrival to the last's.
	ElapsedNS int64 `json:"elapsed_ns"`
	// MsgsPerSec is Count / ElapsedNS: round trips per second in
	// pingpong, messages per second one way in stream.
	MsgsPerSec float64 `json:"msgs_per_sec"`
	// BytesPerSec is MsgsPerSec * Size (one way).
	BytesPerSec float64 `json:"bytes_per_sec"`
	// Latency is the round trip (pingpong) or the one-way latency
	// (stream); absent for memcpy, which has none.
	Latency *Latency `json:"latency,omitempty"`
	// Ratios compare this result with the references at the same size in
	// the same run. Keys:
	//   "p50/floor", "p99/floor": latency quantile over the floor's (pingpong)
	//   "p50/uds", "p99/uds":     latency quantile over the unix socket's (pingpong)
	//   "msgs/uds":               msgs/s over the unix socket's (stream)
	//   "bytes/memcpy":           bytes/s over memcpy's (stream)
	// A key is absent when its reference was not run or failed.
	Ratios map[string]float64 `json:"ratios,omitempty"`
	// Note says what is special about this transport's measurement, if
	// anything (the floor carries 8 bytes whatever the size).
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

// ComputeRatios fills every result's Ratios from the references (floor,
// uds, memcpy) at the same size.
func ComputeRatios(rs []Result) {
	ref := func(name string, size int) *Result {
		for i := range rs {
			if rs[i].Transport == name && rs[i].Size == size && rs[i].Error == "" {
				return &rs[i]
			}
		}
		return nil
	}
	div := func(a, b float64) (float64, bool) {
		if b <= 0 || a <= 0 {
			return 0, false
		}
		return a / b, true
	}
	for i := range rs {
		r := &rs[i]
		r.Ratios = nil
		if r.Error != "" {
			continue
		}
		set := func(k string, v float64, ok bool) {
			if !ok {
				return
			}
			if r.Ratios == nil {
				r.Ratios = map[string]float64{}
			}
			r.Ratios[k] = v
		}
		switch r.Mode {
		case PingPong:
			if r.Latency == nil {
				continue
			}
			for _, name := range []string{"floor", "uds"} {
				f := ref(name, r.Size)
				if f == nil || f.Latency == nil {
					continue
				}
				v, ok := div(float64(r.Latency.P50NS), float64(f.Latency.P50NS))
				set("p50/"+name, v, ok)
				v, ok = div(float64(r.Latency.P99NS), float64(f.Latency.P99NS))
				set("p99/"+name, v, ok)
			}
		case Stream:
			if u := ref("uds", r.Size); u != nil {
				v, ok := div(r.MsgsPerSec, u.MsgsPerSec)
				set("msgs/uds", v, ok)
			}
			if m := ref("memcpy", r.Size); m != nil {
				v, ok := div(r.BytesPerSec, m.BytesPerSec)
				set("bytes/memcpy", v, ok)
			}
		}
	}
}
