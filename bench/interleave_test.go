package bench

import (
	"fmt"
	"math"
	"testing"
)

func TestSpreadOf(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want Spread
	}{
		{[]float64{2}, Spread{Median: 2, P25: 2, P75: 2, Min: 2, Max: 2, Rounds: 1}},
		{[]float64{3, 1}, Spread{Median: 2, P25: 1.5, P75: 2.5, Min: 1, Max: 3, Rounds: 2}},
		{[]float64{5, 1, 3}, Spread{Median: 3, P25: 2, P75: 4, Min: 1, Max: 5, Rounds: 3}},
		{[]float64{4, 1, 3, 2}, Spread{Median: 2.5, P25: 1.75, P75: 3.25, Min: 1, Max: 4, Rounds: 4}},
		// one slow round (the machine changed speed) moves the median little
		{[]float64{1.5, 1.5, 1.6, 1.4, 1.5, 9}, Spread{Median: 1.5, P25: 1.5, P75: 1.575, Min: 1.4, Max: 9, Rounds: 6}},
	} {
		got, ok := SpreadOf(tc.in)
		if !ok || !near(got, tc.want) {
			t.Errorf("SpreadOf(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	if _, ok := SpreadOf(nil); ok {
		t.Error("SpreadOf(nil) reported a spread")
	}
}

func near(a, b Spread) bool {
	eq := func(x, y float64) bool { return math.Abs(x-y) < 1e-9 }
	return eq(a.Median, b.Median) && eq(a.P25, b.P25) && eq(a.P75, b.P75) && eq(a.Min, b.Min) && eq(a.Max, b.Max) && a.Rounds == b.Rounds
}

// TestRatiosPerRound: the machine is twice as slow in round 2; a ratio of
// the pooled medians would mix the speeds, per-round ratios cancel it.
func TestRatiosPerRound(t *testing.T) {
	rounds := func(p50s ...int64) []Round {
		var rs []Round
		for _, v := range p50s {
			rs = append(rs, Round{P50NS: v, P99NS: 2 * v, MsgsPerSec: 1e9 / float64(v)})
		}
		return rs
	}
	rs := []Result{
		{Transport: "ring", Mode: PingPong, Size: 64, Rounds: rounds(150, 300, 150, 165)},
		{Transport: "floor", Mode: PingPong, Size: 64, Rounds: rounds(100, 200, 100, 100)},
		{Transport: "line", Mode: PingPong, Size: 64, Rounds: rounds(50, 100, 50, 50)},
		{Transport: "uds", Mode: PingPong, Size: 64, Rounds: rounds(30000, 0, 30000, 30000)}, // round 2 lost its figures
	}
	ComputeRatios(rs)
	ring := rs[0]
	want := Spread{Median: 1.5, P25: 1.5, P75: 1.5375, Min: 1.5, Max: 1.65, Rounds: 4}
	if got := ring.Spread["p50/floor"]; !near(got, want) || ring.Ratios["p50/floor"] != got.Median {
		t.Errorf("ring p50/floor: %+v (ratio %v), want %+v", got, ring.Ratios["p50/floor"], want)
	}
	if got := ring.Spread["p50/line"]; got.Median != 3 || got.Max != 3.3 {
		t.Errorf("ring p50/line: %+v", got)
	}
	if got := ring.Spread["p50/uds"]; got.Rounds != 3 || got.Median != 0.005 {
		t.Errorf("ring p50/uds over the 3 rounds with figures: %+v", got)
	}
	if got := rs[1].Spread["p50/floor"]; got.Median != 1 || got.Min != 1 || got.Max != 1 {
		t.Errorf("floor over itself: %+v", got)
	}
	for k, v := range ring.Ratios {
		if ring.Spread[k].Median != v {
			t.Errorf("%s: ratio %v, spread median %v", k, v, ring.Spread[k].Median)
		}
	}
}

func TestShare(t *testing.T) {
	for _, tc := range []struct {
		n      int64
		rounds int
		want   []int64
	}{{10, 3, []int64{4, 3, 3}}, {6, 3, []int64{2, 2, 2}}, {2, 3, []int64{1, 1, 0}}} {
		var got []int64
		for r := range tc.rounds {
			got = append(got, share(tc.n, tc.rounds, r))
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("share(%d over %d) = %v, want %v", tc.n, tc.rounds, got, tc.want)
		}
	}
}

// TestRunSizeInterleaves runs the ring and its references in 4 rounds
// between processes and checks the shape of what comes back.
func TestRunSizeInterleaves(t *testing.T) {
	dir := t.TempDir()
	ts := []Transport{RingTransport{}, FloorTransport{}, LineTransport{}}
	c := Case{Mode: PingPong, Size: 200, N: 42, Rounds: 4, Capacity: 1 << 16, Dir: dir, ZeroCopy: true}
	rs, errs := RunSize(ts, c)
	for i, r := range rs {
		if errs[i] != nil {
			t.Fatalf("%s: %v", ts[i].Name(), errs[i])
		}
		if r.Count != 42 || len(r.Rounds) != 4 {
			t.Fatalf("%s: %d round trips in %d rounds, want 42 in 4", r.Transport, r.Count, len(r.Rounds))
		}
		for j, want := range []int64{11, 11, 10, 10} {
			if fr := r.Rounds[j]; fr.Count != want || fr.P50NS <= 0 || fr.P99NS < fr.P50NS {
				t.Errorf("%s round %d: %+v", r.Transport, j, fr)
			}
		}
	}
	ComputeRatios(rs)
	for _, k := range []string{"p50/floor", "p99/floor", "p50/line", "p99/line"} {
		if sp := rs[0].Spread[k]; sp.Rounds != 4 || sp.Min > sp.P25 || sp.P25 > sp.Median || sp.Median > sp.P75 || sp.P75 > sp.Max {
			t.Errorf("ring %s: %+v", k, sp)
		}
	}
	if rs[2].Note == "" || rs[1].Note == "" {
		t.Errorf("floor and line carry no note: %q, %q", rs[1].Note, rs[2].Note)
	}
}
