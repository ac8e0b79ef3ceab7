package ring

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringwire/ringwire/codec"
	"github.com/ringwire/ringwire/shm"
)

// Tests of Open's header validation and of Create's option checks. Every
// segment lives in a t.TempDir(); the header is patched through the file,
// as another process would write it.

// hostileSegSize is the segment size of an SPSC ring of the minimum
// capacity, the geometry most tests here use.
var hostileSegSize = dataOffset(1) + minCapacity

// hostileClosedRing creates a ring with o in dir (a fresh t.TempDir() if
// dir is ""), closes the creating handle, and returns dir and the ring's
// name. The segment stays, as if its creator had exited.
func hostileClosedRing(t *testing.T, dir string, o Options) (string, string) {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	o.Dir = dir
	if o.Capacity == 0 {
		o.Capacity = minCapacity
	}
	r, err := Create("", o)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	name := r.Name()
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return dir, name
}

// hostilePatch writes b at off in the segment file dir/name.
func hostilePatch(t *testing.T, dir, name string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func hostilePatch32(t *testing.T, dir, name string, off int64, v uint32) {
	t.Helper()
	hostilePatch(t, dir, name, off, binary.LittleEndian.AppendUint32(nil, v))
}

func hostilePatch64(t *testing.T, dir, name string, off int64, v uint64) {
	t.Helper()
	hostilePatch(t, dir, name, off, binary.LittleEndian.AppendUint64(nil, v))
}

// hostileSegment makes a plain segment of size bytes holding content at
// offset 0, as a foreign program (a Python SharedMemory) would.
func hostileSegment(t *testing.T, dir, name string, size int, content []byte) {
	t.Helper()
	seg, err := shm.Create(name, size, shm.Dir(dir))
	if err != nil {
		t.Fatalf("shm.Create: %v", err)
	}
	copy(seg.Bytes(), content)
	if err := seg.Close(); err != nil {
		t.Fatal(err)
	}
}

// hostileRandom returns n deterministic pseudo-random bytes.
func hostileRandom(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x686f7374696c65))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestOpenHostileHeader(t *testing.T) {
	type setup func(t *testing.T, dir string) (name string)

	// ring returns a setup that creates a real ring with o and then lets
	// patch change its segment file.
	ring := func(o Options, patch func(t *testing.T, dir, name string)) setup {
		return func(t *testing.T, dir string) string {
			_, name := hostileClosedRing(t, dir, o)
			if patch != nil {
				patch(t, dir, name)
			}
			return name
		}
	}
	u32 := func(off int64, v uint32) func(*testing.T, string, string) {
		return func(t *testing.T, dir, name string) { hostilePatch32(t, dir, name, off, v) }
	}
	u64 := func(off int64, v uint64) func(*testing.T, string, string) {
		return func(t *testing.T, dir, name string) { hostilePatch64(t, dir, name, off, v) }
	}
	truncate := func(size int64) func(*testing.T, string, string) {
		return func(t *testing.T, dir, name string) {
			if err := os.Truncate(filepath.Join(dir, name), size); err != nil {
				t.Fatal(err)
			}
		}
	}
	foreign := func(size int, content []byte) setup {
		return func(t *testing.T, dir string) string {
			hostileSegment(t, dir, "foreign", size, content)
			return "foreign"
		}
	}
	var magicBytes [8]byte
	binary.LittleEndian.PutUint64(magicBytes[:], magic)
	// A Python SharedMemory after buf[:n] = data: arbitrary bytes.
	pythonish := append([]byte("hello from python\x00"), hostileRandom(4096, 1)...)
	// A foreign segment whose first word happens to be zero, with data in
	// the control blocks, where Create writes nothing before it publishes:
	// it cannot be a ring being created.
	zeroFirstWord := append(make([]byte, 200), hostileRandom(300, 2)...)

	seg := uint64(hostileSegSize)
	cs := Options{Checksum: true}
	tests := []struct {
		name     string
		setup    setup
		want     error  // nil: Open must succeed
		wantText string // a part of the message that says what is wrong
	}{
		{"valid ring", ring(Options{}, nil), nil, ""},
		{"valid checksum ring", ring(cs, nil), nil, ""},
		{"max frame equal to the header length is valid", ring(cs, u32(offMaxFrame, 16)), nil, ""},

		{"missing name", func(*testing.T, string) string { return "no-such-ring" }, fs.ErrNotExist, ""},

		{"foreign python data", foreign(8192, pythonish), ErrForeign, "magic"},
		{"foreign zero first word", foreign(4096, zeroFirstWord), ErrForeign, "magic"},
		{"foreign zero first word, then not our version", foreign(4096, []byte{7: 0, 8: 0x78, 9: 0x56, 10: 0x34, 11: 0x12}), ErrForeign, "magic"},
		{"foreign 7 bytes of magic", foreign(7, magicBytes[:7]), ErrForeign, "7 bytes"},
		{"foreign 4 zero bytes", foreign(4, nil), ErrForeign, "4 bytes"},
		{"foreign 1 byte", foreign(1, []byte{'R'}), ErrForeign, "1 bytes"},
		{"magic off by one bit", ring(Options{}, u64(offMagic, magic^1)), ErrForeign, "magic"},

		{"version 1", ring(Options{}, u32(offVersion, 1)), ErrVersion, "version 1"},
		{"version 3", ring(Options{}, u32(offVersion, 3)), ErrVersion, "version 3"},
		{"version 0", ring(Options{}, u32(offVersion, 0)), ErrVersion, "version 0"},
		{"version max", ring(Options{}, u32(offVersion, math.MaxUint32)), ErrVersion, "version"},

		{"truncated below the segment size", ring(Options{}, truncate(int64(seg)-minCapacity/2)), ErrTruncated, "header says"},
		{"truncated to the data offset", ring(Options{}, truncate(int64(dataOffset(1)))), ErrTruncated, "header says"},
		{"truncated by one byte", ring(Options{}, truncate(int64(seg)-1)), ErrTruncated, "header says"},
		{"truncated below 1024 bytes", ring(Options{}, truncate(512)), ErrTruncated, "512 bytes"},
		{"truncated to the magic", ring(Options{}, truncate(8)), ErrTruncated, "8 bytes"},

		{"unknown flag bit", ring(Options{}, u32(offFlags, 1<<2)), ErrCorrupt, "flags"},
		{"unknown high flag bit", ring(Options{}, u32(offFlags, flagChecksum|1<<31)), ErrCorrupt, "flags"},
		{"capacity not a power of two", ring(Options{}, u64(offCapacity, 6000)), ErrCorrupt, "capacity 6000"},
		{"capacity below 4096", ring(Options{}, u64(offCapacity, 2048)), ErrCorrupt, "capacity 2048"},
		{"capacity zero", ring(Options{}, u64(offCapacity, 0)), ErrCorrupt, "capacity 0"},
		{"capacity above 2^40", ring(Options{}, u64(offCapacity, 1<<41)), ErrCorrupt, "capacity"},
		{"capacity 2^63", ring(Options{}, u64(offCapacity, 1<<63)), ErrCorrupt, "capacity"},
		{"SPSC with 2 slots", ring(Options{}, u32(offLanes, 2)), ErrCorrupt, "2 lanes"},
		{"slots 0", ring(Options{}, u32(offLanes, 0)), ErrCorrupt, "0 lanes"},
		{"MPSC with too many slots", ring(Options{}, func(t *testing.T, dir, name string) {
			hostilePatch32(t, dir, name, offFlags, flagMPSC)
			hostilePatch32(t, dir, name, offLanes, maxLanes+1)
		}), ErrCorrupt, "lanes"},
		{"data offset wrong", ring(Options{}, u64(offDataOff, 2*pageSize)), ErrCorrupt, "data offset"},
		{"data offset zero", ring(Options{}, u64(offDataOff, 0)), ErrCorrupt, "data offset"},
		{"segment size too large", ring(Options{}, u64(offSegSize, seg+pageSize)), ErrCorrupt, "segment size"},
		{"segment size too small", ring(Options{}, u64(offSegSize, seg-8)), ErrCorrupt, "segment size"},
		{"max frame above capacity/2", ring(Options{}, u32(offMaxFrame, minCapacity/2+1)), ErrCorrupt, "max frame"},
		{"max frame huge", ring(Options{}, u32(offMaxFrame, math.MaxUint32)), ErrCorrupt, "max frame"},
		{"max frame below the header length", ring(Options{}, u32(offMaxFrame, 7)), ErrCorrupt, "max frame"},
		{"max frame below the checksum header length", ring(cs, u32(offMaxFrame, 15)), ErrCorrupt, "max frame"},
		{"max frame zero", ring(Options{}, u32(offMaxFrame, 0)), ErrCorrupt, "max frame"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			name := tt.setup(t, dir)
			start := time.Now()
			r, err := Open(name, AttachOptions{Dir: dir, Timeout: time.Second})
			elapsed := time.Since(start)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Open: %v, want success", err)
				}
				defer r.Close()
				if r.Name() != name || r.Capacity() != minCapacity || r.Mode() != SPSC {
					t.Errorf("Open gave name %q capacity %d mode %v, want %q %d %v",
						r.Name(), r.Capacity(), r.Mode(), name, minCapacity, SPSC)
				}
				return
			}
			if err == nil {
				r.Close()
				t.Fatalf("Open succeeded, want %v", tt.want)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open: %v, want an error matching %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), name) {
				t.Errorf("Open: %q does not name the ring %q", err, name)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("Open: %q does not say %q", err, tt.wantText)
			}
			// Only an unpublished header is waited for: a bad one fails
			// at once.
			if elapsed > 500*time.Millisecond {
				t.Errorf("Open took %v to fail with %v: it waited for a header that was there", elapsed, tt.want)
			}
		})
	}
}

func TestOpenHostileNotReady(t *testing.T) {
	const timeout = 50 * time.Millisecond
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"zero-filled segment of a ring's size", func(t *testing.T, dir string) {
			hostileSegment(t, dir, "r", hostileSegSize, nil)
		}},
		{"zero-filled header block, nothing else", func(t *testing.T, dir string) {
			hostileSegment(t, dir, "r", offLaneTable, nil)
		}},
		{"header fields written, magic not yet", func(t *testing.T, dir string) {
			// What Create leaves for a moment: a ring being built.
			_, model := hostileClosedRing(t, dir, Options{})
			hdr, err := os.ReadFile(filepath.Join(dir, model))
			if err != nil {
				t.Fatal(err)
			}
			clear(hdr[offMagic : offMagic+8])
			hostileSegment(t, dir, "r", hostileSegSize, hdr[:offLaneTable])
		}},
		{"empty file", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "r"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			start := time.Now()
			r, err := Open("r", AttachOptions{Dir: dir, Timeout: timeout})
			elapsed := time.Since(start)
			if err == nil {
				r.Close()
				t.Fatal("Open of an unpublished ring succeeded")
			}
			if !errors.Is(err, ErrNotReady) {
				t.Fatalf("Open: %v, want ErrNotReady", err)
			}
			if !strings.Contains(err.Error(), `"r"`) {
				t.Errorf("Open: %q does not name the ring", err)
			}
			if elapsed < timeout {
				t.Errorf("Open gave up after %v, before the %v timeout", elapsed, timeout)
			}
			if elapsed > 5*time.Second {
				t.Errorf("Open took %v with a %v timeout", elapsed, timeout)
			}
		})
	}
}

// TestOpenHostileWaitsForPublish starts Open on a segment whose header is
// not published yet, publishes it as Create does (the magic word last,
// atomically) while Open waits, and expects Open to succeed. The
// half-written case is the state Create leaves for a moment: every header
// field in place, the magic not yet stored.
func TestOpenHostileWaitsForPublish(t *testing.T) {
	tests := []struct {
		name        string
		fieldsFirst bool // the header fields are there before Open starts
	}{
		{"zero segment", false},
		{"fields written, magic not yet", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, model := hostileClosedRing(t, "", Options{Checksum: true, MaxMessage: 1000})
			hdr, err := os.ReadFile(filepath.Join(dir, model))
			if err != nil {
				t.Fatal(err)
			}
			hdr = hdr[:blockSize]
			seg, err := shm.Create("pending", hostileSegSize, shm.Dir(dir))
			if err != nil {
				t.Fatal(err)
			}
			defer seg.Close()
			// seg is this test's own mapping: Open maps the file again.
			b := seg.Bytes()
			if tt.fieldsFirst {
				copy(b[offVersion:blockSize], hdr[offVersion:])
			}

			type result struct {
				r   *Ring
				err error
			}
			done := make(chan result, 1)
			go func() {
				r, err := Open("pending", AttachOptions{Dir: dir, Timeout: 2 * time.Second})
				done <- result{r, err}
			}()
			// The one sleep of this file: give Open time to find the
			// header unpublished and start waiting.
			time.Sleep(30 * time.Millisecond)
			select {
			case res := <-done:
				if res.r != nil {
					res.r.Close()
				}
				t.Fatalf("Open returned before the header was published: %v", res.err)
			default:
			}
			copy(b[offVersion:blockSize], hdr[offVersion:])
			magicWord(b).Store(le64(binary.LittleEndian.Uint64(hdr[offMagic:])))

			res := <-done
			if res.err != nil {
				t.Fatalf("Open: %v, want success once the header is published", res.err)
			}
			defer res.r.Close()
			if res.r.Capacity() != minCapacity || !res.r.Checksum() || res.r.MaxMessage() != 1000 {
				t.Errorf("Open read capacity %d checksum %v max message %d, want %d true 1000",
					res.r.Capacity(), res.r.Checksum(), res.r.MaxMessage(), minCapacity)
			}
		})
	}
}

// TestOpenHostileLeavesSegmentUnchanged: attaching neither resets nor
// repairs, whether the segment is a ring in use or not a ring at all.
func TestOpenHostileLeavesSegmentUnchanged(t *testing.T) {
	tests := []struct {
		name     string
		readOnly bool
		setup    func(t *testing.T, dir string) (name string, ok bool)
	}{
		{"ring with traffic", false, hostileUsedRing},
		{"ring with traffic, read-only", true, hostileUsedRing},
		{"zero-filled segment", false, func(t *testing.T, dir string) (string, bool) {
			hostileSegment(t, dir, "zero", hostileSegSize, nil)
			return "zero", false
		}},
		{"foreign segment", false, func(t *testing.T, dir string) (string, bool) {
			hostileSegment(t, dir, "foreign", hostileSegSize, hostileRandom(hostileSegSize, 3))
			return "foreign", false
		}},
		{"corrupt header", false, func(t *testing.T, dir string) (string, bool) {
			name, _ := hostileUsedRing(t, dir)
			hostilePatch32(t, dir, name, offLanes, 0)
			return name, false
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			name, ok := tt.setup(t, dir)
			path := filepath.Join(dir, name)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Open(name, AttachOptions{Dir: dir, ReadOnly: tt.readOnly, Timeout: 20 * time.Millisecond})
			if ok != (err == nil) {
				t.Fatalf("Open: %v, want success %v", err, ok)
			}
			if err == nil {
				if r.Stats().Sent != 3 {
					t.Errorf("Stats().Sent = %d, want 3", r.Stats().Sent)
				}
				if err := r.Close(); err != nil {
					t.Fatal(err)
				}
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				i := 0
				for i < min(len(before), len(after)) && before[i] == after[i] {
					i++
				}
				t.Fatalf("Open and Close changed the segment: first difference at byte %d (%d bytes before, %d after)",
					i, len(before), len(after))
			}
		})
	}
}

// hostileUsedRing makes a ring with some traffic in dir and closes every
// handle on it: three messages sent, one received.
func hostileUsedRing(t *testing.T, dir string) (string, bool) {
	t.Helper()
	r, err := Create("", Options{Dir: dir, Capacity: minCapacity, Checksum: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := r.Producer()
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Consumer()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"one", "two", "three"} {
		if err := p.TrySend([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.TryRecv(); err != nil {
		t.Fatal(err)
	}
	return r.Name(), true
}

func TestOpenHostileCreateOptions(t *testing.T) {
	const hl, hlc = codec.HeaderSize, codec.HeaderSize + codec.ChecksumSize
	tests := []struct {
		name    string
		o       Options
		want    error // nil: Create must succeed with the geometry below
		wantCap int
		wantMax int
	}{
		{"capacity 5000 rounds up", Options{Capacity: 5000}, nil, 8192, 4096 - hl},
		{"capacity 4097 rounds up", Options{Capacity: 4097}, nil, 8192, 4096 - hl},
		{"capacity 4096 stays", Options{Capacity: 4096}, nil, 4096, 2048 - hl},
		{"capacity 1 rounds to the minimum", Options{Capacity: 1}, nil, 4096, 2048 - hl},
		{"capacity 0 is the default", Options{}, nil, DefaultCapacity, DefaultCapacity/2 - hl},
		{"capacity 0 with checksums", Options{Checksum: true}, nil, DefaultCapacity, DefaultCapacity/2 - hlc},
		{"capacity -1", Options{Capacity: -1}, ErrBadOptions, 0, 0},
		{"capacity MinInt", Options{Capacity: math.MinInt}, ErrBadOptions, 0, 0},
		{"capacity 2^40+1", Options{Capacity: 1<<40 + 1}, ErrBadOptions, 0, 0},
		{"capacity MaxInt", Options{Capacity: math.MaxInt}, ErrBadOptions, 0, 0},

		{"max message at the limit", Options{Capacity: 4096, MaxMessage: 2048 - hl}, nil, 4096, 2048 - hl},
		{"max message at the checksum limit", Options{Capacity: 4096, MaxMessage: 2048 - hlc, Checksum: true}, nil, 4096, 2048 - hlc},
		{"max message 100", Options{Capacity: 4096, MaxMessage: 100}, nil, 4096, 100},
		{"max message 1", Options{Capacity: 4096, MaxMessage: 1, Checksum: true}, nil, 4096, 1},
		{"max message one over the limit", Options{Capacity: 4096, MaxMessage: 2048 - hl + 1}, ErrBadOptions, 0, 0},
		{"max message one over the checksum limit", Options{Capacity: 4096, MaxMessage: 2048 - hlc + 1, Checksum: true}, ErrBadOptions, 0, 0},
		{"max message equal to the capacity", Options{Capacity: 4096, MaxMessage: 4096}, ErrBadOptions, 0, 0},
		{"max message -1", Options{Capacity: 4096, MaxMessage: -1}, ErrBadOptions, 0, 0},
		{"max message MaxInt", Options{Capacity: 4096, MaxMessage: math.MaxInt}, ErrBadOptions, 0, 0},
		{"max message MaxInt-8", Options{Capacity: 4096, MaxMessage: math.MaxInt - 8}, ErrBadOptions, 0, 0},
		{"max message MaxInt32", Options{Capacity: 4096, MaxMessage: math.MaxInt32}, ErrBadOptions, 0, 0},

		{"SPSC with 2 slots", Options{Capacity: 4096, Slots: 2}, ErrBadOptions, 0, 0},
		{"unknown mode", Options{Capacity: 4096, Mode: Mode(7)}, ErrBadOptions, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.o.Dir = dir
			r, err := Create("", tt.o)
			if tt.want != nil {
				if err == nil {
					r.Close()
					t.Fatalf("Create succeeded with capacity %d, max message %d; want %v", r.Capacity(), r.MaxMessage(), tt.want)
				}
				if !errors.Is(err, tt.want) {
					t.Fatalf("Create: %v, want %v", err, tt.want)
				}
				if ents, _ := os.ReadDir(dir); len(ents) != 0 {
					t.Errorf("Create failed and left %d files behind", len(ents))
				}
				return
			}
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			defer r.Close()
			if r.Capacity() != tt.wantCap || r.MaxMessage() != tt.wantMax {
				t.Fatalf("Create gave capacity %d, max message %d; want %d, %d", r.Capacity(), r.MaxMessage(), tt.wantCap, tt.wantMax)
			}
			// The header says the same to another process.
			o, err := Open(r.Name(), AttachOptions{Dir: dir})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer o.Close()
			if o.Capacity() != tt.wantCap || o.MaxMessage() != tt.wantMax || o.Checksum() != tt.o.Checksum {
				t.Errorf("Open read capacity %d, max message %d, checksum %v; want %d, %d, %v",
					o.Capacity(), o.MaxMessage(), o.Checksum(), tt.wantCap, tt.wantMax, tt.o.Checksum)
			}
			// And the producer honours the maximum.
			p, err := r.Producer()
			if err != nil {
				t.Fatal(err)
			}
			if err := p.TrySend(make([]byte, tt.wantMax+1)); !errors.Is(err, ErrTooLarge) {
				t.Errorf("TrySend of max message + 1 bytes: %v, want ErrTooLarge", err)
			}
			if err := p.TrySend(make([]byte, tt.wantMax)); err != nil {
				t.Errorf("TrySend of max message bytes: %v", err)
			}
		})
	}
}

func TestOpenHostileCreateExisting(t *testing.T) {
	dir := t.TempDir()
	r, err := Create("taken", Options{Dir: dir, Capacity: minCapacity})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := r.Producer()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.TrySend([]byte("still here")); err != nil {
		t.Fatal(err)
	}
	for _, o := range []Options{{Capacity: minCapacity}, {Capacity: 1 << 16, Checksum: true}} {
		o.Dir = dir
		r2, err := Create("taken", o)
		if err == nil {
			r2.Close()
			t.Fatal("Create of an existing name succeeded")
		}
		if !errors.Is(err, fs.ErrExist) {
			t.Fatalf("Create of an existing name: %v, want fs.ErrExist", err)
		}
		if !strings.Contains(err.Error(), "taken") {
			t.Errorf("Create: %q does not name the ring", err)
		}
	}
	// The existing ring is untouched.
	c, err := OpenConsumer("taken", AttachOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if m, err := c.TryRecv(); err != nil || string(m) != "still here" {
		t.Fatalf("TryRecv after the failed Creates: %q, %v", m, err)
	}
}

// TestOpenHostileCreateHugeCapacity checks the geometry Create would
// write for capacities of 2^32 bytes and more (too large to create in a
// test): the max frame length must fit the header's u32 field, which
// Create stores it in, and the frame's int32 length word, which carries
// every frame's length.
func TestOpenHostileCreateHugeCapacity(t *testing.T) {
	for _, capacity := range []int{1 << 31, 1 << 32, 1 << 33, 1 << 40} {
		for _, checksum := range []bool{false, true} {
			g, err := Options{Capacity: capacity, Checksum: checksum}.geometry()
			if err != nil {
				t.Errorf("capacity %d: %v", capacity, err)
				continue
			}
			if g.maxFrame > codec.MaxLength || uint64(uint32(g.maxFrame)) != uint64(g.maxFrame) {
				t.Errorf("capacity %d, checksum %v: max frame %d does not fit a frame's int32 length word (header field would read %d)",
					capacity, checksum, g.maxFrame, uint32(g.maxFrame))
			}
		}
	}
}
