package ring

// Cross-language tests: testdata/peer.py is a command-line driver over the
// Python package in python/ringwire, an independent implementation of layout
// version 2 (layout.go). Running it against the Go implementation proves
// that the two agree on the bytes and the protocol: header, lanes, cursors,
// records, padding, the pre-zeroed length word, the ready set, the wake-up
// protocol, state words and locks, in SPSC and MPSC rings.

import (
	"bufio"
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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var pyFind struct {
	once   sync.Once
	py     string
	err    error
	xxhash bool
}

// pyPython returns the python3 to run testdata/peer.py with, or skips the
// test: $PYTHON if set, else python3 from PATH, resolved once to the
// interpreter itself (sys.executable), so that a wrapper such as a pyenv
// shim is not paid at every start. The Python package's rings need
// linux/amd64 (it relies on x86-64's ordering of plain loads and stores, see
// python/ringwire/_native.py).
func pyPython(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("skipping: the python package's rings run on linux/amd64 only, this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	pyFind.once.Do(func() {
		name := os.Getenv("PYTHON")
		if name == "" {
			name = "python3"
		}
		py, err := exec.LookPath(name)
		if err != nil {
			pyFind.err = err
			return
		}
		out, err := exec.Command(py, "-c",
			"import sys, importlib.util as u; print(sys.executable); print(u.find_spec('xxhash') is not None)").Output()
		if err != nil {
			pyFind.err = fmt.Errorf("%s: %v", py, err)
			return
		}
		f := strings.Fields(string(out))
		if len(f) != 2 {
			pyFind.err = fmt.Errorf("%s printed %q", py, out)
			return
		}
		pyFind.py, pyFind.xxhash = f[0], f[1] == "True"
	})
	if pyFind.err != nil {
		t.Skipf("skipping: no usable python3 (%v); these tests run testdata/peer.py", pyFind.err)
	}
	return pyFind.py
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
	seeded bool
	seed   uint64
}

// newPySeededPattern is the pattern with random sizes (peer.py --seed):
// message i has splitmix64(seed<<32 + i) % (maxLen+1) bytes.
func newPySeededPattern(maxLen int, seed uint64) *pyPattern {
	p := newPyPattern(maxLen)
	p.seeded, p.seed = true, seed
	return p
}

func splitmix64(z uint64) uint64 {
	z += 0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
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
	if p.seeded {
		n = int(splitmix64(p.seed<<32+uint64(i)) % uint64(p.maxLen+1))
	}
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

// pyStartAcks runs peer.py with args and --ack. Its progress lines ("ack
// ID SEQ" from a consumer, "sent I" from a producer) arrive on the channel
// as they are printed, which is closed when the process's output ends; the
// final summary is read with result, as for pyStart.
func pyStartAcks(t *testing.T, ctx context.Context, py string, args ...string) (*pyProc, <-chan string) {
	t.Helper()
	p := &pyProc{done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, py, append(append([]string{filepath.Join("testdata", "peer.py")}, args...), "--ack")...)
	p.cmd.Stderr = &p.stderr
	p.cmd.WaitDelay = 5 * time.Second
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start peer.py: %v", err)
	}
	acks := make(chan string, 1<<18)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "ack ") || strings.HasPrefix(line, "sent ") {
				acks <- line
			} else {
				p.stdout.WriteString(line + "\n")
			}
		}
		close(acks)
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p, acks
}

// pyAck parses "ack ID SEQ" or "sent I" (id 0).
func pyAck(t *testing.T, line string) (id, seq int) {
	t.Helper()
	f := strings.Fields(line)
	var err error
	switch {
	case len(f) == 3 && f[0] == "ack":
		if id, err = strconv.Atoi(f[1]); err == nil {
			seq, err = strconv.Atoi(f[2])
		}
	case len(f) == 2:
		seq, err = strconv.Atoi(f[1])
	default:
		err = errors.New("unknown form")
	}
	if err != nil {
		t.Fatalf("progress line %q: %v", line, err)
	}
	return id, seq
}

// pyKilled checks that the process died of SIGKILL, not by exiting.
func pyKilled(t *testing.T, p *pyProc) {
	t.Helper()
	<-p.done
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("python peer was to be killed mid-stream, but: %v; %s", p.cmd.ProcessState, p.stderr.String())
	}
}

func pyWaitConsumer(t *testing.T, ctx context.Context, r *Ring, proc *pyProc) {
	t.Helper()
	for le32(r.consState.Load()) != stateAttached {
		select {
		case <-proc.done:
			t.Fatalf("python consumer exited: %s", proc.report())
		case <-ctx.Done():
			t.Fatal("python consumer did not attach")
		case <-time.After(time.Millisecond):
		}
	}
}

func pySeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano()) & 0xFFFFFFFF
	t.Logf("message sizes from seed %d (peer.py --seed)", seed)
	return seed
}

// TestPython100k: 100k messages of random sizes between the languages,
// both ways, SPSC and MPSC (python producer processes on lanes beside Go
// producers), with and without checksums. Every byte is checked, and every
// producer's messages arrive in order, each once: the receiving side checks
// each message against the pattern and the producer's sequence, and both
// sides' SHA-256 digests of each producer's stream must agree.
func TestPython100k(t *testing.T) {
	py := pyPython(t)
	if !pyFind.xxhash {
		t.Logf("%s has no xxhash module: python's checksums use the pure-Python fallback", py)
	}
	const total = 100_000
	for _, tc := range []struct {
		name                     string
		mpsc, pyConsumer, sum    bool
		goProducers, pyProducers int
	}{
		{"spsc/go-to-python", false, true, false, 1, 0},
		{"spsc/go-to-python/checksum", false, true, true, 1, 0},
		{"spsc/python-to-go", false, false, false, 0, 1},
		{"spsc/python-to-go/checksum", false, false, true, 0, 1},
		{"mpsc/go-to-python", true, true, false, 3, 1},
		{"mpsc/go-to-python/checksum", true, true, true, 3, 1},
		{"mpsc/python-to-go", true, false, false, 2, 2},
		{"mpsc/python-to-go/checksum", true, false, true, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			maxLen := 600
			if tc.sum && !pyFind.xxhash {
				maxLen = 250 // the pure-Python XXH64 runs at ~12 MB/s
			}
			seed := pySeed(t)
			pat := newPySeededPattern(maxLen, seed)
			nprod := tc.goProducers + tc.pyProducers
			n := total / nprod
			opts := Options{Capacity: 8192, Checksum: tc.sum, Dir: t.TempDir(),
				Wait: Wait{Mode: Adaptive, PeerCheck: pyPeerCheck}}
			if tc.mpsc {
				opts.Mode, opts.Slots = MPSC, nprod
			}
			r, err := Create("py100k", opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			path := filepath.Join(opts.Dir, r.Name())
			var c *Consumer
			if !tc.pyConsumer {
				if c, err = r.Consumer(); err != nil {
					t.Fatal(err)
				}
			}
			var ps []*Producer
			for range tc.goProducers {
				p, err := r.Producer()
				if err != nil {
					t.Fatal(err)
				}
				ps = append(ps, p)
			}
			runCtx, stop := context.WithCancel(ctx)
			defer stop()
			var pyProds []*pyProc
			for k := range tc.pyProducers {
				args := []string{"produce", path, "--count", strconv.Itoa(n), "--max-len", strconv.Itoa(maxLen),
					"--id", strconv.Itoa(tc.goProducers + k), "--seed", strconv.FormatUint(seed, 10), "--timeout", "150"}
				if k%2 == 1 {
					args = append(args, "--zero-copy")
				}
				pp := pyStart(t, ctx, py, args...)
				go func() {
					<-pp.done
					if pp.err != nil {
						stop()
					}
				}()
				pyProds = append(pyProds, pp)
			}
			var cons *pyProc
			if tc.pyConsumer {
				cons = pyStart(t, ctx, py, "consume", path, "--timeout", "150", "--stamped",
					"--check-pattern", strconv.Itoa(maxLen), "--seed", strconv.FormatUint(seed, 10))
				go func() {
					<-cons.done
					stop()
				}()
			}
			if tc.mpsc && len(pyProds) > 0 {
				// Every producer holds its lane before any may close, or
				// the stream could end early.
				pyWaitLanes(t, ctx, r, pyProds[0], nprod)
			}
			start := time.Now()
			done := make(chan error, len(ps))
			want := map[int]*pyDigest{}
			for id, p := range ps {
				want[id] = newPyDigest()
				for i := range n {
					want[id].add(pat.stamped(id, i))
				}
				goSend(runCtx, p, pat, id, n, done)
			}

			var got *pyStreams
			if c != nil {
				got = &pyStreams{pat: pat, next: map[int]int{}, dig: map[int]*pyDigest{}}
				for got.n < nprod*n {
					t0 := time.Now()
					m, err := c.RecvContext(runCtx)
					if err != nil {
						t.Fatalf("receive %d: %v; %s", got.n, err, pyReports(pyProds))
					}
					if d := time.Since(t0); got.n > 0 && d >= pyPeerCheck/2 {
						t.Fatalf("receive %d took %v: the consumer slept through a wake-up", got.n, d)
					}
					got.add(t, m, 0)
				}
				if _, err := c.RecvContext(ctx); !errors.Is(err, io.EOF) {
					t.Errorf("receive after every producer closed: %v, want io.EOF", err)
				}
			}
			for range ps {
				if err := <-done; err != nil {
					t.Fatalf("%v; %s", err, pyReports(append(pyProds, cons)))
				}
			}
			pySums := map[int]string{} // each python producer's digest of what it sent
			for k, pp := range pyProds {
				id := tc.goProducers + k
				res := pp.result(t, ctx)
				if res.Error != "" || res.exitCode != 0 {
					t.Fatalf("python producer %d failed (exit %d): %s: %s\n%s", id, res.exitCode, res.Error, res.Detail, res.stderr)
				}
				if res.Count != n {
					t.Errorf("python producer %d sent %d messages, want %d", id, res.Count, n)
				}
				pySums[id] = res.SHA256
				if got != nil {
					if d := got.dig[id]; d == nil || d.sum() != res.SHA256 || d.bytes != res.Bytes {
						t.Errorf("python producer %d: sent %d bytes, sha256 %s; Go received %+v", id, res.Bytes, res.SHA256, d)
					}
				}
			}
			if got != nil {
				for id := range nprod {
					if got.next[id] != n {
						t.Errorf("producer %d: received up to %d, want %d", id, got.next[id], n)
					}
					if id < tc.goProducers && got.dig[id].sum() != want[id].sum() {
						t.Errorf("producer %d: Go received a stream with another digest than it sent", id)
					}
				}
			}
			if cons != nil {
				res := cons.result(t, ctx)
				if res.Error != "" || res.exitCode != 0 {
					t.Fatalf("python consumer failed (exit %d): %s: %s\n%s", res.exitCode, res.Error, res.Detail, res.stderr)
				}
				if res.FirstBad == nil || *res.FirstBad != -1 {
					t.Errorf("python consumer: first message out of order or not the pattern's: %v", res.FirstBad)
				}
				if res.Count != nprod*n || len(res.PerID) != nprod {
					t.Errorf("python consumer received %d messages from %d producers, want %d from %d",
						res.Count, len(res.PerID), nprod*n, nprod)
				}
				for id := range nprod {
					g := res.PerID[strconv.Itoa(id)]
					var sum string
					if id < tc.goProducers {
						sum = want[id].sum()
					} else {
						sum = pySums[id]
					}
					if g.Count != n || g.Next != n || g.SHA256 != sum {
						t.Errorf("producer %d: python received %+v, want %d messages up to %d, sha256 %s", id, g, n, n, sum)
					}
				}
			}
			st := r.Stats()
			if st.Sent != uint64(nprod*n) || st.Received != uint64(nprod*n) || st.Head != st.Tail {
				t.Errorf("stats %+v: want %d sent and received, head == tail", st, nprod*n)
			}
			t.Logf("%d messages from %d producers (%d python) in %v", nprod*n, nprod, tc.pyProducers, time.Since(start))
		})
	}
}

func pyReports(ps []*pyProc) string {
	var b strings.Builder
	for _, p := range ps {
		if p != nil {
			b.WriteString(p.report() + "; ")
		}
	}
	return b.String()
}

// TestPythonConsumerKilled: a python consumer killed (SIGKILL) mid-stream
// and replaced by another: nothing it released is lost, and only what it
// had not released comes again, as between Go processes. The consumer
// acknowledges each message on stdout before it releases it (peer.py
// --ack), so what was released is a subset of what was acknowledged.
func TestPythonConsumerKilled(t *testing.T) {
	py := pyPython(t)
	for _, tc := range []struct {
		name      string
		mpsc      bool
		producers int
	}{{"spsc", false, 1}, {"mpsc", true, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			const n, maxLen, killAt = 6000, 600, 4000
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			seed := pySeed(t)
			pat := newPySeededPattern(maxLen, seed)
			opts := Options{Capacity: 8192, Dir: t.TempDir(), Wait: Wait{Mode: Adaptive, PeerCheck: 20 * time.Millisecond}}
			if tc.mpsc {
				opts.Mode, opts.Slots = MPSC, tc.producers
			}
			r, err := Create("pyconskill", opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			path := filepath.Join(opts.Dir, r.Name())
			args := []string{"consume", path, "--timeout", "100", "--stamped", "--check-pattern", strconv.Itoa(maxLen),
				"--seed", strconv.FormatUint(seed, 10), "--peer-check", "0.02"}
			first, acks1 := pyStartAcks(t, ctx, py, args...)
			pyWaitConsumer(t, ctx, r, first)

			done := make(chan error, tc.producers)
			for id := range tc.producers {
				p, err := r.Producer()
				if err != nil {
					t.Fatal(err)
				}
				go func() {
					for i := 0; i < n; {
						err := p.SendContext(ctx, pat.stamped(id, i))
						if errors.Is(err, ErrPeerDead) {
							time.Sleep(time.Millisecond) // until the replacement attaches
							continue
						}
						if err != nil {
							p.Close()
							done <- fmt.Errorf("producer %d, message %d: %w", id, i, err)
							return
						}
						i++
					}
					done <- p.Close()
				}()
			}

			acked := map[int][]int{}
			for count := 0; count < killAt; count++ {
				line, ok := <-acks1
				if !ok {
					t.Fatalf("the first python consumer ended after %d messages: %s", count, first.report())
				}
				id, seq := pyAck(t, line)
				acked[id] = append(acked[id], seq)
			}
			first.cmd.Process.Kill() // SIGKILL, mid-stream
			for line := range acks1 {
				id, seq := pyAck(t, line)
				acked[id] = append(acked[id], seq)
			}
			pyKilled(t, first)

			second, acks2 := pyStartAcks(t, ctx, py, args...)
			again := map[int][]int{}
			for line := range acks2 {
				id, seq := pyAck(t, line)
				again[id] = append(again[id], seq)
			}
			res := second.result(t, ctx)
			if res.Error != "" || res.exitCode != 0 {
				t.Fatalf("second python consumer failed (exit %d): %s: %s\n%s", res.exitCode, res.Error, res.Detail, res.stderr)
			}
			if res.FirstBad == nil || *res.FirstBad != -1 {
				t.Errorf("second python consumer: a message out of order or not the pattern's: %v", res.FirstBad)
			}
			for range tc.producers {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
			redelivered := 0
			for id := range tc.producers {
				a, b := acked[id], again[id]
				for k, seq := range a {
					if seq != k {
						t.Fatalf("producer %d: the first consumer acknowledged %d as its message %d", id, seq, k)
					}
				}
				for k, seq := range b {
					if k > 0 && seq != b[k-1]+1 {
						t.Fatalf("producer %d: the second consumer got %d after %d", id, seq, b[k-1])
					}
				}
				switch {
				case len(b) == 0:
					if len(a) != n {
						t.Errorf("producer %d: %d messages acknowledged, none after: %d lost", id, len(a), n-len(a))
					}
				case b[0] > len(a):
					t.Errorf("producer %d: the second consumer starts at %d, the first acknowledged up to %d: lost %d",
						id, b[0], len(a)-1, b[0]-len(a))
				case b[0] < len(a)-1:
					t.Errorf("producer %d: the second consumer starts at %d, the first released at least up to %d: redelivered released messages",
						id, b[0], len(a)-2)
				case b[len(b)-1] != n-1:
					t.Errorf("producer %d: the second consumer ends at %d, want %d", id, b[len(b)-1], n-1)
				}
				if len(b) > 0 && b[0] == len(a)-1 {
					redelivered++
				}
			}
			if redelivered > 1 {
				t.Errorf("%d messages delivered again; at most the one peeked and not released may be", redelivered)
			}
			t.Logf("killed after %d acknowledged; %d delivered again", killAt, redelivered)
		})
	}
}

// TestPythonProducerKilled: a python producer killed (SIGKILL) mid-stream:
// every message whose send had returned (peer.py --ack prints it then) is
// delivered, nothing twice; then a second python producer takes the lane and
// continues after the last record the first committed.
func TestPythonProducerKilled(t *testing.T) {
	py := pyPython(t)
	const maxLen, killAt, more = 600, 3000, 2000
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	seed := pySeed(t)
	pat := newPySeededPattern(maxLen, seed)
	dir := t.TempDir()
	r, err := Create("pyprodkill", Options{Capacity: 8192, Dir: dir, Wait: Wait{Mode: Adaptive, PeerCheck: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	path := filepath.Join(dir, r.Name())
	c, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	seedArg := strconv.FormatUint(seed, 10)
	first, sent := pyStartAcks(t, ctx, py, "produce", path, "--count", "1000000", "--max-len", strconv.Itoa(maxLen),
		"--id", "0", "--seed", seedArg, "--timeout", "100")

	// The consumer receives until the producer is reported dead.
	var got []int
	recvDone := make(chan error, 1)
	check := func(m []byte) error {
		if len(m) < 8 {
			return fmt.Errorf("message %d: %d bytes", len(got), len(m))
		}
		seq := int(binary.LittleEndian.Uint32(m[4:]))
		if seq != len(got) {
			return fmt.Errorf("message %d is the producer's %d", len(got), seq)
		}
		if !bytes.Equal(m[8:], pat.msg(seq)) {
			return fmt.Errorf("message %d has the wrong body", seq)
		}
		got = append(got, seq)
		return nil
	}
	go func() {
		for {
			m, err := c.RecvContext(ctx)
			if err != nil {
				recvDone <- err
				return
			}
			if err := check(m); err != nil {
				recvDone <- err
				return
			}
		}
	}()
	acked := 0
	for acked < killAt {
		line, ok := <-sent
		if !ok {
			t.Fatalf("the python producer ended after %d sends: %s", acked, first.report())
		}
		if _, seq := pyAck(t, line); seq != acked {
			t.Fatalf("python reports send %d as its %d", seq, acked)
		}
		acked++
	}
	first.cmd.Process.Kill() // SIGKILL, mid-stream
	for line := range sent {
		if _, seq := pyAck(t, line); seq != acked {
			t.Fatalf("python reports send %d as its %d", seq, acked)
		}
		acked++
	}
	pyKilled(t, first)
	if err := <-recvDone; !errors.Is(err, ErrPeerDead) {
		t.Fatalf("receive %d: %v, want ErrPeerDead once the killed producer's records are delivered", len(got), err)
	}
	// Sends that returned are all here; at most one more (committed, killed
	// before it was reported).
	if len(got) < acked || len(got) > acked+1 {
		t.Fatalf("received %d messages, python had reported %d sends", len(got), acked)
	}
	k := len(got)
	second := pyStart(t, ctx, py, "produce", path, "--count", strconv.Itoa(more), "--max-len", strconv.Itoa(maxLen),
		"--id", "0", "--seed", seedArg, "--first", strconv.Itoa(k), "--timeout", "100")
	for {
		m, err := c.RecvContext(ctx)
		if errors.Is(err, ErrPeerDead) {
			time.Sleep(time.Millisecond) // the lane is still the dead producer's
			continue
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("receive %d: %v; %s", len(got), err, second.report())
		}
		if err := check(m); err != nil {
			t.Fatal(err)
		}
	}
	res := second.result(t, ctx)
	if res.Error != "" || res.exitCode != 0 {
		t.Fatalf("second python producer failed (exit %d): %s: %s\n%s", res.exitCode, res.Error, res.Detail, res.stderr)
	}
	if len(got) != k+more {
		t.Errorf("received %d messages, want %d", len(got), k+more)
	}
	t.Logf("killed after %d reported sends, %d committed", acked, k)
}

// pyCPU is the CPU time a process used so far (/proc/PID/stat utime+stime).
func pyCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat: %q", pid, s)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// TestPythonConsumerParks: an idle python consumer parks on the futex and
// uses no CPU, and a Go producer's first message wakes it at once, well
// before its peer check (5 s here) would.
func TestPythonConsumerParks(t *testing.T) {
	py := pyPython(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	r, err := Create("pyparks", Options{Capacity: 4096, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	p, err := r.Producer()
	if err != nil {
		t.Fatal(err)
	}
	cons, acks := pyStartAcks(t, ctx, py, "consume", filepath.Join(dir, r.Name()), "--timeout", "50", "--peer-check", "5")
	pyWaitConsumer(t, ctx, r, cons)
	for round, idle := range []time.Duration{2 * time.Second, 300 * time.Millisecond} {
		time.Sleep(200 * time.Millisecond) // past its spinning: parked
		before := pyCPU(t, cons.cmd.Process.Pid)
		time.Sleep(idle)
		used := pyCPU(t, cons.cmd.Process.Pid) - before
		if used > 30*time.Millisecond {
			t.Errorf("round %d: the idle python consumer used %v of CPU in %v", round, used, idle)
		}
		if parked := le32(r.consParked.Load()); parked == 0 {
			t.Errorf("round %d: the idle python consumer is not parked", round)
		}
		start := time.Now()
		if err := p.Send([]byte("wake")); err != nil {
			t.Fatal(err)
		}
		select {
		case line := <-acks:
			if want := fmt.Sprintf("ack %d", round); line != want {
				t.Fatalf("python printed %q, want %q", line, want)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("round %d: python woke %v after the send: it slept through the wake-up", round, d)
			} else {
				t.Logf("round %d: %v of CPU in %v idle; woke %v after the send", round, used, idle, d)
			}
		case <-time.After(4 * time.Second):
			t.Fatalf("round %d: python did not wake on the message; %s", round, cons.report())
		}
	}
	p.Close()
	if res := cons.result(t, ctx); res.Error != "" || res.Count != 2 {
		t.Errorf("python consumer: %+v, want 2 messages", res)
	}
}
