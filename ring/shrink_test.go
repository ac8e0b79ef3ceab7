package ring_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ringwire/ringwire/ring"
)

// TestShrunkSegment: another process shrinks the segment file under a
// waiting consumer. The wait ends with ErrTruncated at its next peer check,
// instead of a SIGBUS at the next access past the file's end, and Open of
// the shrunk file says ErrTruncated too.
func TestShrunkSegment(t *testing.T) {
	dir := t.TempDir()
	r := newRing(t, ring.Options{Dir: dir, Capacity: 8192, Wait: ring.Wait{Mode: ring.Block, PeerCheck: 10 * time.Millisecond}})
	p, c := roles(t, r)
	defer p.Close()
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := c.RecvContext(ctx)
		got <- err
	}()
	time.Sleep(50 * time.Millisecond)
	// Cut the last page of the lane: the consumer polls the first.
	info, err := r.Info()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, r.Name()), int64(info.SegmentSize-4096)); err != nil {
		t.Fatal(err)
	}
	if err := <-got; !errors.Is(err, ring.ErrTruncated) {
		t.Fatalf("receive on a shrunk segment: %v, want ErrTruncated", err)
	}
	if _, err := ring.Open(r.Name(), ring.AttachOptions{Dir: dir}); !errors.Is(err, ring.ErrTruncated) {
		t.Fatalf("Open of a shrunk segment: %v, want ErrTruncated", err)
	}
}

// TestRoleStateString: every value prints, known or not.
func TestRoleStateString(t *testing.T) {
	for _, tc := range []struct {
		s    ring.RoleState
		want string
	}{{ring.RoleNone, "none"}, {ring.RoleAlive, "alive"}, {ring.RoleClosed, "closed"}, {ring.RoleDead, "dead"}, {9, "RoleState(9)"}} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("RoleState(%d).String() = %q, want %q", uint8(tc.s), got, tc.want)
		}
	}
}
