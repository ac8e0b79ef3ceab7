package shm_test

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/ringwire/ringwire/shm"
	"golang.org/x/sys/unix"
)

// smallTmpfs mounts a 1 MiB tmpfs in a fresh directory, or skips with the
// reason it cannot.
func smallTmpfs(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: mounting a 1 MiB tmpfs needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("ringwire-test", dir, "tmpfs", 0, "size=1m,mode=0700"); err != nil {
		t.Skipf("skipping: cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestCreateFullTmpfs: on a full tmpfs, Create fails with ENOSPC and leaves
// nothing behind; it never hands out a segment that dies of SIGBUS later.
func TestCreateFullTmpfs(t *testing.T) {
	dir := smallTmpfs(t)
	_, err := shm.Create("big", 4<<20, shm.Dir(dir))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Create 4 MiB on a 1 MiB tmpfs: %v, want ENOSPC", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("failed Create left %v behind", ents)
	}

	// Fill most of it, then ask for more than is left.
	a, err := shm.Create("a", 768<<10, shm.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for i := range a.Bytes() { // every page is backed: no SIGBUS
		a.Bytes()[i] = 1
	}
	if _, err := shm.Create("b", 512<<10, shm.Dir(dir)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Create past the remaining space: %v, want ENOSPC", err)
	}
	if _, err := os.Stat(dir + "/b"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed Create left its file: %v", err)
	}
	b, err := shm.Create("b", 128<<10, shm.Dir(dir))
	if err != nil {
		t.Fatalf("Create within the remaining space: %v", err)
	}
	defer b.Close()
	for i := range b.Bytes() {
		b.Bytes()[i] = 2
	}
}

// TestOpenHolesFullTmpfs: a segment made by another tool with ftruncate
// alone has no pages behind it. Opened writable on a full tmpfs, it is
// ENOSPC at Open, never a SIGBUS at the first write; opened read-only it is
// mapped as it is.
func TestOpenHolesFullTmpfs(t *testing.T) {
	dir := smallTmpfs(t)
	f, err := os.OpenFile(dir+"/holes", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(4 << 20); err != nil { // more than the tmpfs holds
		t.Fatal(err)
	}
	f.Close()
	if _, err := shm.Open("holes", shm.Dir(dir)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Open of a 4 MiB sparse file on a 1 MiB tmpfs: %v, want ENOSPC", err)
	}
	ro, err := shm.Open("holes", shm.Dir(dir), shm.ReadOnly())
	if err != nil {
		t.Fatalf("read-only Open: %v", err)
	}
	ro.Close()

	// A sparse file that fits is reserved whole, and every page written.
	if err := os.Truncate(dir+"/holes", 512<<10); err != nil {
		t.Fatal(err)
	}
	s, err := shm.Open("holes", shm.Dir(dir))
	if err != nil {
		t.Fatalf("Open of a 512 KiB sparse file: %v", err)
	}
	defer s.Close()
	var st unix.Stat_t
	if err := unix.Stat(dir+"/holes", &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 < 512<<10 {
		t.Fatalf("after Open the file has %d bytes allocated, want all 512 KiB", st.Blocks*512)
	}
	for i := range s.Bytes() {
		s.Bytes()[i] = 3
	}
}
