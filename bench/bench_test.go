package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the peer of the cases it runs.
func TestMain(m *testing.M) {
	if IsPeer() {
		os.Exit(PeerMain(Builtin()))
	}
	os.Exit(m.Run())
}

func TestHistogramQuantiles(t *testing.T) {
	h := NewHistogram()
	if h.Quantile(50) != 0 || h.Latency("rtt").Samples != 0 {
		t.Fatal("empty histogram not zero")
	}
	for v := int64(1); v <= 10000; v++ {
		h.Record(v)
	}
	for _, tc := range []struct {
		q    float64
		want int64
	}{{0, 1}, {50, 5000}, {90, 9000}, {99, 9900}, {99.9, 9990}, {100, 10000}} {
		got := h.Quantile(tc.q)
		if d := got - tc.want; d < -tc.want/500 || d > tc.want/500 { // three significant digits
			t.Errorf("p%v = %d, want %d within 0.2%%", tc.q, got, tc.want)
		}
	}
	l := h.Latency("rtt")
	if l.Samples != 10000 || l.MinNS != 1 || l.MaxNS != 10000 || l.MeanNS != 5000 && l.MeanNS != 5001 {
		t.Errorf("summary %+v", *l)
	}
	h.Reset()
	if h.Count() != 0 || h.Quantile(99) != 0 {
		t.Error("Reset left values")
	}
}

func TestHistogramClampsAndOrders(t *testing.T) {
	h := NewHistogram()
	// A value that hdrhistogram rounds up must not make a quantile pass the
	// exact maximum; out-of-range values are kept in the exact max.
	for _, v := range []int64{0, -5, 123457, 123457, 123457, 2 * maxTrackable} {
		h.Record(v)
	}
	l := h.Latency("rtt")
	q := []int64{l.MinNS, l.P50NS, l.P90NS, l.P99NS, l.P999NS, l.MaxNS}
	for i := 1; i < len(q); i++ {
		if q[i] < q[i-1] {
			t.Fatalf("out of order: %v", q)
		}
	}
	if l.MinNS != 1 || l.MaxNS != 2*maxTrackable {
		t.Errorf("min %d max %d", l.MinNS, l.MaxNS)
	}
	for i := 1; i < len(l.Curve); i++ {
		if l.Curve[i].Q <= l.Curve[i-1].Q || l.Curve[i].NS < l.Curve[i-1].NS {
			t.Fatalf("curve not increasing at %d: %v", i, l.Curve)
		}
	}
	if l.Curve[0].Q != 0 || l.Curve[len(l.Curve)-1].Q != 100 {
		t.Errorf("curve ends: %v %v", l.Curve[0], l.Curve[len(l.Curve)-1])
	}
}

func TestHistogramRecordAllocatesNothing(t *testing.T) {
	h := NewHistogram()
	v := int64(1)
	if n := testing.AllocsPerRun(1000, func() { v = v*7 + 13; h.Record(v % 1e9) }); n != 0 {
		t.Errorf("Record allocates %v times", n)
	}
}

func TestReportJSON(t *testing.T) {
	h := NewHistogram()
	for v := int64(100); v < 200; v++ {
		h.Record(v)
	}
	rep := &Report{Schema: Schema, Date: time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC), Host: ThisHost(),
		Config: Config{Mode: PingPong, Transports: []string{"ring", "floor"}, Sizes: []int{64}, N: 100, Rounds: 2, RoundNS: 50e6},
		Results: []Result{
			{Transport: "ring", Mode: PingPong, Size: 64, Count: 100, ElapsedNS: 15000,
				MsgsPerSec: 1e6, BytesPerSec: 64e6, Latency: h.Latency("rtt"),
				Rounds: []Round{{Count: 50, ElapsedNS: 7000, MsgsPerSec: 7.1e6, P50NS: 140, P99NS: 190}, {Count: 50, ElapsedNS: 8000, MsgsPerSec: 6.2e6, P50NS: 160, P99NS: 199}}},
			{Transport: "floor", Mode: PingPong, Size: 64, Count: 100, ElapsedNS: 10000, Latency: h.Latency("rtt"),
				Rounds: []Round{{Count: 50, P50NS: 100, P99NS: 150}, {Count: 50, P50NS: 100, P99NS: 150}}},
		}}
	ComputeRatios(rep.Results)
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"schema": "ringwire.bench/v2"`, `"p50_ns"`, `"p999_ns"`, `"msgs_per_sec"`, `"p50/floor"`, `"curve"`,
		`"rounds": 2`, `"round_ns": 50000000`, `"rounds": [`, `"spread"`, `"median": 1.5`, `"p25"`, `"p75"`, `"min": 1.4`, `"max": 1.6`} {
		if !strings.Contains(buf.String(), key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
	got, err := ReadReport(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got.Results[0].Latency.P50NS != rep.Results[0].Latency.P50NS || !got.Date.Equal(rep.Date) {
		t.Errorf("round trip changed the report: %+v", got.Results[0])
	}
	if g, w := got.Results[0].Spread["p50/floor"], rep.Results[0].Spread["p50/floor"]; g != w || len(got.Results[0].Rounds) != 2 || got.Config.Rounds != 2 {
		t.Errorf("rounds or spread lost: %+v, want %+v", got.Results[0], w)
	}
	if _, err := ReadReport(strings.NewReader(`{"schema":"other/v9"}`)); err == nil {
		t.Error("ReadReport accepted another schema")
	}
}

func TestComputeRatios(t *testing.T) {
	lat := func(p50, p99 int64) *Latency { return &Latency{P50NS: p50, P99NS: p99} }
	rs := []Result{
		{Transport: "ring", Mode: PingPong, Size: 64, Latency: lat(150, 300)},
		{Transport: "floor", Mode: PingPong, Size: 64, Latency: lat(100, 200)},
		{Transport: "uds", Mode: PingPong, Size: 64, Latency: lat(30000, 60000)},
		{Transport: "ring", Mode: PingPong, Size: 8, Latency: lat(100, 100)},
		{Transport: "floor", Mode: PingPong, Size: 8, Error: "boom"},
	}
	ComputeRatios(rs)
	if got := rs[0].Ratios; got["p50/floor"] != 1.5 || got["p99/floor"] != 1.5 || got["p50/uds"] != 0.005 {
		t.Errorf("ring 64: %v", got)
	}
	if _, ok := rs[3].Ratios["p50/floor"]; ok {
		t.Errorf("ratio against a failed reference: %v", rs[3].Ratios)
	}
	if rs[4].Ratios != nil {
		t.Errorf("a failed result has ratios")
	}
	st := []Result{
		{Transport: "ring", Mode: Stream, Size: 64, MsgsPerSec: 2e7, BytesPerSec: 64 * 2e7},
		{Transport: "uds", Mode: Stream, Size: 64, MsgsPerSec: 5e5, BytesPerSec: 64 * 5e5},
		{Transport: "memcpy", Mode: Stream, Size: 64, MsgsPerSec: 2e8, BytesPerSec: 64 * 2e8},
	}
	ComputeRatios(st)
	if got := st[0].Ratios; got["msgs/uds"] != 40 || got["bytes/memcpy"] != 0.1 {
		t.Errorf("stream: %v", got)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int{"8": 8, "64B": 64, "1KiB": 1024, "1k": 1024, "64KiB": 65536, "1MiB": 1 << 20, " 2 m ": 2 << 20} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-8", "abc", "1.5K", "99999999G"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
	if got, err := ParseSizes("8,64,1KiB,64KiB"); err != nil || fmt.Sprint(got) != "[8 64 1024 65536]" {
		t.Errorf("ParseSizes: %v %v", got, err)
	}
	for n, want := range map[int]string{8: "8 B", 1024: "1 KiB", 65536: "64 KiB", 1 << 20: "1 MiB", 1000: "1000 B"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
	for ns, want := range map[int64]string{152: "152 ns", 1234: "1.23 µs", 45600000: "45.6 ms", 2e9: "2.00 s"} {
		if got := FormatNS(ns); got != want {
			t.Errorf("FormatNS(%d) = %q, want %q", ns, got, want)
		}
	}
}

func TestClock(t *testing.T) {
	clk := timer()
	a := clk.now()
	time.Sleep(10 * time.Millisecond)
	d := clk.ns(clk.now() - a)
	if d < int64(9*time.Millisecond) || d > int64(time.Second) {
		t.Errorf("10 ms measured as %v (timer %s)", time.Duration(d), TimerSource())
	}
	if back := clk.ns(clk.fromNS(1e6)); back < 999e3 || back > 1001e3 {
		t.Errorf("fromNS/ns round trip: 1 ms became %d ns", back)
	}
	if m := Mono(); m <= 0 {
		t.Errorf("Mono() = %d", m)
	}
}

// TestTransports runs every built-in transport in each mode it supports, in
// a tiny run between two processes (one for chan and memcpy), and checks
// that messages arrive whole and that nothing is left in the segment
// directory.
func TestTransports(t *testing.T) {
	for _, tr := range Builtin() {
		for _, mode := range []Mode{PingPong, Stream} {
			if !supports(tr, mode) {
				continue
			}
			for _, size := range []int{8, 4096} {
				t.Run(fmt.Sprintf("%s/%s/%d", tr.Name(), mode, size), func(t *testing.T) {
					dir := t.TempDir()
					c := Case{Transport: tr.Name(), Mode: mode, Size: size, N: 100, Capacity: 1 << 16, Dir: dir, ZeroCopy: size == 8}
					r, err := RunCase(tr, c, nil)
					if err != nil {
						t.Fatal(err)
					}
					if r.Count != 100 || r.MsgsPerSec <= 0 {
						t.Errorf("count %d, msgs/s %v", r.Count, r.MsgsPerSec)
					}
					if tr.Name() != "memcpy" && (r.Latency == nil || r.Latency.Samples == 0) {
						t.Errorf("no latency samples")
					}
					left, _ := os.ReadDir(dir)
					for _, e := range left {
						t.Errorf("left behind: %s", filepath.Join(dir, e.Name()))
					}
				})
			}
		}
	}
}

func TestRingTooLarge(t *testing.T) {
	dir := t.TempDir()
	max, err := RingMaxMessage(dir, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	_, err = RunCase(RingTransport{}, Case{Mode: PingPong, Size: max + 1, N: 1, Capacity: 1 << 16, Dir: dir}, nil)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("size %d over a max of %d: %v", max+1, max, err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestUnsupportedAndBad(t *testing.T) {
	if _, err := RunCase(FloorTransport{}, Case{Mode: Stream, Size: 64, N: 1}, nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("floor in stream mode: %v", err)
	}
	if _, err := RunCase(MemcpyReference{}, Case{Mode: PingPong, Size: 64, N: 1}, nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("memcpy in pingpong mode: %v", err)
	}
	if _, err := RunCase(ChanTransport{}, Case{Mode: PingPong, Size: 4, N: 1}, nil); !errors.Is(err, ErrBadMessage) {
		t.Errorf("4-byte messages: %v", err)
	}
	if _, err := Lookup(Builtin(), "carrier-pigeon"); !errors.Is(err, ErrUnknownTransport) {
		t.Errorf("Lookup: %v", err)
	}
}

// BenchmarkPingPong times round trips between two processes through the
// harness, b.N of them, and reports the median and 99th percentile.
func BenchmarkPingPong(b *testing.B) {
	for _, name := range []string{"ring", "floor", "uds"} {
		for _, size := range []int{64, 4096} {
			b.Run(fmt.Sprintf("%s/%d", name, size), func(b *testing.B) {
				tr, _ := Lookup(Builtin(), name)
				c := Case{Mode: PingPong, Size: size, N: int64(b.N), Capacity: 1 << 20, Dir: b.TempDir(), ZeroCopy: true}
				b.ResetTimer()
				r, err := RunCase(tr, c, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(r.Latency.P50NS), "p50-ns")
				b.ReportMetric(float64(r.Latency.P99NS), "p99-ns")
			})
		}
	}
}

// BenchmarkStream sends b.N messages one way between two processes.
func BenchmarkStream(b *testing.B) {
	for _, name := range []string{"ring", "uds"} {
		for _, size := range []int{64, 65536} {
			b.Run(fmt.Sprintf("%s/%d", name, size), func(b *testing.B) {
				tr, _ := Lookup(Builtin(), name)
				c := Case{Mode: Stream, Size: size, N: int64(b.N), Capacity: 1 << 20, Dir: b.TempDir(), ZeroCopy: true}
				b.SetBytes(int64(size))
				b.ResetTimer()
				r, err := RunCase(tr, c, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(r.MsgsPerSec, "msgs/s")
			})
		}
	}
}

// TestRoundTripAllocatesNothing: a round trip through the ring, the floor
// and the line, both ends in this process, allocates nothing.
func TestRoundTripAllocatesNothing(t *testing.T) {
	for _, tr := range []Transport{RingTransport{}, FloorTransport{}, LineTransport{}} {
		env := Env{Dir: t.TempDir(), Mode: PingPong, Size: 64, Capacity: 1 << 16, ZeroCopy: true}
		s, err := tr.Setup(env)
		if err != nil {
			t.Fatal(err)
		}
		peer, err := tr.Attach(env, s.Addr(), nil)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := s.Accept(time.Second)
		if err != nil {
			t.Fatal(err)
		}
		msg, buf, pbuf := make([]byte, 64), make([]byte, 64), make([]byte, 64)
		seq := uint64(0)
		allocs := testing.AllocsPerRun(1000, func() {
			seq++
			msg[0] = byte(seq)
			msg[1] = byte(seq >> 8)
			msg[2] = 1
			if err := conn.Send(msg); err != nil {
				t.Fatal(err)
			}
			m, err := peer.Recv(pbuf)
			if err != nil {
				t.Fatal(err)
			}
			if err := peer.Send(m); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Recv(buf); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per round trip", tr.Name(), allocs)
		}
		peer.Close()
		conn.Close()
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}
}
