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
