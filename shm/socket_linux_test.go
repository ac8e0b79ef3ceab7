package shm_test

import (
	"errors"
	"net"
	"path/filepath"
	"testing"

	"github.com/ringwire/ringwire/shm"
)

// TestOpenSocket: a UNIX-domain socket under the segment's name is not a
// segment: ErrNotSegment, not a bare ENXIO.
func TestOpenSocket(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(dir, "sock"))
	if err != nil {
		t.Skipf("skipping: cannot make a UNIX socket here: %v", err)
	}
	defer l.Close()
	for _, ro := range []bool{false, true} {
		opts := []shm.Option{shm.Dir(dir)}
		if ro {
			opts = append(opts, shm.ReadOnly())
		}
		if _, err := shm.Open("sock", opts...); !errors.Is(err, shm.ErrNotSegment) {
			t.Errorf("Open of a socket (read-only %v): %v, want ErrNotSegment", ro, err)
		}
	}
}
