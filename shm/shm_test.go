package shm_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringwire/ringwire/shm"
	"golang.org/x/sys/unix"
)

// The test binary re-executes itself as a child process for the
// cross-process tests; childEnv selects what the child does.
const childEnv = "RINGWIRE_SHM_TEST_CHILD"

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(child(role, os.Args[len(os.Args)-2], os.Args[len(os.Args)-1]))
	}
	os.Exit(m.Run())
}

// child runs one role in a child process: dir is the segment directory,
// name the segment.
func child(role, dir, name string) int {
	switch role {
	case "create-exit":
		s, err := shm.Create(name, 4096, shm.Dir(dir))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		copy(s.Bytes(), "made by child")
		return 0 // exits without Close or Unlink
	case "attach-exit":
		s, err := shm.Open(name, shm.Dir(dir))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		s.Bytes()[0] = 'A'
		return 0
	case "lock-hang":
		s, err := shm.Open(name, shm.Dir(dir))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if _, err := s.TryLock(100, 1); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("locked")
		time.Sleep(time.Minute) // until SIGKILLed
		return 0
	}
	return 2
}

func runChild(t *testing.T, role, dir, name string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", dir, name)
	cmd.Env = append(os.Environ(), childEnv+"="+role)
	cmd.Stderr = os.Stderr
	return cmd
}

func TestCreateOpenShareBytes(t *testing.T) {
	dir := t.TempDir()
	s, err := shm.Create("share", 10000, shm.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Size() != 10000 || len(s.Bytes()) != 10000 || s.Name() != "share" || !s.Owner() {
		t.Fatalf("size %d len %d name %q owner %v", s.Size(), len(s.Bytes()), s.Name(), s.Owner())
	}
	if !bytes.Equal(s.Bytes(), make([]byte, 10000)) {
		t.Fatal("new segment is not zero-filled")
	}
	copy(s.Bytes()[9990:], "0123456789")

	o, err := shm.Open("/share", shm.Dir(dir)) // a leading '/' is accepted
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.Size() != 10000 || o.Owner() {
		t.Fatalf("opened size %d owner %v", o.Size(), o.Owner())
	}
	if got := string(o.Bytes()[9990:]); got != "0123456789" {
		t.Fatalf("opened segment reads %q", got)
	}
	o.Bytes()[0] = 7
	if s.Bytes()[0] != 7 {
		t.Fatal("write through the second mapping is not seen by the first")
	}
}

func TestDefaultDirIsDevShm(t *testing.T) {
	if _, err := os.Stat("/dev/shm"); err != nil {
		t.Skipf("skipping: no /dev/shm on this machine: %v", err)
	}
	s, err := shm.Create("", 4096)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); s.Unlink() })
	if want := filepath.Join("/dev/shm", s.Name()); s.Path() != want {
		t.Fatalf("path %q, want %q", s.Path(), want)
	}
	if _, err := os.Stat(s.Path()); err != nil {
		t.Fatal(err)
	}
}

func TestCreateIsExclusive(t *testing.T) {
	dir := t.TempDir()
	s, err := shm.Create("x", 4096, shm.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	copy(s.Bytes(), "keep")
	_, err = shm.Create("x", 8192, shm.Dir(dir))
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Create: %v, want fs.ErrExist", err)
	}
	if string(s.Bytes()[:4]) != "keep" {
		t.Fatal("failed Create changed the existing segment")
	}
	if fi, err := os.Stat(s.Path()); err != nil || fi.Size() != 4096 {
		t.Fatalf("existing segment after failed Create: %v, %v", fi, err)
	}
}

func TestUniqueNames(t *testing.T) {
	dir := t.TempDir()
	seen := map[string]bool{}
	for range 20 {
		s, err := shm.Create("", 64, shm.Dir(dir))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if seen[s.Name()] {
			t.Fatalf("name %q made twice", s.Name())
		}
		if _, err := shm.CleanName(s.Name()); err != nil {
			t.Fatalf("made name %q is not valid: %v", s.Name(), err)
		}
		seen[s.Name()] = true
	}
}

func TestNames(t *testing.T) {
	long := strings.Repeat("n", 254)
	for _, tc := range []struct {
		in, want string
		why      string // part of the error, "" if valid
	}{
		{"a", "a", ""},
		{"/a", "a", ""},
		{"psm_1234", "psm_1234", ""},
		{long, long, ""},
		{"/" + long, long, ""},
		{"", "", "empty"},
		{"/", "", "empty"},
		{"//a", "", "'/'"},
		{"a/b", "", "'/'"},
		{"a/", "", "'/'"},
		{long + "n", "", "255 bytes"},
		{".", "", "directory"},
		{"/..", "", "directory"},
		{"a\x00b", "", "NUL"},
	} {
		got, err := shm.CleanName(tc.in)
		if tc.why == "" {
			if err != nil || got != tc.want {
				t.Errorf("CleanName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		if !errors.Is(err, shm.ErrInvalidName) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("CleanName(%q) error %v; want ErrInvalidName saying %q", tc.in, err, tc.why)
		}
		if _, err := shm.Create(tc.in, 64, shm.Dir(t.TempDir())); tc.in != "" && !errors.Is(err, shm.ErrInvalidName) {
			t.Errorf("Create(%q): %v, want ErrInvalidName", tc.in, err)
		}
		if _, err := shm.Open(tc.in, shm.Dir(t.TempDir())); !errors.Is(err, shm.ErrInvalidName) {
			t.Errorf("Open(%q): %v, want ErrInvalidName", tc.in, err)
		}
	}
}

func TestCreateBadSize(t *testing.T) {
	for _, size := range []int{0, -1} {
		if _, err := shm.Create("s", size, shm.Dir(t.TempDir())); !errors.Is(err, shm.ErrEmpty) {
			t.Errorf("Create size %d: %v, want ErrEmpty", size, err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(filepath.Join(dir, "adir"), 0o700))
	must(os.WriteFile(filepath.Join(dir, "target"), make([]byte, 64), 0o600))
	must(os.Symlink(filepath.Join(dir, "target"), filepath.Join(dir, "alink")))
	must(os.WriteFile(filepath.Join(dir, "empty"), nil, 0o600))
	must(unix.Mkfifo(filepath.Join(dir, "afifo"), 0o600))

	for _, tc := range []struct {
		name string
		want error
	}{
		{"missing", fs.ErrNotExist},
		{"adir", shm.ErrNotSegment},
		{"alink", shm.ErrNotSegment},
		{"afifo", shm.ErrNotSegment},
		{"empty", shm.ErrEmpty},
	} {
		for _, ro := range []bool{false, true} {
			opts := []shm.Option{shm.Dir(dir)}
			if ro {
				opts = append(opts, shm.ReadOnly())
			}
			s, err := shm.Open(tc.name, opts...)
			if !errors.Is(err, tc.want) {
				t.Errorf("Open(%q, readonly=%v) = %v, %v; want %v", tc.name, ro, s, err, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), tc.name) {
				t.Errorf("error %q does not name the segment", err)
			}
		}
	}
}

func TestCloseNeverUnlinks(t *testing.T) {
	dir := t.TempDir()
	s, err := shm.Create("stay", 4096, shm.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	copy(s.Bytes(), "persist")
	o, err := shm.Open("stay", shm.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*shm.Segment{o, o, s, s} { // twice each: the second Close is a no-op
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if s.Bytes() != nil {
		t.Fatal("Bytes after Close is not nil")
	}
	again, err := shm.Open("stay", shm.Dir(dir))
	if err != nil {
		t.Fatalf("segment gone after its owner and an attacher closed: %v", err)
	}
	defer again.Close()
	if string(again.Bytes()[:7]) != "persist" {
		t.Fatal("contents lost after Close")
	}
}

// TestSegmentOutlivesProcesses: a child that creates a segment and exits
// without cleaning up leaves it in place, and so does a child that merely
// attached (the bug Python's resource tracker had).
func TestSegmentOutlivesProcesses(t *testing.T) {
	dir := t.TempDir()
	if err := runChild(t, "create-exit", dir, "orphan").Run(); err != nil {
		t.Fatalf("child: %v", err)
	}
	s, err := shm.Open("orphan", shm.Dir(dir))
	if err != nil {
		t.Fatalf("segment gone after its creator exited: %v", err)
	}
	defer s.Close()
	if string(s.Bytes()[:13]) != "made by child" {
		t.Fatalf("contents %q", s.Bytes()[:13])
	}
	if err := runChild(t, "attach-exit", dir, "orphan").Run(); err != nil {
		t.Fatalf("child: %v", err)
	}
	if s.Bytes()[0] != 'A' {
		t.Fatal("attaching child's write not seen")
	}
	if _, err := os.Stat(filepath.Join(dir, "orphan")); err != nil {
		t.Fatalf("segment gone after an attached process exited: %v", err)
	}
}

func TestUnlink(t *testing.T) {
	dir := t.TempDir()
	s, err := shm.Create("gone", 4096, shm.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	copy(s.Bytes(), "still mapped")
	if err := s.Unlink(); err != nil {
		t.Fatal(err)
	}
	if _, err := shm.Open("gone", shm.Dir(dir)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open after Unlink: %v", err)
	}
	if string(s.Bytes()[:12]) != "still mapped" {
		t.Fatal("mapping lost by Unlink")
	}
	if err := s.Unlink(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("second Unlink: %v, want fs.ErrNotExist", err)
	}
	s.Close()

	// A name reused by another segment is not removed through a stale handle.
	old, err := shm.Create("reused", 4096, shm.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := shm.Unlink("/reused", shm.Dir(dir)); err != nil {
		t.Fatal(err)
	}
	fresh, err := shm.Create("reused", 4096, shm.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if err := old.Unlink(); !errors.Is(err, shm.ErrReplaced) {
		t.Fatalf("Unlink through a stale handle: %v, want ErrReplaced", err)
	}
	if _, err := os.Stat(fresh.Path()); err != nil {
		t.Fatalf("the newer segment was removed: %v", err)
	}
	if err := shm.Unlink("never", shm.Dir(dir)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Unlink of a missing name: %v", err)
	}
}

func TestMode(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	for _, tc := range []struct {
		opts []shm.Option
		want os.FileMode
	}{
		{nil, 0o600},
		{[]shm.Option{shm.Mode(0o660)}, 0o660},
		{[]shm.Option{shm.Mode(0o644)}, 0o644},
	} {
		s, err := shm.Create("", 64, append(tc.opts, shm.Dir(dir))...)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(s.Path())
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != tc.want {
			t.Errorf("mode %v, want %v", fi.Mode().Perm(), tc.want)
		}
		s.Close()
	}
}

func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	s, err := shm.Create("ro", 4096, shm.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	copy(s.Bytes(), "hello")
	r, err := shm.Open("ro", shm.Dir(dir), shm.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.ReadOnly() || string(r.Bytes()[:5]) != "hello" {
		t.Fatalf("read-only view: %v %q", r.ReadOnly(), r.Bytes()[:5])
	}
	// A write through the read-only mapping faults; SetPanicOnFault turns the
	// fault into a recoverable panic.
	faulted := func() (faulted bool) {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() { faulted = recover() != nil }()
		r.Bytes()[0] = 'X'
		return false
	}()
	if !faulted || s.Bytes()[0] != 'h' {
		t.Fatalf("write through a read-only mapping: faulted %v, byte %q", faulted, s.Bytes()[0])
	}
}

func TestLocks(t *testing.T) {
	dir := t.TempDir()
	s, err := shm.Create("locks", 4096, shm.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if held, err := s.Locked(0, 8); err != nil || held {
		t.Fatalf("fresh segment Locked = %v, %v", held, err)
	}
	l, err := s.TryLock(0, 8)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.TryLock(4, 1); !errors.Is(err, shm.ErrLocked) {
		t.Fatalf("overlapping TryLock: %v, want ErrLocked", err)
	}
	if _, err := s.TryRLock(7, 10); !errors.Is(err, shm.ErrLocked) {
		t.Fatalf("overlapping TryRLock: %v, want ErrLocked", err)
	}
	other, err := s.TryLock(8, 8) // adjacent, not overlapping
	if err != nil {
		t.Fatal(err)
	}
	defer other.Unlock()
	if held, _ := s.Locked(0, 1); !held {
		t.Fatal("Locked does not see a held lock")
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal("second Unlock:", err)
	}
	if held, _ := s.Locked(0, 8); held {
		t.Fatal("Locked after Unlock")
	}
	r1, err := s.TryRLock(100, 1)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.TryRLock(100, 1)
	if err != nil {
		t.Fatal("shared locks must coexist:", err)
	}
	if _, err := s.TryLock(100, 1); !errors.Is(err, shm.ErrLocked) {
		t.Fatalf("TryLock over shared locks: %v", err)
	}
	r1.Unlock()
	r2.Unlock()
	if l, err := s.TryLock(100, 1); err != nil {
		t.Fatal(err)
	} else {
		l.Unlock()
	}
	if _, err := s.TryLock(-1, 1); !errors.Is(err, shm.ErrOutOfBounds) {
		t.Fatalf("negative lock offset: %v", err)
	}
	s.Close()
	if _, err := s.TryLock(0, 1); !errors.Is(err, shm.ErrClosed) {
		t.Fatalf("TryLock after Close: %v", err)
	}
}

// TestLockDiesWithProcess: the kernel drops a SIGKILLed process's lock, so a
// held lock proves its holder alive and a dropped one proves it dead.
func TestLockDiesWithProcess(t *testing.T) {
	dir := t.TempDir()
	s, err := shm.Create("liveness", 4096, shm.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cmd := runChild(t, "lock-hang", dir, "liveness")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := out.Read(buf); err != nil || string(buf) != "locked\n" {
		cmd.Process.Kill()
		t.Fatalf("child: %q, %v", buf, err)
	}
	if held, _ := s.Locked(100, 1); !held {
		t.Error("child's lock not seen")
	}
	if _, err := s.TryLock(100, 1); !errors.Is(err, shm.ErrLocked) {
		t.Errorf("TryLock while the child holds it: %v", err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if held, _ := s.Locked(100, 1); held {
		t.Fatal("lock still held after its holder was SIGKILLed")
	}
	l, err := s.TryLock(100, 1)
	if err != nil {
		t.Fatal("lock not free after its holder died:", err)
	}
	l.Unlock()
}

type plainRec struct {
	A uint64
	B [3]uint32
	C atomic.Uint32
	D bool
}

func TestView(t *testing.T) {
	buf := make([]byte, 256)
	u64, err := shm.View[uint64](buf, 8, 4)
	if err != nil {
		t.Fatal(err)
	}
	u64[1] = 0x0102030405060708
	if buf[16] != 0x08 && buf[16] != 0x01 {
		t.Fatal("view does not alias the buffer")
	}
	if v, err := shm.View[uint64](buf, 0, 32); err != nil || len(v) != 32 {
		t.Fatalf("whole-buffer view: %v", err)
	}
	if v, err := shm.View[byte](buf, 256, 0); err != nil || len(v) != 0 {
		t.Fatalf("empty view at the end: %v", err)
	}
	p, err := shm.Ptr[atomic.Uint64](buf, 64)
	if err != nil {
		t.Fatal(err)
	}
	p.Store(42)
	if q, _ := shm.Ptr[atomic.Uint64](buf, 64); q.Load() != 42 {
		t.Fatal("Ptr does not alias the buffer")
	}
	if _, err := shm.Ptr[plainRec](buf, 0); err != nil {
		t.Fatalf("plain struct refused: %v", err)
	}

	for _, tc := range []struct {
		name string
		err  error
		fn   func() error
	}{
		{"past the end", shm.ErrOutOfBounds, func() error { _, err := shm.View[uint64](buf, 8, 32); return err }},
		{"offset past the end", shm.ErrOutOfBounds, func() error { _, err := shm.View[byte](buf, 257, 0); return err }},
		{"negative offset", shm.ErrOutOfBounds, func() error { _, err := shm.View[byte](buf, -1, 1); return err }},
		{"negative count", shm.ErrOutOfBounds, func() error { _, err := shm.View[byte](buf, 0, -1); return err }},
		{"count overflow", shm.ErrOutOfBounds, func() error { _, err := shm.View[uint64](buf, 0, 1<<62); return err }},
		{"misaligned", shm.ErrMisaligned, func() error { _, err := shm.View[uint64](buf, 4, 1); return err }},
		{"misaligned atomic", shm.ErrMisaligned, func() error { _, err := shm.Ptr[atomic.Uint32](buf, 2); return err }},
		{"pointer", shm.ErrNotPlain, func() error { _, err := shm.Ptr[*int](buf, 0); return err }},
		{"string", shm.ErrNotPlain, func() error { _, err := shm.View[string](buf, 0, 1); return err }},
		{"slice in struct", shm.ErrNotPlain, func() error { _, err := shm.Ptr[struct{ A []byte }](buf, 0); return err }},
		{"map", shm.ErrNotPlain, func() error { _, err := shm.Ptr[map[int]int](buf, 0); return err }},
		{"atomic pointer", shm.ErrNotPlain, func() error { _, err := shm.Ptr[atomic.Pointer[int]](buf, 0); return err }},
	} {
		if err := tc.fn(); !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
}

func Example() {
	dir, _ := os.MkdirTemp("", "shm-example")
	defer os.RemoveAll(dir)

	// The owner creates the segment...
	owner, err := shm.Create("example", 4096, shm.Dir(dir))
	if err != nil {
		panic(err)
	}
	copy(owner.Bytes(), "hello from the owner")

	// ...another process attaches by name and sees the same bytes.
	peer, err := shm.Open("example", shm.Dir(dir))
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s, %d bytes\n", peer.Bytes()[:20], peer.Size())

	// Closing never removes the name; only the owner's Unlink does.
	peer.Close()
	owner.Close()
	_, err = os.Stat(filepath.Join(dir, "example"))
	fmt.Println("exists after Close:", err == nil)
	owner.Unlink()
	_, err = os.Stat(filepath.Join(dir, "example"))
	fmt.Println("exists after Unlink:", err == nil)
	// Output:
	// hello from the owner, 4096 bytes
	// exists after Close: true
	// exists after Unlink: false
}
