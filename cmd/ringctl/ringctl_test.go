package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringwire/ringwire/ring"
)

// The tests run the real binary, built once in TestMain, against real
// segments in t.TempDir() (through -dir). Peer processes are this test
// binary re-executed: its job comes in environment variables.
const (
	envChild = "RINGCTL_TEST_CHILD" // comma-separated operations, see child
	envDir   = "RINGCTL_TEST_DIR"
	envName  = "RINGCTL_TEST_NAME"
)

var ringctl string // path of the built binary

func TestMain(m *testing.M) {
	if ops := os.Getenv(envChild); ops != "" {
		if err := child(ops); err != nil {
			fmt.Fprintf(os.Stderr, "child %s: %v\n", ops, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ringctl-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ringctl = filepath.Join(dir, "ringctl")
	out, err := exec.Command("go", "build", "-o", ringctl, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building ringctl: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// child performs ops on the ring envName in envDir, prints "ready", and
// holds everything until stdin closes (or it is killed). Operations:
//
//	create      create the ring (this process owns it)
//	open        attach without a role
//	produce:N   take the producer role and send N messages "msg 0".."msg N-1"
//	consume:N   take the consumer role and receive N messages
func child(ops string) error {
	dir, name := os.Getenv(envDir), os.Getenv(envName)
	var r *ring.Ring
	var err error
	handle := func() (*ring.Ring, error) {
		if r == nil {
			r, err = ring.Open(name, ring.AttachOptions{Dir: dir})
		}
		return r, err
	}
	for _, op := range strings.Split(ops, ",") {
		verb, arg, _ := strings.Cut(op, ":")
		n, _ := strconv.Atoi(arg)
		switch verb {
		case "create":
			if r, err = ring.Create(name, ring.Options{Dir: dir, Capacity: 64 << 10}); err != nil {
				return err
			}
		case "open":
			if _, err := handle(); err != nil {
				return err
			}
		case "produce":
			if _, err := handle(); err != nil {
				return err
			}
			p, err := r.Producer()
			if err != nil {
				return err
			}
			for i := range n {
				if err := p.Send([]byte(fmt.Sprintf("msg %d", i))); err != nil {
					return err
				}
			}
		case "consume":
			if _, err := handle(); err != nil {
				return err
			}
			c, err := r.Consumer()
			if err != nil {
				return err
			}
			for range n {
				if _, err := c.Recv(); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("unknown op %q", op)
		}
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	if r != nil {
		return r.Close()
	}
	return nil
}

type proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
}

// startChild runs child(ops) in a new process and waits until it is ready.
func startChild(t *testing.T, dir, name, ops string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+ops, envDir+"="+dir, envName+"="+name)
	return startReady(t, cmd, "ready")
}

// startReady starts cmd and waits for its first stdout line to be want.
func startReady(t *testing.T, cmd *exec.Cmd, want string) *proc {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	t.Cleanup(func() { p.kill(t) })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(s)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case got := <-line:
		if got != want {
			p.kill(t)
			t.Fatalf("%v: first line %q, want %q; stderr: %s", cmd.Args, got, want, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%v: not ready after 10s; stderr: %s", cmd.Args, stderr.String())
	}
	return p
}

// kill SIGKILLs the process and reaps it, so its locks are gone when kill
// returns.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Kill()
	p.cmd.Wait()
	close(p.done)
}

type result struct {
	stdout, stderr string
	code           int
}

// rc runs ringctl -dir dir args... with stdin.
func rc(t *testing.T, dir, stdin string, args ...string) result {
	t.Helper()
	return rcCmd(t, exec.Command(ringctl, append([]string{"-dir", dir}, args...)...), stdin)
}

func rcCmd(t *testing.T, cmd *exec.Cmd, stdin string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := context.AfterFunc(ctx, func() { cmd.Process.Kill() })
	defer stop()
	err := cmd.Wait()
	if ctx.Err() != nil {
		t.Fatalf("%v: timed out; stdout %q stderr %q", cmd.Args, stdout.String(), stderr.String())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{stdout.String(), stderr.String(), code}
}

// want fails unless r exited with code and its output has every substring.
func (r result) want(t *testing.T, code int, substrings ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit status %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	all := r.stdout + r.stderr
	for _, s := range substrings {
		if !strings.Contains(all, s) {
			t.Fatalf("output lacks %q\nstdout: %s\nstderr: %s", s, r.stdout, r.stderr)
		}
	}
}

// makeRing creates a ring in this process and closes it: a ring whose
// owner is gone and that nothing is attached to.
func makeRing(t *testing.T, dir, name string) {
	t.Helper()
	r, err := ring.Create(name, ring.Options{Dir: dir, Capacity: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// deadRing makes a ring whose owner, producer and consumer were each a
// process that was SIGKILLed.
func deadRing(t *testing.T, dir, name string) {
	t.Helper()
	owner := startChild(t, dir, name, "create")
	prod := startChild(t, dir, name, "produce:3")
	cons := startChild(t, dir, name, "consume:1")
	for _, p := range []*proc{owner, prod, cons} {
		p.kill(t)
	}
}

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Lstat(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

func lsJSON(t *testing.T, dir string) map[string]Entry {
	t.Helper()
	r := rc(t, dir, "", "ls", "-json")
	r.want(t, 0)
	var entries []Entry
	if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil {
		t.Fatalf("ls -json: %v\n%s", err, r.stdout)
	}
	m := map[string]Entry{}
	for _, e := range entries {
		m[e.Name] = e
	}
	return m
}

// row returns the fields of the ls line that starts with name.
func row(t *testing.T, out, name string) []string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == name {
			return f
		}
	}
	t.Fatalf("no row for %s in\n%s", name, out)
	return nil
}

func TestLsAndStat(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	startChild(t, dir, "live", "create,produce:3,consume:1")
	deadRing(t, dir, "dead")
	makeRing(t, dir, "closed") // owner: this process, which closed its handle
	if err := os.WriteFile(filepath.Join(dir, "psm_1234abcd"), []byte("a Python SharedMemory, say"), 0o600); err != nil {
		t.Fatal(err)
	}

	m := lsJSON(t, dir)
	if len(m) != 4 {
		t.Fatalf("ls -json: %d entries, want 4: %v", len(m), m)
	}
	live := m["live"]
	if live.Kind != kindRing || live.Ring == nil {
		t.Fatalf("live: %+v", live)
	}
	lr := live.Ring
	if !lr.OwnerAlive || !lr.Attached || lr.Consumer != "alive" || len(lr.Producers) != 1 || lr.Producers[0].State != "alive" || lr.Dead {
		t.Errorf("live ring: %+v", lr)
	}
	if lr.Mode != "spsc" || lr.Capacity != 64<<10 || lr.BytesInFlight == 0 || lr.FillPercent <= 0 {
		t.Errorf("live ring geometry or fill: %+v", lr)
	}
	dr := m["dead"].Ring
	if dr == nil || dr.OwnerAlive || dr.Attached || dr.Consumer != "dead" || len(dr.Producers) != 1 || dr.Producers[0].State != "dead" || !dr.Dead || len(dr.Live) != 0 {
		t.Errorf("dead ring: %+v", m["dead"])
	}
	if cr := m["closed"].Ring; cr == nil || cr.OwnerAlive || cr.Consumer != "none" || len(cr.Producers) != 0 || !cr.Dead {
		t.Errorf("closed ring: %+v", m["closed"])
	}
	if f := m["psm_1234abcd"]; f.Kind != kindForeign || f.Size != int64(len("a Python SharedMemory, say")) || f.UID != uint32(os.Getuid()) || f.Ring != nil {
		t.Errorf("foreign segment: %+v", f)
	}

	r := rc(t, dir, "", "ls")
	r.want(t, 0, "NAME", "OTHER SEGMENT")
	if f := row(t, r.stdout, "live"); strings.Join(f[6:9], " ") != "alive alive alive" {
		t.Errorf("live row %q: want producers, consumer, owner alive", f)
	}
	if f := row(t, r.stdout, "dead"); strings.Join(f[6:9], " ") != "dead dead dead" {
		t.Errorf("dead row %q: want producers, consumer, owner dead", f)
	}
	if f := row(t, r.stdout, "psm_1234abcd"); f[1] != "foreign" {
		t.Errorf("foreign row %q", f)
	}

	rc(t, dir, "", "stat", "live").want(t, 0, "owner        alive", "consumer     alive", "slot 0: alive", "verdict      in use: owner alive", "consumer alive", "producer alive")
	rc(t, dir, "", "stat", "dead").want(t, 0, "owner        dead", "consumer     dead", "slot 0: dead", "verdict      dead", "note: the consumer died", "died without closing")

	r = rc(t, dir, "", "stat", "-json", "dead")
	r.want(t, 0)
	var en Entry
	if err := json.Unmarshal([]byte(r.stdout), &en); err != nil {
		t.Fatal(err)
	}
	if en.Name != "dead" || en.Ring == nil || !en.Ring.Dead || en.Ring.Consumer != "dead" {
		t.Errorf("stat -json dead: %+v", en)
	}
}

// A `ringctl send` that was SIGKILLed leaves its producer role dead.
func TestKilledSend(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rc(t, dir, "", "create", "r", "-capacity", "4096").want(t, 0, "created ring r")
	cmd := exec.Command(ringctl, "-dir", dir, "send", "r")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	fmt.Fprintln(stdin, "before the kill")
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Alive, and the line is in the ring (Send publishes the tail).
		if rs := lsJSON(t, dir)["r"].Ring; len(rs.Producers) == 1 && rs.Producers[0].State == "alive" && rs.BytesInFlight > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("send never showed as an alive producer with a message in flight")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	rs := lsJSON(t, dir)["r"].Ring
	if rs.Producers[0].State != "dead" || rs.OwnerAlive || !rs.Dead {
		t.Errorf("after SIGKILL: %+v", rs)
	}
	// The consumer gets what was committed, then is told the producer died.
	rc(t, dir, "", "recv", "r").want(t, 1, "before the kill\n", `ring "r"`, "peer died")
}

func TestStatWatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	startChild(t, dir, "w", "create,produce:5")
	r := rc(t, dir, "", "stat", "-watch", "-interval", "20ms", "-count", "3", "w")
	r.want(t, 0, "SENT/s", "RECV/s", "BYTES/s", "FILL")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 5 { // the title, the header, three rows
		t.Fatalf("watch printed %d lines, want 5:\n%s", len(lines), r.stdout)
	}
	if !strings.Contains(lines[4], "alive") {
		t.Errorf("watch row lacks the producer's state: %q", lines[4])
	}

	r = rc(t, dir, "", "stat", "-watch", "-json", "-interval", "20ms", "-count", "2", "w")
	r.want(t, 0)
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	for i := range 2 {
		var row watchRow
		if err := dec.Decode(&row); err != nil {
			t.Fatalf("row %d: %v\n%s", i, err, r.stdout)
		}
		if row.InFlight == 0 || row.Producers != "alive" || row.Owner != "alive" {
			t.Errorf("row %d: %+v", i, row)
		}
	}

	// Watching ends when the ring is removed.
	makeRing(t, dir, "gone")
	cmd := exec.Command(ringctl, "-dir", dir, "stat", "-watch", "-interval", "10ms", "gone")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	out := make(chan string)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			out <- sc.Text()
		}
	}()
	timeout := time.After(10 * time.Second)
	removed := false
	for !removed {
		select {
		case l, ok := <-out:
			switch {
			case !ok:
				t.Fatal("watch ended before it noticed the ring was removed")
			case strings.HasPrefix(l, "TIME"): // watching: remove the ring
				rc(t, dir, "", "rm", "gone").want(t, 0, "removed gone")
			case l == `ring "gone" was removed`:
				removed = true
			}
		case <-timeout:
			t.Fatal("watch did not notice the ring was removed")
		}
	}
	for range out {
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("watch after rm: %v", err)
	}
}

func TestGC(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	live := startChild(t, dir, "live", "create,consume")
	makeRing(t, dir, "opened")
	startChild(t, dir, "opened", "open") // a process holds it open without a role
	deadRing(t, dir, "dead")
	makeRing(t, dir, "closed")
	makeRing(t, dir, "newer")
	setVersion(t, filepath.Join(dir, "newer"), 2)
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("psm_deadbeef", []byte("not a ring at all"))
	write("psm_zeros", make([]byte, 8192)) // a fresh Python SharedMemory is all zeros
	all := []string{"live", "opened", "dead", "closed", "newer", "psm_deadbeef", "psm_zeros"}

	r := rc(t, dir, "", "gc", "-dry-run")
	r.want(t, 0, "would remove", "gc "+dir+": would remove 2, kept 4, skipped 1 foreign")
	for _, name := range all {
		if !exists(t, filepath.Join(dir, name)) {
			t.Fatalf("gc -dry-run removed %s", name)
		}
	}
	if f := row(t, r.stdout, "would"); f[2] != "closed" {
		t.Errorf("dry run: %q", f)
	}

	r = rc(t, dir, "", "gc")
	r.want(t, 0, "gc "+dir+": removed 2, kept 4, skipped 1 foreign")
	for _, want := range []struct{ name, action, why string }{
		{"dead", "removed", "owner dead"},
		{"closed", "removed", "owner dead"},
		{"live", "kept", "in use: owner alive"},
		{"opened", "kept", "in use: a live process has it open"},
		{"newer", "kept", "cannot prove it dead: layout version mismatch"},
		{"psm_zeros", "kept", "cannot prove it dead: not initialised"},
		{"psm_deadbeef", "skipped", "foreign segment"},
	} {
		line := ""
		for _, l := range strings.Split(r.stdout, "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[0] == want.action && f[1] == want.name {
				line = l
			}
		}
		if !strings.Contains(line, want.why) {
			t.Errorf("gc: no %q line for %s saying %q:\n%s", want.action, want.name, want.why, r.stdout)
		}
		gone := want.action == "removed"
		if exists(t, filepath.Join(dir, want.name)) == gone {
			t.Errorf("after gc, %s exists: %v, want %v", want.name, !gone, !gone)
		}
	}
	if !strings.Contains(r.stdout, "consumer dead, producers dead, nobody attached") {
		t.Errorf("gc does not say why dead was removed:\n%s", r.stdout)
	}
	live.kill(t)
	rc(t, dir, "", "gc").want(t, 0, "removed  live", "removed 1, kept 3")
}

// setVersion writes a layout version word into a ring's header (byte 8,
// little-endian u32).
func setVersion(t *testing.T, path string, v uint32) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	if _, err := f.WriteAt(b[:], 8); err != nil {
		t.Fatal(err)
	}
}

func TestRm(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	startChild(t, dir, "busy", "create,consume")
	rc(t, dir, "", "rm", "busy").want(t, 1, `ring "busy"`, "in use", "owner alive", "consumer alive", "-force")
	if !exists(t, filepath.Join(dir, "busy")) {
		t.Fatal("rm removed a ring in use")
	}
	rc(t, dir, "", "rm", "-force", "busy").want(t, 0, "removed busy (forced; still in use: owner alive")
	if exists(t, filepath.Join(dir, "busy")) {
		t.Fatal("rm -force left the ring")
	}

	makeRing(t, dir, "held")
	startChild(t, dir, "held", "open")
	rc(t, dir, "", "rm", "held").want(t, 1, "in use: a live process has it open")

	deadRing(t, dir, "dead")
	makeRing(t, dir, "idle")
	rc(t, dir, "", "rm", "dead", "idle").want(t, 0, "removed dead (owner dead", "removed idle (owner dead")
	for _, n := range []string{"dead", "idle"} {
		if exists(t, filepath.Join(dir, n)) {
			t.Fatalf("rm left %s", n)
		}
	}

	if err := os.WriteFile(filepath.Join(dir, "psm_x"), []byte("python's"), 0o600); err != nil {
		t.Fatal(err)
	}
	rc(t, dir, "", "rm", "psm_x").want(t, 1, `ring "psm_x"`, "foreign segment", "never removes foreign")
	rc(t, dir, "", "rm", "-force", "psm_x").want(t, 1, "never removes foreign")
	if !exists(t, filepath.Join(dir, "psm_x")) {
		t.Fatal("rm removed a foreign segment")
	}

	makeRing(t, dir, "v2")
	setVersion(t, filepath.Join(dir, "v2"), 2)
	rc(t, dir, "", "rm", "v2").want(t, 1, `ring "v2"`, "layout version mismatch", "-force removes it anyway")
	rc(t, dir, "", "rm", "-force", "v2").want(t, 0, "removed v2 (forced; state unreadable: layout version mismatch")
	if exists(t, filepath.Join(dir, "v2")) {
		t.Fatal("rm -force left v2")
	}
}

func TestSendRecvLines(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rc(t, dir, "", "create", "pipe", "-capacity", "4096").want(t, 0)
	// Many more bytes than the ring holds: send blocks on a full ring while
	// recv drains it.
	var in strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&in, "line %d %s\n", i, strings.Repeat("x", i%50))
	}
	in.WriteString("\n") // an empty message
	in.WriteString("last, without a newline")
	want := in.String() + "\n"

	recv := make(chan result, 1)
	go func() { recv <- rc(t, dir, "", "recv", "-timeout", "10s", "pipe") }()
	rc(t, dir, in.String(), "send", "pipe").want(t, 0)
	r := <-recv
	r.want(t, 0)
	if r.stdout != want {
		t.Fatalf("recv printed %d bytes, want %d; first difference at %d", len(r.stdout), len(want), firstDiff(r.stdout, want))
	}
	st := lsJSON(t, dir)["pipe"].Ring
	if st.Stats.Sent != 5002 || st.Stats.Received != 5002 || st.BytesInFlight != 0 || st.Consumer != "closed" || st.Producers[0].State != "closed" {
		t.Errorf("after the pipeline: %+v", st)
	}

	// -n takes some, and the next recv continues where it stopped.
	rc(t, dir, "", "create", "n").want(t, 0)
	rc(t, dir, "a\nb\nc\nd\ne\n", "send", "n").want(t, 0)
	r = rc(t, dir, "", "recv", "-n", "2", "n")
	r.want(t, 0)
	if r.stdout != "a\nb\n" {
		t.Errorf("recv -n 2: %q", r.stdout)
	}
	r = rc(t, dir, "", "recv", "n")
	r.want(t, 0)
	if r.stdout != "c\nd\ne\n" {
		t.Errorf("recv after -n 2: %q", r.stdout)
	}

	// A recv with no producer gives up after -timeout.
	rc(t, dir, "", "create", "quiet").want(t, 0)
	start := time.Now()
	rc(t, dir, "", "recv", "-timeout", "100ms", "quiet").want(t, 1, `ring "quiet"`, "timed out", "no message for 100ms")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("recv -timeout 100ms took %v", d)
	}

	// A line longer than the ring's max message.
	rc(t, dir, "", "create", "small", "-max-message", "16").want(t, 0, "max message 16B")
	rc(t, dir, "short\n"+strings.Repeat("y", 100)+"\n", "send", "small").want(t, 1, `ring "small"`, "line 2: 100 bytes, more than the ring's max message 16")
	r = rc(t, dir, "", "recv", "small")
	r.want(t, 0)
	if r.stdout != "short\n" {
		t.Errorf("recv after a failed send: %q", r.stdout)
	}
}

func TestSendRecvRaw(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rc(t, dir, "", "create", "raw", "-capacity", "4096", "-checksum").want(t, 0, "checksums on")
	msgs := [][]byte{[]byte("two\nlines"), {}, {0, 1, 2, 0xff, '\n', 0}, bytes.Repeat([]byte{0xab}, 1500)}
	for i := range 300 {
		msgs = append(msgs, []byte(strconv.Itoa(i)))
	}
	var in bytes.Buffer
	for _, m := range msgs {
		binary.Write(&in, binary.LittleEndian, uint32(len(m)))
		in.Write(m)
	}
	recv := make(chan result, 1)
	go func() { recv <- rc(t, dir, "", "recv", "-raw", "-timeout", "10s", "raw") }()
	rc(t, dir, in.String(), "send", "-raw", "raw").want(t, 0)
	r := <-recv
	r.want(t, 0)
	if r.stdout != in.String() {
		t.Fatalf("raw round trip: got %d bytes, want %d, first difference at %d", len(r.stdout), in.Len(), firstDiff(r.stdout, in.String()))
	}

	// A frame cut short is an error, after the frames before it were sent.
	rc(t, dir, "", "create", "cut").want(t, 0)
	rc(t, dir, "\x02\x00\x00\x00ok\x09\x00\x00\x00abc", "send", "-raw", "cut").want(t, 1, `ring "cut"`, "frame 2: truncated: 3 of 9 bytes")
	r = rc(t, dir, "", "recv", "-raw", "cut")
	r.want(t, 0)
	if r.stdout != "\x02\x00\x00\x00ok" {
		t.Errorf("recv -raw after a cut frame: %q", r.stdout)
	}
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestCreate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rc(t, dir, "", "create", "c", "-capacity", "64KiB", "-max-message", "100", "-checksum", "-perm", "0640").want(t, 0, "created ring c", "capacity 64KiB", "max message 100B", "checksums on", "perm 0640")
	fi, err := os.Stat(filepath.Join(dir, "c"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("perm %v, want 0640", fi.Mode().Perm())
	}
	en := lsJSON(t, dir)["c"]
	if en.Ring == nil || en.Ring.Capacity != 64<<10 || en.Ring.MaxMessage != 100 || !en.Ring.Checksum || en.Perm != "0640" || en.Ring.OwnerAlive {
		t.Errorf("created ring: %+v %+v", en, en.Ring)
	}

	rc(t, dir, "", "create", "c").want(t, 1, `ring "c"`, "already exists")
	rc(t, dir, "", "create", "big", "-capacity", "4096", "-max-message", "1MiB").want(t, 1, `ring "big"`, "bad options")
	if exists(t, filepath.Join(dir, "big")) {
		t.Error("a failed create left a segment")
	}

	// MPSC: created if this build has it, else ring.Create's ErrBadOptions,
	// passed through.
	r := rc(t, dir, "", "create", "m", "-mode", "mpsc", "-slots", "4")
	switch r.code {
	case 0:
		if en := lsJSON(t, dir)["m"]; en.Ring == nil || en.Ring.Mode != "mpsc" {
			t.Errorf("mpsc ring: %+v", en)
		}
	case 1:
		r.want(t, 1, `ring "m"`, "bad options", "MPSC")
	default:
		r.want(t, 0)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "psm_f00d"), bytes.Repeat([]byte("py"), 2048), 0o600); err != nil {
		t.Fatal(err)
	}
	makeRing(t, dir, "v9")
	setVersion(t, filepath.Join(dir, "v9"), 9)
	startChild(t, dir, "taken", "create,consume")

	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"stat", "nope"}, []string{`ring "nope"`, "no such ring in " + dir}},
		{[]string{"rm", "nope"}, []string{`ring "nope"`, "no such ring"}},
		{[]string{"send", "nope"}, []string{`ring "nope"`, "no such ring"}},
		{[]string{"recv", "nope"}, []string{`ring "nope"`, "no such ring"}},
		{[]string{"stat", "-watch", "nope"}, []string{`ring "nope"`, "no such ring"}},
		{[]string{"stat", "psm_f00d"}, []string{`ring "psm_f00d"`, "foreign segment"}},
		{[]string{"send", "psm_f00d"}, []string{`ring "psm_f00d"`, "foreign segment"}},
		{[]string{"recv", "psm_f00d"}, []string{`ring "psm_f00d"`, "foreign segment"}},
		{[]string{"stat", "v9"}, []string{`ring "v9"`, "layout version mismatch", "layout version 9"}},
		{[]string{"send", "v9"}, []string{`ring "v9"`, "layout version mismatch"}},
		{[]string{"recv", "v9"}, []string{`ring "v9"`, "layout version mismatch"}},
		{[]string{"rm", "v9"}, []string{`ring "v9"`, "layout version mismatch"}},
		{[]string{"recv", "taken"}, []string{`ring "taken"`, "role already taken"}},
		{[]string{"stat", "a/b"}, []string{`ring "a/b"`, "invalid name"}},
	} {
		rc(t, dir, "", c.args...).want(t, 1, c.want...)
	}
	if _, err := os.Stat(filepath.Join(dir, "psm_f00d")); err != nil {
		t.Fatal("an error path removed the foreign segment")
	}
	rc(t, filepath.Join(dir, "missing"), "", "ls").want(t, 1, "missing")

	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"-nosuchflag", "ls"},
		{"ls", "extra"},
		{"ls", "-nosuchflag"},
		{"stat"},
		{"stat", "a", "b"},
		{"stat", "-watch", "-interval", "0s", "a"},
		{"create"},
		{"create", "x", "-mode", "fifo"},
		{"create", "x", "-capacity", "lots"},
		{"create", "x", "-perm", "0999"},
		{"rm"},
		{"send"},
		{"recv", "-n", "-1", "x"},
		{"recv", "-timeout", "soon", "x"},
		{"gc", "x"},
	} {
		r := rc(t, dir, "", args...)
		r.want(t, 2)
		if !strings.Contains(r.stderr, "usage") {
			t.Errorf("%q: stderr lacks usage: %s", args, r.stderr)
		}
	}
	if exists(t, filepath.Join(dir, "x")) {
		t.Error("a usage error created a ring")
	}
	rc(t, dir, "", "help").want(t, 0, "commands:")
	rc(t, dir, "", "-h").want(t, 0, "commands:")
}

// Permission denied: the ring is another user's, mode 0600. As root that
// needs a process running as another user; as anyone else, a mode that
// excludes the owner does it.
func TestPermissionDenied(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	makeRing(t, dir, "private")
	run := func(args ...string) result {
		return rc(t, dir, "", args...)
	}
	if os.Getuid() == 0 {
		// Let user nobody reach the directory and the binary.
		for _, d := range []string{filepath.Dir(dir), dir, filepath.Dir(ringctl)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		run = func(args ...string) result {
			cmd := exec.Command(ringctl, append([]string{"-dir", dir}, args...)...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			return rcCmd(t, cmd, "")
		}
		if r := run("ls"); r.code != 0 {
			t.Skipf("running as root and cannot run ringctl as user nobody (65534) to get a permission error: exit %d %s", r.code, r.stderr)
		}
	} else if err := os.Chmod(filepath.Join(dir, "private"), 0); err != nil {
		t.Fatal(err)
	}
	run("stat", "private").want(t, 1, `ring "private"`, "permission denied")
	run("recv", "private").want(t, 1, `ring "private"`, "permission denied")
	run("rm", "private").want(t, 1, `ring "private"`, "permission denied")
	r := run("ls")
	r.want(t, 0, "private", "unreadable", "permission denied")
	r = run("gc")
	r.want(t, 0, "kept", "cannot prove it dead: permission denied")
	if !exists(t, filepath.Join(dir, "private")) {
		t.Fatal("a permission error removed the ring")
	}
	if os.Getuid() == 0 {
		// Creating in a directory nobody may not write to.
		run("create", "mine").want(t, 1, `ring "mine"`, "permission denied")
	}
}

// Interrupted, send and recv give up their roles cleanly: the peer sees
// "closed", not "dead".
func TestInterrupt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rc(t, dir, "", "create", "i").want(t, 0)
	for _, c := range []struct {
		cmd  string
		role func(*RingState) string
	}{
		{"recv", func(rs *RingState) string { return rs.Consumer }},
		{"send", func(rs *RingState) string {
			if len(rs.Producers) == 0 {
				return "none"
			}
			return rs.Producers[0].State
		}},
	} {
		cmd := exec.Command(ringctl, "-dir", dir, c.cmd, "i")
		stdin, err := cmd.StdinPipe() // send blocks reading it
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); c.role(lsJSON(t, dir)["i"].Ring) != "alive"; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s never took its role", c.cmd)
			}
		}
		cmd.Process.Signal(os.Interrupt)
		err = cmd.Wait()
		stdin.Close()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 || !strings.Contains(stderr.String(), `ring "i": interrupted`) {
			t.Errorf("%s after SIGINT: %v, stderr %q; want exit status 130", c.cmd, err, stderr.String())
		}
		if got := c.role(lsJSON(t, dir)["i"].Ring); got != "closed" {
			t.Errorf("%s after SIGINT: role %s, want closed", c.cmd, got)
		}
	}
}
