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

	"github.com/ringwire/ringwire/codec"
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
//	create        create an SPSC ring of 64 KiB (this process owns it)
//	mpsc:L        create an MPSC ring of L lanes of 64 KiB each
//	open          attach without a role
//	produce:N[:T] take a producer role (a lane) and send N messages "T 0".."T N-1"
//	              (T is "msg" unless given)
//	closep        close the producer taken by produce
//	consume:N     take the consumer role and receive N messages
func child(ops string) error {
	dir, name := os.Getenv(envDir), os.Getenv(envName)
	var r *ring.Ring
	var p *ring.Producer
	var err error
	handle := func() (*ring.Ring, error) {
		if r == nil {
			r, err = ring.Open(name, ring.AttachOptions{Dir: dir})
		}
		return r, err
	}
	for _, op := range strings.Split(ops, ",") {
		verb, arg, _ := strings.Cut(op, ":")
		arg, tag, ok := strings.Cut(arg, ":")
		if !ok {
			tag = "msg"
		}
		n, _ := strconv.Atoi(arg)
		switch verb {
		case "create":
			if r, err = ring.Create(name, ring.Options{Dir: dir, Capacity: 64 << 10}); err != nil {
				return err
			}
		case "mpsc":
			if r, err = ring.Create(name, ring.Options{Dir: dir, Capacity: 64 << 10, Mode: ring.MPSC, Slots: n}); err != nil {
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
			if p, err = r.Producer(); err != nil {
				return err
			}
			for i := range n {
				if err := p.Send([]byte(fmt.Sprintf("%s %d", tag, i))); err != nil {
					return err
				}
			}
		case "closep":
			if err := p.Close(); err != nil {
				return err
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

// makeMPSC is makeRing for an MPSC ring of lanes lanes.
func makeMPSC(t *testing.T, dir, name string, lanes int) {
	t.Helper()
	r, err := ring.Create(name, ring.Options{Dir: dir, Capacity: 4096, Mode: ring.MPSC, Slots: lanes})
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
	// 300 messages: more than the 256 after which a producer publishes its
	// tail, so that some are visibly in flight while it stays attached.
	startChild(t, dir, "live", "create,produce:300,consume:1")
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
	if !lr.OwnerAlive || !lr.Attached || lr.Consumer != "alive" || lr.ConsumerPID == 0 || len(lr.UsedLanes) != 1 ||
		lr.UsedLanes[0].State != "alive" || lr.UsedLanes[0].PID == 0 || lr.LanesAttached != 1 || lr.Dead {
		t.Errorf("live ring: %+v", lr)
	}
	if lr.Mode != "spsc" || lr.Lanes != 1 || lr.Capacity != 64<<10 || int64(lr.SegmentSize) != live.Size ||
		lr.BytesInFlight == 0 || lr.FillPercent <= 0 || lr.MaxFillPercent != lr.FillPercent {
		t.Errorf("live ring geometry or fill: %+v", lr)
	}
	if l := lr.UsedLanes[0]; l.Tail-l.Head != l.BytesInFlight || l.BytesInFlight != lr.BytesInFlight || l.Sent > 300 || l.Sent < 300-256 {
		t.Errorf("live ring's lane: %+v; want tail-head in flight, and at most 256 messages unpublished", l)
	}
	if len(lr.Instance) != 16 || strings.Trim(lr.Instance, "0123456789abcdef") != "" || lr.Instance == m["dead"].Ring.Instance {
		t.Errorf("instances %q and %q: want distinct 16-digit hex ids", lr.Instance, m["dead"].Ring.Instance)
	}
	dr := m["dead"].Ring
	if dr == nil || dr.OwnerAlive || dr.Attached || dr.Consumer != "dead" || len(dr.UsedLanes) != 1 || dr.UsedLanes[0].State != "dead" ||
		dr.LanesAttached != 0 || !dr.Dead || len(dr.Live) != 0 {
		t.Errorf("dead ring: %+v", m["dead"])
	}
	// An SPSC ring lists its one lane even before a producer took it.
	if cr := m["closed"].Ring; cr == nil || cr.OwnerAlive || cr.Consumer != "none" || len(cr.UsedLanes) != 1 || cr.UsedLanes[0].State != "none" || !cr.Dead {
		t.Errorf("closed ring: %+v", m["closed"])
	}
	if f := m["psm_1234abcd"]; f.Kind != kindForeign || f.Size != int64(len("a Python SharedMemory, say")) || f.UID != uint32(os.Getuid()) || f.Ring != nil {
		t.Errorf("foreign segment: %+v", f)
	}

	r := rc(t, dir, "", "ls")
	r.want(t, 0, "NAME", "LANES", "CAP/LANE", "OTHER SEGMENT")
	// NAME MODE LANES CAP/LANE SIZE IN-FLIGHT MSGS FILL CONSUMER OWNER AGE
	if f := row(t, r.stdout, "live"); strings.Join(f[1:4], " ") != "spsc 1/1 64KiB" || strings.Join(f[8:10], " ") != "alive alive" || f[5] == "0B" {
		t.Errorf("live row %q: want spsc, 1/1 lanes of 64KiB, bytes in flight, consumer and owner alive", f)
	}
	if f := row(t, r.stdout, "dead"); f[2] != "0/1" || strings.Join(f[8:10], " ") != "dead dead" {
		t.Errorf("dead row %q: want no lane attached, consumer and owner dead", f)
	}
	if f := row(t, r.stdout, "psm_1234abcd"); f[1] != "foreign" {
		t.Errorf("foreign row %q", f)
	}

	r = rc(t, dir, "", "stat", "live")
	r.want(t, 0, "instance     "+lr.Instance, "mode         spsc: 1 lane", "capacity     64KiB per lane",
		"owner        alive", fmt.Sprintf("consumer     alive (pid %d)", lr.ConsumerPID), "producers    alive",
		"verdict      in use: owner alive", "consumer alive", "producer alive", "LANE", "exact once the producer waits or closes")
	if f := row(t, r.stdout, "0"); f[1] != "alive" || f[2] != strconv.Itoa(int(lr.UsedLanes[0].PID)) || f[3] == "0B" {
		t.Errorf("stat live: lane row %q, want alive, pid %d, bytes in flight", f, lr.UsedLanes[0].PID)
	}
	r = rc(t, dir, "", "stat", "dead")
	r.want(t, 0, "owner        dead", "consumer     dead", "verdict      dead", "note: the consumer", "note: the producer (pid", "died without closing")
	if f := row(t, r.stdout, "0"); f[1] != "dead" {
		t.Errorf("stat dead: lane row %q", f)
	}

	r = rc(t, dir, "", "stat", "-json", "dead")
	r.want(t, 0)
	var en Entry
	if err := json.Unmarshal([]byte(r.stdout), &en); err != nil {
		t.Fatal(err)
	}
	if en.Name != "dead" || en.Ring == nil || !en.Ring.Dead || en.Ring.Consumer != "dead" || en.Ring.Instance != dr.Instance {
		t.Errorf("stat -json dead: %+v", en)
	}
}

// An MPSC ring across processes: each producer has its own lane; stat
// tells alive, closed and dead lanes apart; a dead producer's lane goes to
// the next producer, which continues after the last committed record; the
// consumer gets every lane's messages, each lane's in order.
func TestMPSCLanes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	startChild(t, dir, "m", "mpsc:4")
	alive := startChild(t, dir, "m", "produce:300:a")
	dying := startChild(t, dir, "m", "produce:300:b")
	closed := startChild(t, dir, "m", "produce:300:c,closep")
	dying.kill(t) // after c took lane 2: a dead producer's lane is free for the next

	m := lsJSON(t, dir)
	en := m["m"]
	rs := en.Ring
	if rs == nil || rs.Mode != "mpsc" || rs.Lanes != 4 || rs.LanesAttached != 1 || rs.Capacity != 64<<10 ||
		int64(rs.SegmentSize) != en.Size || rs.SegmentSize < 4*rs.Capacity || len(rs.UsedLanes) != 3 {
		t.Fatalf("mpsc ring: %+v", en)
	}
	var payload int
	var frames uint64
	for i := range 300 {
		payload += len(fmt.Sprintf("c %d", i))
		frames += uint64(codec.FrameSize(len(fmt.Sprintf("c %d", i)), 0))
	}
	for i, want := range []struct {
		state string
		pid   int
	}{{"alive", alive.cmd.Process.Pid}, {"dead", 0}, {"closed", closed.cmd.Process.Pid}} {
		l := rs.UsedLanes[i]
		if l.Lane != i || l.State != want.state || want.pid != 0 && l.PID != uint32(want.pid) {
			t.Errorf("lane %d: %+v, want %s (pid %d)", i, l, want.state, want.pid)
		}
		// A producer that closed published everything; the others lag by
		// less than 256 messages.
		if l.Sent > 300 || l.Sent < 300-256 || l.State == "closed" && (l.Sent != 300 || l.SentBytes != uint64(payload) || l.BytesInFlight != frames) {
			t.Errorf("lane %d: %+v; want 300 messages, published exactly once closed (%d bytes in flight)", i, l, frames)
		}
	}
	r := rc(t, dir, "", "ls")
	if f := row(t, r.stdout, "m"); strings.Join(f[1:4], " ") != "mpsc 1/4 64KiB" {
		t.Errorf("ls row %q: want mpsc, 1/4 lanes attached, 64KiB each", f)
	}
	r = rc(t, dir, "", "stat", "m")
	r.want(t, 0, "mode         mpsc: 4 lanes", "4 × 64KiB = 256KiB", "producers    1 alive, 1 closed, 1 dead of 4 lanes",
		"lane 0 producer alive", "note: lane 1's producer", "free for the next producer", "other lanes are unaffected")
	for i, st := range []string{"alive", "dead", "closed"} {
		if f := row(t, r.stdout, strconv.Itoa(i)); f[1] != st {
			t.Errorf("stat: lane row %q, want %s", f, st)
		}
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "3" {
			t.Errorf("stat lists lane 3, which no producer took: %q", line)
		}
	}

	// The next producer takes the dead producer's lane, the first free one,
	// and continues after its last committed record.
	rc(t, dir, "after\n", "send", "m").want(t, 0)
	l1 := lsJSON(t, dir)["m"].Ring.UsedLanes[1]
	wantFlight := frames + uint64(codec.FrameSize(len("after"), 0)) // lane 1's "b 0".."b 299" are as long as "c 0".."c 299"
	if l1.State != "closed" || l1.BytesInFlight != wantFlight {
		t.Errorf("lane 1 after a new producer took it over: %+v, want closed with %d bytes in flight", l1, wantFlight)
	}

	// The consumer gets all 901 messages, each lane's in order.
	r = rc(t, dir, "", "recv", "-n", "901", "-timeout", "10s", "m")
	r.want(t, 0)
	next := map[string]int{}
	for _, line := range strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n") {
		if line == "after" {
			if next["b"] != 300 {
				t.Fatalf("\"after\" came after %d of lane 1's 300 earlier messages", next["b"])
			}
			next["after"]++
			continue
		}
		tag, num, _ := strings.Cut(line, " ")
		if n, err := strconv.Atoi(num); err != nil || n != next[tag] {
			t.Fatalf("got %q, want %s %d", line, tag, next[tag])
		}
		next[tag]++
	}
	if next["a"] != 300 || next["b"] != 300 || next["c"] != 300 || next["after"] != 1 {
		t.Errorf("received %v, want 300 of a, b and c and 1 after", next)
	}
	// Lane 0's producer is still attached: nothing more comes, and no end.
	rc(t, dir, "", "recv", "-timeout", "100ms", "m").want(t, 1, "timed out")
	rs = lsJSON(t, dir)["m"].Ring
	if rs.Stats.Received != 901 || rs.Consumer != "closed" {
		t.Errorf("after the consumers: %+v", rs)
	}
	for _, l := range rs.UsedLanes {
		if l.State != "alive" && l.BytesInFlight != 0 {
			t.Errorf("lane %d after everything was received: %+v", l.Lane, l)
		}
	}
}

// A `ringctl send` that was SIGKILLed leaves its producer role dead; the
// consumer gets what it committed, and so does the next producer, which
// continues after it.
func TestKilledSend(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{"r", "r2"} {
		rc(t, dir, "", "create", name, "-capacity", "4096").want(t, 0, "created ring "+name)
		killedSend(t, dir, name, "before the kill")
		rs := lsJSON(t, dir)[name].Ring
		if rs.UsedLanes[0].State != "dead" || rs.OwnerAlive || !rs.Dead {
			t.Errorf("after SIGKILL: %+v", rs)
		}
	}
	// The consumer gets what was committed, then is told the producer died.
	rc(t, dir, "", "recv", "r").want(t, 1, "before the kill\n", `ring "r"`, "peer died")

	// A new producer takes the dead one's lane, and continues after the
	// record it committed, although that producer never published its tail.
	rc(t, dir, "after the restart\n", "send", "r2").want(t, 0)
	l := lsJSON(t, dir)["r2"].Ring.UsedLanes[0]
	want := uint64(codec.FrameSize(len("before the kill"), 0) + codec.FrameSize(len("after the restart"), 0))
	if l.State != "closed" || l.BytesInFlight != want {
		t.Errorf("lane after the second producer closed: %+v, want %d bytes in flight", l, want)
	}
	r := rc(t, dir, "", "recv", "r2")
	r.want(t, 0)
	if r.stdout != "before the kill\nafter the restart\n" {
		t.Errorf("recv after the takeover: %q", r.stdout)
	}
}

// killedSend runs `ringctl send name`, gives it line, waits until the
// record is committed, and SIGKILLs it.
func killedSend(t *testing.T, dir, name, line string) {
	t.Helper()
	cmd := exec.Command(ringctl, "-dir", dir, "send", name)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	fmt.Fprintln(stdin, line)
	// The producer publishes its tail only every 256 messages, or when it
	// waits or closes, so the tail does not show a single record: its
	// length word, the commit flag, does.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if rs := lsJSON(t, dir)[name].Ring; rs.UsedLanes[0].State == "alive" && firstRecordCommitted(t, filepath.Join(dir, name)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("send never showed as an alive producer with a committed record")
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
}

// firstRecordCommitted reports whether the first record of an SPSC ring's
// lane is committed: its length word, the first 4 bytes of the data
// region, is non-zero. The data region of a one-lane ring starts at 4096
// (docs/LAYOUT.md: alignUp(1024 + 256, 4096)).
func firstRecordCommitted(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [4]byte
	if _, err := f.ReadAt(b[:], 4096); err != nil {
		t.Fatal(err)
	}
	return binary.LittleEndian.Uint32(b[:]) != 0
}

func TestStatWatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	startChild(t, dir, "w", "create,produce:300") // more than 256: the tail is published
	r := rc(t, dir, "", "stat", "-watch", "-interval", "20ms", "-count", "3", "w")
	r.want(t, 0, "SENT/s", "RECV/s", "BYTES/s", "FILL")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 5 { // the title, the header, three rows
		t.Fatalf("watch printed %d lines, want 5:\n%s", len(lines), r.stdout)
	}
	if !strings.Contains(lines[4], " 1/1 ") || !strings.Contains(lines[4], "alive") {
		t.Errorf("watch row lacks the lanes attached or the owner's state: %q", lines[4])
	}

	r = rc(t, dir, "", "stat", "-watch", "-json", "-interval", "20ms", "-count", "2", "w")
	r.want(t, 0)
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	for i := range 2 {
		var row watchRow
		if err := dec.Decode(&row); err != nil {
			t.Fatalf("row %d: %v\n%s", i, err, r.stdout)
		}
		if row.InFlight == 0 || row.FillPercent <= 0 || row.Lanes != "1/1" || row.Owner != "alive" {
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
	setVersion(t, filepath.Join(dir, "newer"), 3)
	// MPSC rings whose owner is gone: one with a live producer in lane 0
	// and nothing else, one whose two producers were killed.
	makeMPSC(t, dir, "lanes-live", 4)
	startChild(t, dir, "lanes-live", "produce:1")
	makeMPSC(t, dir, "lanes-dead", 4)
	p0, p1 := startChild(t, dir, "lanes-dead", "produce:1"), startChild(t, dir, "lanes-dead", "produce:1")
	p0.kill(t) // both at once: a dead producer's lane is free for the next one
	p1.kill(t)
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("psm_deadbeef", []byte("not a ring at all"))
	write("psm_zeros", make([]byte, 8192)) // a fresh Python SharedMemory is all zeros
	all := []string{"live", "opened", "dead", "closed", "newer", "lanes-live", "lanes-dead", "psm_deadbeef", "psm_zeros"}

	r := rc(t, dir, "", "gc", "-dry-run")
	r.want(t, 0, "would remove", "gc "+dir+": would remove 3, kept 5, skipped 1 foreign")
	for _, name := range all {
		if !exists(t, filepath.Join(dir, name)) {
			t.Fatalf("gc -dry-run removed %s", name)
		}
	}
	if f := row(t, r.stdout, "would"); f[2] != "closed" {
		t.Errorf("dry run: %q", f)
	}
	if !strings.Contains(r.stdout, "would remove  lanes-dead") || strings.Contains(r.stdout, "would remove  lanes-live") {
		t.Errorf("dry run, mpsc rings:\n%s", r.stdout)
	}

	r = rc(t, dir, "", "gc")
	r.want(t, 0, "gc "+dir+": removed 3, kept 5, skipped 1 foreign")
	for _, want := range []struct{ name, action, why string }{
		{"dead", "removed", "owner dead"},
		{"closed", "removed", "owner dead"},
		{"lanes-dead", "removed", "consumer none, producers 2 dead of 4 lanes, nobody attached"},
		{"lanes-live", "kept", "in use: lane 0 producer alive (pid"},
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
	rc(t, dir, "", "gc").want(t, 0, "removed  live", "removed 1, kept 4")
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

	// One live producer in one lane of many keeps an MPSC ring in use; once
	// it is killed, the ring is dead.
	makeMPSC(t, dir, "lanes", 8)
	prod := startChild(t, dir, "lanes", "produce:1")
	rc(t, dir, "", "rm", "lanes").want(t, 1, `ring "lanes"`, "in use: lane 0 producer alive (pid")
	prod.kill(t)
	rc(t, dir, "", "rm", "lanes").want(t, 0, "removed lanes (owner dead", "producers 1 dead of 8 lanes")

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

	makeRing(t, dir, "v3")
	setVersion(t, filepath.Join(dir, "v3"), 3)
	rc(t, dir, "", "rm", "v3").want(t, 1, `ring "v3"`, "layout version mismatch", "-force removes it anyway")
	rc(t, dir, "", "rm", "-force", "v3").want(t, 0, "removed v3 (forced; state unreadable: layout version mismatch")
	if exists(t, filepath.Join(dir, "v3")) {
		t.Fatal("rm -force left v3")
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
	if st.Stats.Sent != 5002 || st.Stats.Received != 5002 || st.BytesInFlight != 0 || st.Consumer != "closed" || st.UsedLanes[0].State != "closed" {
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

	// MPSC: -lanes, or its alias -slots; memory is lanes × capacity.
	rc(t, dir, "", "create", "m", "-mode", "mpsc", "-lanes", "4", "-capacity", "64KiB").want(t, 0,
		"mpsc, 4 lanes, capacity 64KiB per lane", "memory: 4 lanes × 64KiB = 256KiB")
	rc(t, dir, "", "create", "s", "-mode", "mpsc", "-slots", "3", "-capacity", "4096").want(t, 0, "mpsc, 3 lanes")
	rc(t, dir, "", "create", "d", "-mode", "mpsc").want(t, 0, "16 lanes", "memory: 16 lanes × 1MiB = 16MiB")
	m := lsJSON(t, dir)
	for _, want := range []struct {
		name            string
		lanes, capacity int
	}{{"m", 4, 64 << 10}, {"s", 3, 4096}, {"d", ring.DefaultLanes, ring.DefaultCapacity}} {
		en := m[want.name]
		rs := en.Ring
		if rs == nil || rs.Mode != "mpsc" || rs.Lanes != want.lanes || rs.Capacity != want.capacity || rs.LanesAttached != 0 ||
			len(rs.UsedLanes) != 0 || int64(rs.SegmentSize) != en.Size || rs.SegmentSize < want.lanes*want.capacity ||
			rs.SegmentSize > want.lanes*want.capacity+64<<10 {
			t.Errorf("mpsc ring %s: %+v %+v; want %d lanes of %d bytes", want.name, en, rs, want.lanes, want.capacity)
		}
	}
	rc(t, dir, "", "create", "big", "-mode", "mpsc", "-lanes", "1025").want(t, 1, `ring "big"`, "bad options", "1025 lanes")
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
		{"create", "x", "-lanes", "4"},
		{"create", "x", "-mode", "mpsc", "-lanes", "-1"},
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
			return rs.UsedLanes[0].State
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
