package shm_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ringwire/ringwire/shm"
)

// python starts python3 running script with args, or skips the test with
// the reason.
func python(t *testing.T, script string, args ...string) (*exec.Cmd, io.WriteCloser, *bufio.Reader) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("skipping: python3 is not installed, so Python interop is not tested")
	}
	cmd := exec.Command(py, append([]string{"-c", script}, args...)...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
	return cmd, in, bufio.NewReader(out)
}

func expectLine(t *testing.T, r *bufio.Reader, want string) {
	t.Helper()
	line, err := r.ReadString('\n')
	if strings.TrimSpace(line) != want {
		t.Fatalf("python said %q (%v), want %q", line, err, want)
	}
}

func devShm(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/shm"); err != nil {
		t.Skipf("skipping: Python's SharedMemory lives in /dev/shm, which is missing: %v", err)
	}
}

// TestPythonCreatesGoOpens: a SharedMemory made by Python opens here by name
// with the same bytes, and writes go both ways.
func TestPythonCreatesGoOpens(t *testing.T) {
	devShm(t)
	name := fmt.Sprintf("rw_pytest_%d", os.Getpid())
	const script = `
import sys
from multiprocessing import shared_memory
m = shared_memory.SharedMemory(name=sys.argv[1], create=True, size=8192)
try:
    m.buf[:8192] = bytes(i % 251 for i in range(8192))
    print("ready", flush=True)
    sys.stdin.readline()
    print("ok" if bytes(m.buf[100:106]) == b"from-G" else "bad", flush=True)
finally:
    m.close()
    m.unlink()
`
	_, in, out := python(t, script, name)
	expectLine(t, out, "ready")
	s, err := shm.Open("/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := make([]byte, 8192)
	for i := range want {
		want[i] = byte(i % 251)
	}
	// Python may round the file up to a page; the bytes it wrote must match.
	if s.Size() < 8192 || !bytes.Equal(s.Bytes()[:8192], want) {
		t.Fatalf("Go sees %d bytes, not what Python wrote", s.Size())
	}
	copy(s.Bytes()[100:], "from-G")
	fmt.Fprintln(in, "go")
	expectLine(t, out, "ok")
}

// TestGoCreatesPythonAttaches: Python attaches to a Go segment, sees and
// writes its bytes, and exits; the segment is still there afterwards.
// Python before 3.13 would unlink a segment it merely attached to when it
// exited (gh-82300) unless the attacher unregisters it from the resource
// tracker, which is what a Python peer of a ringwire segment must do; on
// 3.13 and later, track=False does the same.
func TestGoCreatesPythonAttaches(t *testing.T) {
	devShm(t)
	s, err := shm.Create("", 4096)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); s.Unlink() })
	copy(s.Bytes(), "hello from Go")
	const script = `
import sys
from multiprocessing import shared_memory, resource_tracker
try:
    m = shared_memory.SharedMemory(name=sys.argv[1], track=False)
except TypeError:
    m = shared_memory.SharedMemory(name=sys.argv[1])
    resource_tracker.unregister(m._name, "shared_memory")
print(bytes(m.buf[:13]).decode(), flush=True)
m.buf[0:2] = b"HE"
m.close()
`
	cmd, _, out := python(t, script, s.Name())
	expectLine(t, out, "hello from Go")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("python: %v", err)
	}
	if string(s.Bytes()[:2]) != "HE" {
		t.Fatalf("Python's write not seen: %q", s.Bytes()[:2])
	}
	again, err := shm.Open(s.Name())
	if err != nil {
		t.Fatalf("segment gone after Python attached and exited: %v", err)
	}
	again.Close()
}
