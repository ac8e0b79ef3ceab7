package ring

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The adversarial tests run real peer processes: the test binary
// re-executes itself, and init below runs the child's role before the
// testing framework starts (TestMain in process_test.go never sees these
// children). The role and its parameters come in environment variables.
const (
	envAdvRole = "RINGWIRE_ADV_ROLE" // the role, a key of advRoles
	envAdvDir  = "RINGWIRE_ADV_DIR"  // the directory of segments
	envAdvName = "RINGWIRE_ADV_NAME" // the ring
)

// advRoles are the child roles of the adversarial tests. A role talks to
// the test over stdin and stdout, one line at a time.
var advRoles = map[string]func() error{
	"scribble":      advScribble,
	"flip":          advFlip,
	"wake-send":     advWakeSend,
	"wake-fill":     advWakeFill,
	"echo":          advEcho,
	"pingpong-main": advPingPongMain,
}

func init() {
	role := os.Getenv(envAdvRole)
	if role == "" {
		return
	}
	fn := advRoles[role]
	if fn == nil {
		fmt.Fprintf(os.Stderr, "adversary child: unknown role %q\n", role)
		os.Exit(2)
	}
	if err := fn(); err != nil {
		fmt.Fprintf(os.Stderr, "adversary child %s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// advEnvInt reads an integer parameter of the child's role.
func advEnvInt(key string) int {
	n, _ := strconv.Atoi(os.Getenv(key))
	return n
}

// advAttach is the child's AttachOptions: the ring's directory and a wait
// strategy from RINGWIRE_ADV_WAIT ("block-hour": Block with a PeerCheck of
// an hour, so that only a futex wake ends a park).
func advAttach() AttachOptions {
	o := AttachOptions{Dir: os.Getenv(envAdvDir)}
	switch os.Getenv("RINGWIRE_ADV_WAIT") {
	case "block-hour":
		o.Wait = Wait{Mode: Block, PeerCheck: time.Hour}
	case "block-20ms":
		o.Wait = Wait{Mode: Block, PeerCheck: 20 * time.Millisecond}
	}
	return o
}

// advLine reads the next line from the test on stdin.
var advStdin = bufio.NewReader(os.Stdin)

func advExpect(want string) error {
	line, err := advStdin.ReadString('\n')
	if got := strings.TrimSpace(line); got != want {
		return fmt.Errorf("from the test: %q %v, want %q", got, err, want)
	}
	return nil
}

// advHold keeps the child's roles, unclosed, until the test kills it: a
// Close would wake the peer and hide a lost wake-up.
func advHold() error {
	time.Sleep(time.Minute)
	return fmt.Errorf("not killed")
}

// advProc is a running child.
type advProc struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
}

// advStart starts the test binary as a child with a role and extra
// environment variables; the test kills it at cleanup.
func advStart(t testing.TB, role, dir, name string, env ...string) *advProc {
	t.Helper()
	return advStartCmd(t, exec.Command(os.Args[0]), role, dir, name, env...)
}

func advStartCmd(t testing.TB, cmd *exec.Cmd, role, dir, name string, env ...string) *advProc {
	t.Helper()
	cmd.Env = append(os.Environ(), envAdvRole+"="+role, envAdvDir+"="+dir, envAdvName+"="+name,
		"GORACE=atexit_sleep_ms=0")
	cmd.Env = append(cmd.Env, env...)
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
	p := &advProc{cmd: cmd, in: in, lines: make(chan string, 16)}
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			p.lines <- s.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return p
}

// expect waits up to d for the child's next line and checks that it
// starts with want; it returns the line.
func (p *advProc) expect(t testing.TB, want string, d time.Duration) string {
	t.Helper()
	select {
	case line, ok := <-p.lines:
		if !ok {
			t.Fatalf("child %s exited before saying %q", p.cmd.Args[0], want)
		}
		if !strings.HasPrefix(line, want) {
			t.Fatalf("child said %q, want %q", line, want)
		}
		return line
	case <-time.After(d):
		t.Fatalf("child did not say %q within %v", want, d)
	}
	return ""
}

// say sends the child a line.
func (p *advProc) say(t testing.TB, line string) {
	t.Helper()
	if _, err := io.WriteString(p.in, line+"\n"); err != nil {
		t.Fatalf("to the child: %v", err)
	}
}

// advWaitFor polls cond until it holds or d passes, and reports whether it
// held.
func advWaitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
