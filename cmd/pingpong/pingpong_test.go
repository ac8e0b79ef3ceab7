package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringwire/ringwire/bench"
)

// TestMain lets the test binary serve as its own peer: pingpong re-executes
// its binary, which under go test is this one.
func TestMain(m *testing.M) {
	if bench.IsPeer() {
		os.Exit(bench.PeerMain(bench.Builtin()))
	}
	os.Exit(m.Run())
}

// localTransports are those that need no module download.
var localTransports = []string{"ring", "floor", "line", "uds", "pipe", "tcp", "chan"}

// runJSON runs pingpong with args and -json, and decodes its report.
func runJSON(t *testing.T, args ...string) *bench.Report {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(append(args, "-json"), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("pingpong %s: exit status %d\nstderr:\n%s", strings.Join(args, " "), code, stderr.String())
	}
	rep, err := bench.ReadReport(&stdout)
	if err != nil {
		t.Fatalf("decoding the JSON: %v\n%s", err, stdout.String())
	}
	return rep
}

// checkReport checks a report's sanity (never its timing): one result per
// transport and size, no error, counts as asked, percentiles in order.
func checkReport(t *testing.T, rep *bench.Report, transports []string, sizes []int, n int64) {
	t.Helper()
	if got, want := len(rep.Results), len(transports)*len(sizes); got != want {
		t.Fatalf("%d results, want %d", got, want)
	}
	i := 0
	for _, size := range sizes {
		for _, name := range transports {
			r := rep.Results[i]
			i++
			if r.Transport != name || r.Size != size {
				t.Errorf("result %d is %s/%d, want %s/%d", i, r.Transport, r.Size, name, size)
				continue
			}
			if r.Error != "" {
				t.Errorf("%s %d: error %s", name, size, r.Error)
				continue
			}
			if r.Count != n {
				t.Errorf("%s %d: count %d, want %d", name, size, r.Count, n)
			}
			if r.MsgsPerSec <= 0 || r.ElapsedNS <= 0 {
				t.Errorf("%s %d: msgs/s %v, elapsed %d ns", name, size, r.MsgsPerSec, r.ElapsedNS)
			}
			l := r.Latency
			if l == nil {
				t.Errorf("%s %d: no latency", name, size)
				continue
			}
			q := []int64{l.MinNS, l.P50NS, l.P90NS, l.P99NS, l.P999NS, l.MaxNS}
			for j := 1; j < len(q); j++ {
				if q[j] < q[j-1] || q[0] <= 0 {
					t.Errorf("%s %d: percentiles out of order: min %d p50 %d p90 %d p99 %d p99.9 %d max %d",
						name, size, q[0], q[1], q[2], q[3], q[4], q[5])
					break
				}
			}
			for j := 1; j < len(l.Curve); j++ {
				if l.Curve[j].NS < l.Curve[j-1].NS || l.Curve[j].Q <= l.Curve[j-1].Q {
					t.Errorf("%s %d: curve not increasing at %d", name, size, j)
					break
				}
			}
		}
	}
}

func checkEmpty(t *testing.T, dir string) {
	t.Helper()
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("left behind in the segment directory: %s", e.Name())
	}
}

func TestPingPongJSON(t *testing.T) {
	dir := t.TempDir()
	plot := filepath.Join(t.TempDir(), "rtt.svg")
	rep := runJSON(t, "-dir", dir, "-n", "200", "-warmup", "0", "-size", "8,1KiB",
		"-transport", strings.Join(localTransports, ","), "-plot", plot)
	if rep.Schema != bench.Schema || rep.Config.Mode != bench.PingPong {
		t.Errorf("schema %q, mode %q", rep.Schema, rep.Config.Mode)
	}
	checkReport(t, rep, localTransports, []int{8, 1024}, 200)
	if rep.Config.Rounds != bench.DefaultRounds {
		t.Errorf("config rounds %d, want %d", rep.Config.Rounds, bench.DefaultRounds)
	}
	for _, r := range rep.Results {
		if len(r.Rounds) != bench.DefaultRounds {
			t.Errorf("%s %d: %d rounds, want %d", r.Transport, r.Size, len(r.Rounds), bench.DefaultRounds)
		}
		if r.Transport == "ring" {
			for _, k := range []string{"p50/floor", "p50/line", "p50/uds", "p99/floor", "p99/line", "p99/uds"} {
				sp := r.Spread[k]
				if r.Ratios[k] <= 0 || sp.Median != r.Ratios[k] || sp.Rounds != bench.DefaultRounds || sp.P25 > sp.P75 {
					t.Errorf("ring %d: ratio %s %v, spread %+v", r.Size, k, r.Ratios[k], sp)
				}
			}
		}
	}
	checkEmpty(t, dir)
	if st, err := os.Stat(plot); err != nil || st.Size() == 0 {
		t.Errorf("plot: %v", err)
	}
}

func TestStreamJSON(t *testing.T) {
	dir := t.TempDir()
	transports := []string{"ring", "memcpy", "uds", "pipe", "tcp", "chan"}
	rep := runJSON(t, "-mode", "stream", "-dir", dir, "-n", "500", "-rounds", "5", "-warmup", "0", "-size", "64,64KiB",
		"-transport", strings.Join(transports, ","))
	for i := range rep.Results {
		if rep.Results[i].Transport == "memcpy" { // no latency: give it an empty one for checkReport
			if rep.Results[i].Latency != nil {
				t.Errorf("memcpy has a latency")
			}
			rep.Results[i].Latency = &bench.Latency{MinNS: 1, P50NS: 1, P90NS: 1, P99NS: 1, P999NS: 1, MaxNS: 1}
		}
	}
	checkReport(t, rep, transports, []int{64, 65536}, 500)
	for _, r := range rep.Results {
		if r.Transport == "ring" && (r.Ratios["msgs/uds"] <= 0 || r.Ratios["bytes/memcpy"] <= 0 ||
			r.Spread["msgs/uds"].Rounds != 5 || r.Spread["bytes/memcpy"].Rounds != 5) {
			t.Errorf("ring %d: ratios %v, spread %+v", r.Size, r.Ratios, r.Spread)
		}
	}
	checkEmpty(t, dir)
}

func TestWaitModesAndGap(t *testing.T) {
	dir := t.TempDir()
	for _, w := range []string{"spin", "yield", "block", "adaptive"} {
		rep := runJSON(t, "-dir", dir, "-n", "50", "-warmup", "0", "-size", "64", "-transport", "ring", "-wait", w, "-gap", "100us")
		checkReport(t, rep, []string{"ring"}, []int{64}, 50)
		if rep.Config.Wait != w || rep.Config.GapNS != 100e3 {
			t.Errorf("config %+v", rep.Config)
		}
	}
	checkEmpty(t, dir)
}

func TestTable(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"-dir", t.TempDir(), "-n", "100", "-warmup", "0", "-size", "64"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit status %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"transport", "p50/floor", "p50/line", "p50/uds", "ring", "floor", "line", "uds", "64 B", "interleaved rounds", "1.00x [1.00-1.00x]"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-nosuchflag"},
		{"-size", "abc"},
		{"-size", "4"},
		{"-mode", "sideways"},
		{"-wait", "sometimes"},
		{"-transport", "carrier-pigeon"},
		{"-transport", "floor", "-mode", "stream"},
		{"-transport", "line", "-mode", "stream"},
		{"-rounds", "0"},
		{"-round", "10ms", "-duration", "1s"},
		{"-transport", "memcpy"},
		{"-n", "-1"},
		{"-plot", "out.gif"},
		{"extra-arg"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit status %d, want 2", args, code)
		}
		if !strings.Contains(stderr.String(), "usage:") && !strings.Contains(stderr.String(), "Usage") {
			t.Errorf("%v: no usage in %q", args, stderr.String())
		}
	}
}

func TestImpossibleSize(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run([]string{"-dir", dir, "-size", "1MiB", "-transport", "ring"}, &stdout, &stderr)
	if code != 2 {
		t.Errorf("exit status %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), "larger than the ring's largest message") {
		t.Errorf("stderr: %q", stderr.String())
	}
	checkEmpty(t, dir)
}

func TestPeersDir(t *testing.T) {
	d, err := peersDir()
	if err != nil {
		t.Fatal(err)
	}
	if !isPeersModule(d) {
		t.Errorf("%s is not the peers module", d)
	}
	t.Setenv(PeersDirEnv, t.TempDir())
	if _, err := peersDir(); err == nil {
		t.Errorf("an empty %s was accepted", PeersDirEnv)
	}
}
