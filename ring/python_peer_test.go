package ring

// Cross-language tests: testdata/peer.py is a command-line driver over the
// Python package in python/ringwire, an independent implementation of layout
// version 2 (layout.go). Running it against the Go implementation proves
// that the two agree on the bytes and the protocol: header, lanes, cursors,
// records, padding, the pre-zeroed length word, the ready set, the wake-up
// protocol, state words and locks, in SPSC and MPSC rings.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// pyPython returns the python3 to run testdata/peer.py with, or skips the
// test. The Python package's rings need linux/amd64 (it relies on x86-64's
// ordering of plain loads and stores, see python/ringwire/_native.py).
func pyPython(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skipf("skipping: python3 is not installed (%v); these tests run testdata/peer.py", err)
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("skipping: the python package's rings run on linux/amd64 only, this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	return py
}

// pyResult is what peer.py prints.
type pyResult struct {
	Error    string `json:"error"`
	Detail   string `json:"detail"`
	Count    int    `json:"count"`
	Bytes    int64  `json:"bytes"`
	SHA256   string `json:"sha256"`
	Head     uint64 `json:"head"`
	Tail     uint64 `json:"tail"`
	FirstBad *int   `json:"first_bad"`

	// info
	// produce
	Lane int `json:"lane"`
	// consume --stamped: per producer id
	PerID map[string]pyPerID `json:"per_id"`

	// info
	Version        uint32   `json:"version"`
	Flags          uint32   `json:"flags"`
	Capacity       int      `json:"capacity"`
	DataOffset     int      `json:"data_offset"`
	SegmentSize    int      `json:"segment_size"`
	MaxFrame       int      `json:"max_frame"`
	Lanes          int      `json:"lanes"`
	CreatedNs      int64    `json:"created_ns"`
	CreatorPID     int      `json:"creator_pid"`
	Instance       uint64   `json:"instance"`
	MaxPayload     int      `json:"max_payload"`
	ConsumerState  uint32   `json:"consumer_state"`
	ConsumerPID    int      `json:"consumer_pid"`
	OwnerAlive     bool     `json:"owner_alive"`
	Attached       bool     `json:"attached"`
	ConsumerAlive  bool     `json:"consumer_alive"`
	Received       uint64   `json:"received"`
	ReceivedBytes  uint64   `json:"received_bytes"`
	Sent           uint64   `json:"sent"`
	SentBytes      uint64   `json:"sent_bytes"`
	StatFullTimes  uint64   `json:"full"`
	LaneInfo       []pyLane `json:"lane_info"`
	exitCode       int
	stdout, stderr string
}

// pyLane is one lane as peer.py info reports it: every lane ever taken.
type pyLane struct {
	Lane      int    `json:"lane"`
	State     uint32 `json:"state"`
	Alive     bool   `json:"alive"`
	PID       int    `json:"pid"`
	Head      uint64 `json:"head"`
	Tail      uint64 `json:"tail"`
	Sent      uint64 `json:"sent"`
	SentBytes uint64 `json:"sent_bytes"`
	Full      uint64 `json:"full"`
}

// pyPerID is what a stamped python consumer received from one producer.
type pyPerID struct {
	Count  int    `json:"count"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
	Next   int    `json:"next"`
}

// pyProc is a running peer.py.
type pyProc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{} // closed when the process has exited
	err            error         // from Wait, valid after done
}

// pyStart runs peer.py with args. ctx bounds its life: a peer that hangs is
// killed when ctx ends, so a broken peer fails the test instead of hanging it.
func pyStart(t *testing.T, ctx context.Context, py string, args ...string) *pyProc {
	t.Helper()
	p := &pyProc{done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, py, append([]string{filepath.Join("testdata", "peer.py")}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start peer.py: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// result waits for the peer to exit and parses what it printed.
func (p *pyProc) result(t *testing.T, ctx context.Context) pyResult {
	t.Helper()
	select {
	case <-p.done:
	case <-ctx.Done():
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("peer.py did not finish in time; stderr:\n%s", p.stderr.String())
	}
	var res pyResult
	res.stdout, res.stderr = p.stdout.String(), p.stderr.String()
	res.exitCode = p.cmd.ProcessState.ExitCode()
	if err := json.Unmarshal(bytes.TrimSpace(p.stdout.Bytes()), &res); err != nil {
		t.Fatalf("peer.py (%v) printed no result: %v\nstdout:\n%s\nstderr:\n%s", p.err, err, res.stdout, res.stderr)
	}
	return res
}

// report is a peer's state, for failure messages.
func (p *pyProc) report() string {
	select {
	case <-p.done:
		return fmt.Sprintf("peer.py exited (%v): %s %s", p.err, bytes.TrimSpace(p.stdout.Bytes()), bytes.TrimSpace(p.stderr.Bytes()))
	default:
		return "peer.py still running"
	}
}

// pyPattern is the deterministic message sequence of peer.py's module
// comment: message i has (i*7919) % (maxLen+1) bytes, taken from a fixed
// pool at (i*37) % 4096.
type pyPattern struct {
	pool   []byte
	maxLen int
}

func newPyPattern(maxLen int) *pyPattern {
	pool := make([]byte, 4096+maxLen)
	for k := range pool {
		pool[k] = byte((k * 131) ^ (k >> 3))
	}
	return &pyPattern{pool: pool, maxLen: maxLen}
}

func (p *pyPattern) msg(i int) []byte {
	n := (i * 7919) % (p.maxLen + 1)
	s := (i * 37) % 4096
	return p.pool[s : s+n : s+n]
}

// pyDigest is peer.py's summary: SHA-256 over each message's length (u32,
// little-endian) and payload, in order.
type pyDigest struct {
	h     hash.Hash
	count int
	bytes int64
}

func newPyDigest() *pyDigest { return &pyDigest{h: sha256.New()} }

func (d *pyDigest) add(m []byte) {
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(m)))
	d.h.Write(n[:])
	d.h.Write(m)
	d.count++
	d.bytes += int64(len(m))
}

func (d *pyDigest) sum() string { return hex.EncodeToString(d.h.Sum(nil)) }

// pyPeerCheck is the Go side's peer-check interval in the data tests. A
// parked Go side sleeps that long unless the Python peer wakes it, so a lost
// wake-up shows as an operation that took about that long, and fails the
// test at once.
const pyPeerCheck = 10 * time.Second

type pyCase struct {
	name     string
	checksum bool
	wait     WaitMode
	n        int
	maxLen   int
}

// The Block cases park the Go side whenever it has to wait, so every wait is
// ended by a futex wake-up from Python; the Adaptive cases mostly spin.
// "largest" sends payloads up to the ring's maximum (2040 bytes in 4096), so
// that padding frames of every size occur.
var pyCases = []pyCase{
	{"block", false, Block, 20000, 1000},
	{"adaptive", false, Adaptive, 20000, 1000},
	{"checksum", true, Block, 4000, 1000},
	{"largest", false, Block, 4000, 2040},
}

// TestPythonConsumer: a Go producer sends, the Python consumer receives.
func TestPythonConsumer(t *testing.T) {
	py := pyPython(t)
	for _, tc := range pyCases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			dir := t.TempDir()
			r, err := Create("pyconsumer", Options{Capacity: 4096, Checksum: tc.checksum, Dir: dir,
				Wait: Wait{Mode: tc.wait, PeerCheck: pyPeerCheck}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })

			proc := pyStart(t, ctx, py, "consume", filepath.Join(dir, r.Name()),
				"--timeout", "100", "--check-pattern", strconv.Itoa(tc.maxLen))
			// A peer that exits early must end the sends, not leave them
			// waiting for room.
			sendCtx, stop := context.WithCancel(ctx)
			defer stop()
			go func() {
				<-proc.done
				stop()
			}()

			p, err := r.Producer()
			if err != nil {
				t.Fatal(err)
			}
			pat, want := newPyPattern(tc.maxLen), newPyDigest()
			var slowest time.Duration
			for i := range tc.n {
				m := pat.msg(i)
				start := time.Now()
				if err := p.SendContext(sendCtx, m); err != nil {
					t.Fatalf("send %d: %v; %s", i, err, proc.report())
				}
				if d := time.Since(start); d >= pyPeerCheck/2 {
					t.Fatalf("send %d took %v: the producer slept through a wake-up python owed it", i, d)
				} else {
					slowest = max(slowest, d)
				}
				want.add(m)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}

			res := proc.result(t, ctx)
			if res.Error != "" || res.exitCode != 0 {
				t.Fatalf("peer.py failed (exit %d): %s: %s\n%s", res.exitCode, res.Error, res.Detail, res.stderr)
			}
			if res.Count != want.count || res.Bytes != want.bytes || res.SHA256 != want.sum() {
				t.Errorf("python received %d messages, %d bytes, sha256 %s; Go sent %d, %d bytes, sha256 %s",
					res.Count, res.Bytes, res.SHA256, want.count, want.bytes, want.sum())
			}
			if res.FirstBad == nil || *res.FirstBad != -1 {
				t.Errorf("python: first message that differs from the pattern: %v", res.FirstBad)
			}
			st := r.Stats()
			if st.Received != uint64(tc.n) || st.ReceivedBytes != uint64(want.bytes) {
				t.Errorf("consumer statistics written by python: %d messages, %d bytes; want %d, %d",
					st.Received, st.ReceivedBytes, tc.n, want.bytes)
			}
			if st.Head != res.Head || st.Head != st.Tail {
				t.Errorf("head %d (python says %d), tail %d: want all equal", st.Head, res.Head, st.Tail)
			}
			t.Logf("%d messages, %d bytes; slowest send %v", res.Count, res.Bytes, slowest)
		})
	}
}

// TestPythonProducer: the Python producer sends, a Go consumer receives.
func TestPythonProducer(t *testing.T) {
	py := pyPython(t)
	for _, tc := range pyCases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			dir := t.TempDir()
			r, err := Create("pyproducer", Options{Capacity: 4096, Checksum: tc.checksum, Dir: dir,
				Wait: Wait{Mode: tc.wait, PeerCheck: pyPeerCheck}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			c, err := r.Consumer()
			if err != nil {
				t.Fatal(err)
			}

			proc := pyStart(t, ctx, py, "produce", filepath.Join(dir, r.Name()),
				"--count", strconv.Itoa(tc.n), "--max-len", strconv.Itoa(tc.maxLen), "--timeout", "100")
			// A peer that fails must end the receives. One that succeeds
			// closes the ring, and the consumer drains it to io.EOF.
			recvCtx, stop := context.WithCancel(ctx)
			defer stop()
			go func() {
				<-proc.done
				if proc.err != nil {
					stop()
				}
			}()

			pat, got := newPyPattern(tc.maxLen), newPyDigest()
			var slowest time.Duration
			for {
				start := time.Now()
				m, err := c.RecvContext(recvCtx)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("receive %d: %v; %s", got.count, err, proc.report())
				}
				if d := time.Since(start); got.count > 0 && d >= pyPeerCheck/2 { // the first waits for python to start
					t.Fatalf("receive %d took %v: the consumer slept through a wake-up python owed it", got.count, d)
				} else if got.count > 0 {
					slowest = max(slowest, d)
				}
				if want := pat.msg(got.count); !bytes.Equal(m, want) {
					t.Fatalf("message %d: got %d bytes %x..., want %d bytes %x...",
						got.count, len(m), m[:min(len(m), 16)], len(want), want[:min(len(want), 16)])
				}
				got.add(m)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}

			res := proc.result(t, ctx)
			if res.Error != "" || res.exitCode != 0 {
				t.Fatalf("peer.py failed (exit %d): %s: %s\n%s", res.exitCode, res.Error, res.Detail, res.stderr)
			}
			if got.count != tc.n || res.Count != got.count || res.Bytes != got.bytes || res.SHA256 != got.sum() {
				t.Errorf("Go received %d messages, %d bytes, sha256 %s; python sent %d (asked %d), %d bytes, sha256 %s",
					got.count, got.bytes, got.sum(), res.Count, tc.n, res.Bytes, res.SHA256)
			}
			st := r.Stats()
			if st.Sent != uint64(tc.n) || st.SentBytes != uint64(got.bytes) {
				t.Errorf("producer statistics written by python: %d messages, %d bytes; want %d, %d",
					st.Sent, st.SentBytes, tc.n, got.bytes)
			}
			if st.Tail != res.Tail || st.Head != st.Tail {
				t.Errorf("tail %d (python says %d), head %d: want all equal", st.Tail, res.Tail, st.Head)
			}
			t.Logf("%d messages, %d bytes; slowest receive %v", got.count, got.bytes, slowest)
		})
	}
}

// TestPythonInfo: python reads the header, the role words, the lanes and the
// locks as layout.go defines them, and finds what Go wrote.
func TestPythonInfo(t *testing.T) {
	py := pyPython(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	before := time.Now()
	r, err := Create("pyinfo", Options{Capacity: 60000, MaxMessage: 1000, Checksum: true, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	t.Cleanup(func() { r.Close() })
	p, err := r.Producer()
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 { // more than one statistics flush
		if err := p.Send([]byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	st := r.Stats()

	res := pyStart(t, ctx, py, "info", filepath.Join(dir, r.Name())).result(t, ctx)
	if res.Error != "" {
		t.Fatalf("peer.py info: %s: %s", res.Error, res.Detail)
	}
	type field struct {
		name      string
		got, want any
	}
	pid := os.Getpid()
	if len(res.LaneInfo) != 1 {
		t.Fatalf("python reports lanes %+v, want the one lane of an SPSC ring", res.LaneInfo)
	}
	ln := res.LaneInfo[0]
	for _, f := range []field{
		{"version", res.Version, uint32(layoutVersion)},
		{"flags", res.Flags, uint32(flagChecksum)},
		{"capacity", res.Capacity, 65536},
		{"data offset", res.DataOffset, 4096},
		{"segment size", res.SegmentSize, 4096 + 65536},
		{"max frame", res.MaxFrame, 16 + 1000},
		{"lanes", res.Lanes, 1},
		{"max payload", res.MaxPayload, r.MaxMessage()},
		{"creator pid", res.CreatorPID, pid},
		{"instance", res.Instance, r.Instance()},
		{"consumer state", res.ConsumerState, uint32(stateAttached)},
		{"consumer pid", res.ConsumerPID, pid},
		{"lane", ln.Lane, 0},
		{"producer state", ln.State, uint32(stateAttached)},
		{"owner lock held", res.OwnerAlive, true},
		{"attached lock held", res.Attached, true},
		{"consumer lock held", res.ConsumerAlive, true},
		{"producer lock held", ln.Alive, true},
		{"producer pid", ln.PID, pid},
		{"head", res.Head, st.Head},
		{"tail", res.Tail, st.Tail},
		{"lane head", ln.Head, st.Head},
		{"lane tail", ln.Tail, st.Tail},
		{"received", res.Received, st.Received},
		{"sent", res.Sent, st.Sent},
		{"sent bytes", res.SentBytes, st.SentBytes},
	} {
		if f.got != f.want {
			t.Errorf("%s: python read %v, want %v", f.name, f.got, f.want)
		}
	}
	if created := time.Unix(0, res.CreatedNs); created.Before(before.Truncate(time.Microsecond)) || created.After(after) {
		t.Errorf("created: python read %v, want between %v and %v", created, before, after)
	}
	if st.Sent == 0 || st.Received == 0 {
		t.Errorf("statistics not flushed after 300 messages: %+v", st)
	}

	// After the roles and the handle close: states 2, every lock free.
	p.Close()
	c.Close()
	r.Close()
	res = pyStart(t, ctx, py, "info", filepath.Join(dir, r.Name())).result(t, ctx)
	if res.Error != "" {
		t.Fatalf("peer.py info: %s: %s", res.Error, res.Detail)
	}
	if len(res.LaneInfo) != 1 {
		t.Fatalf("python reports lanes %+v, want one", res.LaneInfo)
	}
	ln = res.LaneInfo[0]
	if res.ConsumerState != stateClosed || ln.State != stateClosed ||
		res.OwnerAlive || res.Attached || res.ConsumerAlive || ln.Alive {
		t.Errorf("after close, python reads states %d/%d and locks owner %v attached %v consumer %v producer %v; want 2/2 and none held",
			res.ConsumerState, ln.State, res.OwnerAlive, res.Attached, res.ConsumerAlive, ln.Alive)
	}
}

// TestPythonValidates: python's header validation and Go's Open (validate)
// reject the same damaged segments with the same errors.
func TestPythonValidates(t *testing.T) {
	py := pyPython(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	r, err := Create("pyvalid", Options{Capacity: 4096, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, r.Name()))
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, tc := range []struct {
		name   string
		bytes  []byte
		pyWant string
		goWant error // what Go's Open returns; nil for success
	}{
		{"intact", good, "", nil},
		{"tiny", []byte{1, 2, 3, 4}, "foreign", ErrForeign},
		{"empty file", []byte{}, "not-ready", ErrNotReady},
		{"zero-filled", make([]byte, 8192), "not-ready", ErrNotReady},
		{"foreign magic", edit(func(b []byte) []byte { copy(b, "NOTARING"); return b }), "foreign", ErrForeign},
		{"header cut", good[:512], "truncated", ErrTruncated},
		{"version 1", edit(func(b []byte) []byte { le.PutUint32(b[offVersion:], 1); return b }), "version", ErrVersion},
		{"version 3", edit(func(b []byte) []byte { le.PutUint32(b[offVersion:], 3); return b }), "version", ErrVersion},
		{"unknown flag", edit(func(b []byte) []byte { le.PutUint32(b[offFlags:], 4); return b }), "corrupt", ErrCorrupt},
		{"capacity not a power of two", edit(func(b []byte) []byte { le.PutUint64(b[offCapacity:], 5000); return b }), "corrupt", ErrCorrupt},
		{"capacity too small", edit(func(b []byte) []byte { le.PutUint64(b[offCapacity:], 2048); return b }), "corrupt", ErrCorrupt},
		{"two lanes in SPSC", edit(func(b []byte) []byte { le.PutUint32(b[offLanes:], 2); return b }), "corrupt", ErrCorrupt},
		{"no lanes", edit(func(b []byte) []byte {
			le.PutUint32(b[offFlags:], flagMPSC)
			le.PutUint32(b[offLanes:], 0)
			return b
		}), "corrupt", ErrCorrupt},
		{"too many lanes", edit(func(b []byte) []byte {
			le.PutUint32(b[offFlags:], flagMPSC)
			le.PutUint32(b[offLanes:], maxLanes+1)
			return b
		}), "corrupt", ErrCorrupt},
		{"MPSC flag, sizes of one lane", edit(func(b []byte) []byte { le.PutUint32(b[offFlags:], flagMPSC); return b }), "", nil},
		{"MPSC, two lanes, sizes of one", edit(func(b []byte) []byte {
			le.PutUint32(b[offFlags:], flagMPSC)
			le.PutUint32(b[offLanes:], 2)
			return b
		}), "corrupt", ErrCorrupt},
		{"data offset", edit(func(b []byte) []byte { le.PutUint64(b[offDataOff:], 8192); return b }), "corrupt", ErrCorrupt},
		{"segment size", edit(func(b []byte) []byte { le.PutUint64(b[offSegSize:], 8184); return b }), "corrupt", ErrCorrupt},
		{"max frame above capacity/2", edit(func(b []byte) []byte { le.PutUint32(b[offMaxFrame:], 2049); return b }), "corrupt", ErrCorrupt},
		{"max frame below header", edit(func(b []byte) []byte { le.PutUint32(b[offMaxFrame:], 7); return b }), "corrupt", ErrCorrupt},
		{"data region cut", good[:6000], "truncated", ErrTruncated},
		// A ring caught while Create writes its header: fields written,
		// magic not yet.
		{"being created", edit(func(b []byte) []byte { le.PutUint64(b[offMagic:], 0); return b }), "not-ready", ErrNotReady},
		{"magic 0, foreign version", edit(func(b []byte) []byte {
			le.PutUint64(b[offMagic:], 0)
			le.PutUint32(b[offVersion:], 7)
			return b
		}), "foreign", ErrForeign},
		{"magic 0, control blocks written", edit(func(b []byte) []byte {
			le.PutUint64(b[offMagic:], 0)
			le.PutUint32(b[offConsState:], stateAttached)
			return b
		}), "foreign", ErrForeign},
		{"magic 0, stray header bytes", func() []byte {
			b := make([]byte, 8192)
			b[offCapacity+4] = 0x55
			return b
		}(), "foreign", ErrForeign},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "bad"
			if err := os.WriteFile(filepath.Join(dir, name), tc.bytes, 0o600); err != nil {
				t.Fatal(err)
			}
			defer os.Remove(filepath.Join(dir, name))
			res := pyStart(t, ctx, py, "info", filepath.Join(dir, name), "--timeout", "0.05").result(t, ctx)
			if res.Error != tc.pyWant {
				t.Errorf("python: error %q (%s), want %q", res.Error, res.Detail, tc.pyWant)
			}
			g, err := Open(name, AttachOptions{Dir: dir, Timeout: 50 * time.Millisecond, ReadOnly: true})
			if g != nil {
				g.Close()
			}
			if (tc.goWant == nil) != (err == nil) || (tc.goWant != nil && !errors.Is(err, tc.goWant)) {
				t.Errorf("Go Open: %v, want %v", err, tc.goWant)
			}
		})
	}
}

// TestPythonRoles: the role locks of LAYOUT.md §6 exclude across the
// languages, both ways.
func TestPythonRoles(t *testing.T) {
	py := pyPython(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	r, err := Create("pyroles", Options{Capacity: 4096, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	path := filepath.Join(dir, r.Name())

	// Go holds both roles: python is refused both.
	c, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Producer()
	if err != nil {
		t.Fatal(err)
	}
	if res := pyStart(t, ctx, py, "consume", path, "--timeout", "5").result(t, ctx); res.Error != "busy" {
		t.Errorf("python consume while Go consumes: %q %s, want busy", res.Error, res.Detail)
	}
	if res := pyStart(t, ctx, py, "produce", path, "--count", "1", "--max-len", "10", "--timeout", "5").result(t, ctx); res.Error != "busy" {
		t.Errorf("python produce while Go produces: %q %s, want busy", res.Error, res.Detail)
	}
	c.Close()

	// Python holds the consumer role: Go is refused it, and the Go producer
	// still reaches the python consumer.
	proc := pyStart(t, ctx, py, "consume", path, "--timeout", "30")
	for le32(r.consState.Load()) != stateAttached {
		select {
		case <-proc.done:
			t.Fatalf("python consumer exited: %s", proc.report())
		case <-ctx.Done():
			t.Fatal("python consumer did not attach")
		case <-time.After(time.Millisecond):
		}
	}
	if _, err := r.Consumer(); !errors.Is(err, ErrBusy) {
		t.Errorf("Go consumer while python consumes: %v, want ErrBusy", err)
	}
	if err := p.Send([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	p.Close()
	res := proc.result(t, ctx)
	if res.Error != "" || res.Count != 1 || res.Bytes != 5 {
		t.Errorf("python consumer: %+v, want 1 message of 5 bytes", res)
	}
	// Python closed cleanly: the role is free again.
	c, err = r.Consumer()
	if err != nil {
		t.Fatalf("Go consumer after python closed: %v", err)
	}
	c.Close()
}

// TestPythonPeerDies: a python peer that exits without closing (state
// "attached", lock dropped by the kernel) is reported as dead, and whatever
// it committed before is delivered.
func TestPythonPeerDies(t *testing.T) {
	py := pyPython(t)
	const died = 100
	t.Run("consumer", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		dir := t.TempDir()
		r, err := Create("pydies", Options{Capacity: 4096, Dir: dir, Wait: Wait{Mode: Block}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		proc := pyStart(t, ctx, py, "consume", filepath.Join(dir, r.Name()), "--die-after", strconv.Itoa(died))
		p, err := r.Producer()
		if err != nil {
			t.Fatal(err)
		}
		pat := newPyPattern(1000)
		for i := 0; ; i++ {
			err := p.SendContext(ctx, pat.msg(i))
			if errors.Is(err, ErrPeerDead) {
				break
			}
			if err != nil {
				t.Fatalf("send %d: %v, want ErrPeerDead eventually; %s", i, err, proc.report())
			}
		}
		<-proc.done
		if code := proc.cmd.ProcessState.ExitCode(); code != 3 {
			t.Errorf("python exit status %d, want 3 (--die-after)", code)
		}
		if h := r.Stats().Head; h == 0 {
			t.Errorf("python released nothing before dying")
		}
	})
	t.Run("producer", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		dir := t.TempDir()
		r, err := Create("pydies", Options{Capacity: 4096, Dir: dir, Wait: Wait{Mode: Block}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		c, err := r.Consumer()
		if err != nil {
			t.Fatal(err)
		}
		proc := pyStart(t, ctx, py, "produce", filepath.Join(dir, r.Name()),
			"--count", "1000", "--max-len", "1000", "--die-after", strconv.Itoa(died))
		pat := newPyPattern(1000)
		n := 0
		for {
			m, err := c.RecvContext(ctx)
			if errors.Is(err, ErrPeerDead) {
				break
			}
			if err != nil {
				t.Fatalf("receive %d: %v, want ErrPeerDead after %d; %s", n, err, died, proc.report())
			}
			if !bytes.Equal(m, pat.msg(n)) {
				t.Fatalf("message %d differs", n)
			}
			n++
		}
		if n != died {
			t.Errorf("received %d messages before ErrPeerDead, want the %d python committed", n, died)
		}
		<-proc.done
		if code := proc.cmd.ProcessState.ExitCode(); code != 3 {
			t.Errorf("python exit status %d, want 3 (--die-after)", code)
		}
	})
}

// stamped is message i of producer id in the MPSC tests: the u32 id and the
// u32 index, little-endian, then pattern message i (peer.py --id).
func (p *pyPattern) stamped(id, i int) []byte {
	body := p.msg(i)
	m := make([]byte, 8, 8+len(body))
	binary.LittleEndian.PutUint32(m, uint32(id))
	binary.LittleEndian.PutUint32(m[4:], uint32(i))
	return append(m, body...)
}

// pyStreams checks stamped messages as a consumer receives them: each
// producer's in order from its first index on, none missing, each body the
// pattern's; and digests each producer's stream as peer.py does.
type pyStreams struct {
	pat  *pyPattern
	next map[int]int
	dig  map[int]*pyDigest
	n    int
}

func newPyStreams(maxLen int) *pyStreams {
	return &pyStreams{pat: newPyPattern(maxLen), next: map[int]int{}, dig: map[int]*pyDigest{}}
}

func (s *pyStreams) add(t *testing.T, m []byte, first int) {
	t.Helper()
	if len(m) < 8 {
		t.Fatalf("message %d: %d bytes, too short for a stamp", s.n, len(m))
	}
	id, seq := int(binary.LittleEndian.Uint32(m)), int(binary.LittleEndian.Uint32(m[4:]))
	next, ok := s.next[id]
	if !ok {
		next = first
		s.dig[id] = newPyDigest()
	}
	if seq != next {
		t.Fatalf("message %d: producer %d's message %d, want its %d", s.n, id, seq, next)
	}
	if !bytes.Equal(m[8:], s.pat.msg(seq)) {
		t.Fatalf("message %d: producer %d's message %d has the wrong body", s.n, id, seq)
	}
	s.next[id] = seq + 1
	s.dig[id].add(m)
	s.n++
}

// goSend runs a Go producer that sends n stamped messages and closes; it
// reports the outcome on done.
func goSend(ctx context.Context, p *Producer, pat *pyPattern, id, n int, done chan<- error) {
	go func() {
		for i := range n {
			if err := p.SendContext(ctx, pat.stamped(id, i)); err != nil {
				p.Close()
				done <- fmt.Errorf("go producer %d, message %d: %w", id, i, err)
				return
			}
		}
		done <- p.Close()
	}()
}

// pyWaitLanes waits until n lanes of r were taken: a python producer
// started last has its lane.
func pyWaitLanes(t *testing.T, ctx context.Context, r *Ring, proc *pyProc, n int) {
	t.Helper()
	for {
		in, err := r.Info()
		if err != nil {
			t.Fatal(err)
		}
		if len(in.Lanes) >= n {
			return
		}
		select {
		case <-proc.done:
			t.Fatalf("python producer exited before it took a lane: %s", proc.report())
		case <-ctx.Done():
			t.Fatal("python producer did not take a lane")
		case <-time.After(time.Millisecond):
		}
	}
}

// TestPythonMPSCProducer: a python producer process takes a lane of an MPSC
// ring beside Go producers on the other lanes; the Go consumer gets every
// producer's messages in order, and the end of the stream once all closed.
func TestPythonMPSCProducer(t *testing.T) {
	py := pyPython(t)
	for _, tc := range []struct {
		name     string
		wait     WaitMode
		checksum bool
		zeroCopy bool
	}{
		{"block", Block, false, false},
		{"adaptive-checksum-zerocopy", Adaptive, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const goProducers, n, maxLen = 2, 4000, 1000
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			dir := t.TempDir()
			r, err := Create("pympscprod", Options{Mode: MPSC, Slots: 4, Capacity: 4096, Checksum: tc.checksum,
				Dir: dir, Wait: Wait{Mode: tc.wait, PeerCheck: pyPeerCheck}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			c, err := r.Consumer()
			if err != nil {
				t.Fatal(err)
			}
			// The Go producers take lanes 0 and 1 first: python gets lane 2.
			var ps []*Producer
			for range goProducers {
				p, err := r.Producer()
				if err != nil {
					t.Fatal(err)
				}
				ps = append(ps, p)
			}
			args := []string{"produce", filepath.Join(dir, r.Name()), "--count", strconv.Itoa(n),
				"--max-len", strconv.Itoa(maxLen), "--id", strconv.Itoa(goProducers), "--timeout", "100"}
			if tc.zeroCopy {
				args = append(args, "--zero-copy")
			}
			proc := pyStart(t, ctx, py, args...)
			runCtx, stop := context.WithCancel(ctx)
			defer stop()
			go func() {
				<-proc.done
				if proc.err != nil {
					stop()
				}
			}()
			// The Go producers start once python holds its lane, so that
			// all three send at once.
			pyWaitLanes(t, ctx, r, proc, goProducers+1)
			pat := newPyPattern(maxLen)
			done := make(chan error, goProducers)
			for id, p := range ps {
				goSend(runCtx, p, pat, id, n, done)
			}

			got := newPyStreams(maxLen)
			total := (goProducers + 1) * n
			var slowest time.Duration
			for got.n < total {
				start := time.Now()
				m, err := c.RecvContext(runCtx)
				if errors.Is(err, io.EOF) {
					// Every Go producer closed before python took its lane.
					time.Sleep(time.Millisecond)
					continue
				}
				if err != nil {
					t.Fatalf("receive %d: %v; %s", got.n, err, proc.report())
				}
				if d := time.Since(start); got.n > 0 && d >= pyPeerCheck/2 {
					t.Fatalf("receive %d took %v: the consumer slept through a wake-up", got.n, d)
				} else if got.n > 0 {
					slowest = max(slowest, d)
				}
				got.add(t, m, 0)
			}
			for range goProducers {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
			res := proc.result(t, ctx)
			if res.Error != "" || res.exitCode != 0 {
				t.Fatalf("peer.py failed (exit %d): %s: %s\n%s", res.exitCode, res.Error, res.Detail, res.stderr)
			}
			if res.Lane != goProducers {
				t.Errorf("python took lane %d, want %d, the first free one", res.Lane, goProducers)
			}
			d := got.dig[goProducers]
			if d == nil || res.Count != n || d.count != n || res.Bytes != d.bytes || res.SHA256 != d.sum() {
				t.Errorf("python sent %d messages, %d bytes, sha256 %s; Go received %+v", res.Count, res.Bytes, res.SHA256, d)
			}
			for id := range goProducers + 1 {
				if got.next[id] != n {
					t.Errorf("producer %d: received up to %d, want %d", id, got.next[id], n)
				}
			}
			// All closed and drained: the end of the stream.
			if _, err := c.RecvContext(ctx); !errors.Is(err, io.EOF) {
				t.Errorf("receive after every producer closed: %v, want io.EOF", err)
			}
			st := r.Stats()
			if st.Sent != uint64(total) || st.Head != st.Tail {
				t.Errorf("stats %+v: want %d sent, head == tail", st, total)
			}
			t.Logf("%d messages from %d producers; slowest receive %v", total, goProducers+1, slowest)
		})
	}
}

// TestPythonMPSCConsumer: the python consumer reads an MPSC ring fed by Go
// producers on three lanes and a python producer process on the fourth, and
// sees every producer's messages in order and the end of the stream.
func TestPythonMPSCConsumer(t *testing.T) {
	py := pyPython(t)
	const goProducers, n, maxLen = 3, 3000, 1000
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	r, err := Create("pympsccons", Options{Mode: MPSC, Slots: 4, Capacity: 4096, Dir: dir,
		Wait: Wait{Mode: Block, PeerCheck: pyPeerCheck}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	path := filepath.Join(dir, r.Name())
	var ps []*Producer
	for range goProducers {
		p, err := r.Producer()
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	prod := pyStart(t, ctx, py, "produce", path, "--count", strconv.Itoa(n), "--max-len", strconv.Itoa(maxLen),
		"--id", strconv.Itoa(goProducers), "--timeout", "100", "--wait", "block")
	// The python producer must hold its lane before the Go producers may
	// close, or the stream could end without it.
	pyWaitLanes(t, ctx, r, prod, goProducers+1)
	cons := pyStart(t, ctx, py, "consume", path, "--timeout", "100", "--stamped",
		"--check-pattern", strconv.Itoa(maxLen), "--wait", "block")
	sendCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		<-cons.done
		stop()
	}()
	pat := newPyPattern(maxLen)
	done := make(chan error, goProducers)
	want := map[int]*pyDigest{}
	for id, p := range ps {
		want[id] = newPyDigest()
		for i := range n {
			want[id].add(pat.stamped(id, i))
		}
		goSend(sendCtx, p, pat, id, n, done)
	}
	for range goProducers {
		if err := <-done; err != nil {
			t.Fatalf("%v; %s", err, cons.report())
		}
	}
	pres := prod.result(t, ctx)
	if pres.Error != "" || pres.exitCode != 0 {
		t.Fatalf("python producer failed (exit %d): %s: %s\n%s", pres.exitCode, pres.Error, pres.Detail, pres.stderr)
	}
	res := cons.result(t, ctx)
	if res.Error != "" || res.exitCode != 0 {
		t.Fatalf("python consumer failed (exit %d): %s: %s\n%s", res.exitCode, res.Error, res.Detail, res.stderr)
	}
	if pres.Lane != goProducers {
		t.Errorf("python producer took lane %d, want %d", pres.Lane, goProducers)
	}
	want[goProducers] = &pyDigest{count: pres.Count, bytes: pres.Bytes}
	if res.FirstBad == nil || *res.FirstBad != -1 {
		t.Errorf("python consumer: first message out of order or wrong: %v", res.FirstBad)
	}
	if res.Count != (goProducers+1)*n || len(res.PerID) != goProducers+1 {
		t.Errorf("python consumer received %d messages from %d producers, want %d from %d",
			res.Count, len(res.PerID), (goProducers+1)*n, goProducers+1)
	}
	for id, w := range want {
		g := res.PerID[strconv.Itoa(id)]
		sum := pres.SHA256
		if id < goProducers {
			sum = w.sum()
		}
		if g.Count != n || g.Next != n || g.Bytes != w.bytes || g.SHA256 != sum {
			t.Errorf("producer %d: python received %+v, want %d messages, %d bytes, sha256 %s", id, g, n, w.bytes, sum)
		}
	}
	st := r.Stats()
	if st.Received != uint64(res.Count) || st.Head != res.Head || st.Head != st.Tail {
		t.Errorf("stats %+v; python says head %d, count %d", st, res.Head, res.Count)
	}
}

// TestPythonMPSCTakeover: a python producer killed mid-stream leaves its
// lane to the next producer, a second python process, which continues after
// the last record the first committed; the Go consumer gets the lane's
// messages once each and in order.
func TestPythonMPSCTakeover(t *testing.T) {
	py := pyPython(t)
	const n, died, maxLen = 3000, 1200, 1000
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	r, err := Create("pytakeover", Options{Mode: MPSC, Slots: 2, Capacity: 4096, Dir: dir,
		Wait: Wait{Mode: Block, PeerCheck: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	path := filepath.Join(dir, r.Name())
	c, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	first := pyStart(t, ctx, py, "produce", path, "--count", strconv.Itoa(n), "--max-len", strconv.Itoa(maxLen),
		"--id", "7", "--die-after", strconv.Itoa(died))
	got := newPyStreams(maxLen)
	var second *pyProc
	for {
		m, err := c.RecvContext(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("receive %d: %v", got.n, err)
		}
		got.add(t, m, 0)
		if got.n == died {
			// Everything the first producer committed is here: it is dead
			// or about to be.
			<-first.done
			if code := first.cmd.ProcessState.ExitCode(); code != 3 {
				t.Fatalf("first python producer: exit %d, want 3 (--die-after); %s", code, first.report())
			}
			second = pyStart(t, ctx, py, "produce", path, "--count", strconv.Itoa(n-died), "--max-len", strconv.Itoa(maxLen),
				"--id", "7", "--first", strconv.Itoa(died))
		}
	}
	if second == nil {
		t.Fatalf("stream ended after %d messages, before the first producer died", got.n)
	}
	res := second.result(t, ctx)
	if res.Error != "" || res.exitCode != 0 {
		t.Fatalf("second python producer failed (exit %d): %s: %s\n%s", res.exitCode, res.Error, res.Detail, res.stderr)
	}
	if res.Lane != 0 {
		t.Errorf("second producer took lane %d, want 0, the dead producer's", res.Lane)
	}
	if got.n != n || got.next[7] != n {
		t.Errorf("received %d messages, up to index %d; want %d", got.n, got.next[7], n)
	}
}
