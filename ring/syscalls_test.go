package ring

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The system calls of Block mode, counted by strace(1) over round trips
// between two processes: the futex calls of the wake-up protocol (the
// shared futexes; the Go runtime's own are private), and the fcntl calls
// of the peer checks (F_OFD_GETLK) and role locks (F_OFD_SETLK).

// advPingPongMain creates two rings, starts an echo child on them, and
// makes RINGWIRE_ADV_N round trips, writing "loop-start" and "loop-end
// NANOSECONDS" around them so that a trace can tell the loop from the
// set-up.
func advPingPongMain() error {
	dir, n := os.Getenv(envAdvDir), advEnvInt("RINGWIRE_ADV_N")
	o := advAttach()
	req, err := Create("", Options{Dir: dir, Capacity: 4096, Wait: o.Wait})
	if err != nil {
		return err
	}
	defer req.Close()
	rep, err := Create("", Options{Dir: dir, Capacity: 4096, Wait: o.Wait})
	if err != nil {
		return err
	}
	defer rep.Close()
	p, err := req.Producer()
	if err != nil {
		return err
	}
	c, err := rep.Consumer()
	if err != nil {
		return err
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envAdvRole+"=echo", envAdvName+"="+req.Name(),
		"RINGWIRE_ADV_NAME2="+rep.Name())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Process.Kill()
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		return fmt.Errorf("echo child: %q %v", line, err)
	}
	fmt.Println("loop-start")
	start := time.Now()
	if err := pingPong(p, c, n); err != nil {
		return err
	}
	fmt.Printf("loop-end %d\n", time.Since(start).Nanoseconds())
	return cmd.Wait()
}

// straceCounts are the calls a trace holds between the loop's markers.
type straceCounts struct {
	wait, wake     int // shared futexes: the rings'
	private        int // private futexes: the Go runtime's
	getlk, setlk   int // fcntl: peer checks, role locks
	otherFcntl     int
	loop           time.Duration
	started, ended bool
}

func parseStrace(text string) straceCounts {
	var s straceCounts
	for line := range strings.Lines(text) {
		switch {
		case strings.Contains(line, "loop-start"):
			s.started = true
			continue
		case strings.Contains(line, `"loop-end `):
			s.ended = true
			f := strings.Fields(line[strings.Index(line, `"loop-end `)+1:])
			if len(f) > 1 {
				ns, _ := strconv.ParseInt(strings.TrimRight(f[1], `\n",`), 10, 64)
				s.loop = time.Duration(ns)
			}
			continue
		}
		if !s.started || s.ended || strings.Contains(line, "resumed>") {
			continue
		}
		switch {
		case strings.Contains(line, "futex(") && strings.Contains(line, "_PRIVATE"):
			s.private++
		case strings.Contains(line, "futex(") && strings.Contains(line, "FUTEX_WAIT_BITSET"):
			s.wait++
		case strings.Contains(line, "futex(") && strings.Contains(line, "FUTEX_WAKE,"):
			s.wake++
		case strings.Contains(line, "fcntl(") && strings.Contains(line, "F_OFD_GETLK"):
			s.getlk++
		case strings.Contains(line, "fcntl(") && strings.Contains(line, "F_OFD_SETLK"):
			s.setlk++
		case strings.Contains(line, "fcntl("):
			s.otherFcntl++
		}
	}
	return s
}

// TestBlockSyscalls: over 5,000 Block-mode round trips between two
// processes (10,000 messages), each side makes at most one futex wait and
// one futex wake per message, and no fcntl call at all: the peer check
// (F_OFD_GETLK) runs once per PeerCheck of waiting, never per park, and
// the role locks are taken before the loop.
func TestBlockSyscalls(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("skipping: counts Linux futex and fcntl calls")
	}
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("skipping: strace is not installed (apt-get install strace): ", err)
	}
	if out, err := exec.Command(strace, "-o", "/dev/null", "true").CombinedOutput(); err != nil {
		t.Skipf("skipping: strace cannot trace here (ptrace not permitted?): %v: %s", err, out)
	}
	const n = 5000
	for _, wait := range []string{"block-hour", "block-20ms"} {
		t.Run(wait, func(t *testing.T) {
			dir := t.TempDir()
			trace := dir + "/trace"
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, strace, "-f", "-qq", "-s", "32", "-e", "trace=futex,fcntl,write",
				"-o", trace, os.Args[0])
			cmd.Env = append(os.Environ(), envAdvRole+"=pingpong-main", envAdvDir+"="+dir,
				"RINGWIRE_ADV_N="+strconv.Itoa(n), "RINGWIRE_ADV_WAIT="+wait, "GORACE=atexit_sleep_ms=0")
			cmd.Stderr = os.Stderr
			start := time.Now()
			if out, err := cmd.Output(); err != nil {
				t.Fatalf("traced ping-pong: %v\n%s", err, out)
			}
			text, err := os.ReadFile(trace)
			if err != nil {
				t.Fatal(err)
			}
			s := parseStrace(string(text))
			if !s.started || !s.ended {
				t.Fatalf("the trace lacks the loop's markers (%d bytes)", len(text))
			}
			msgs := 2 * n
			t.Logf("%d round trips under strace in %v (%v in all): futex wait %d, wake %d (%.3f, %.3f per message), runtime futexes %d; fcntl F_OFD_GETLK %d, F_OFD_SETLK %d, other %d",
				n, s.loop.Round(time.Millisecond), time.Since(start).Round(time.Millisecond),
				s.wait, s.wake, float64(s.wait)/float64(msgs), float64(s.wake)/float64(msgs), s.private,
				s.getlk, s.setlk, s.otherFcntl)
			// A message parks its receiver at most once and costs its
			// sender at most one wake; a little slack for a wait
			// retried after a signal.
			if limit := msgs + msgs/100; s.wait > limit || s.wake > limit {
				t.Errorf("futex: %d waits and %d wakes for %d messages, want at most %d each", s.wait, s.wake, msgs, limit)
			}
			// A wake is owed only to a side that announced it may sleep,
			// so wakes follow waits: a sender that woke at every commit
			// would make more.
			if s.wake > s.wait+msgs/20 {
				t.Errorf("futex: %d wakes for %d waits: wakes not owed", s.wake, s.wait)
			}
			if s.wait == 0 || s.wake == 0 {
				t.Errorf("futex: %d waits and %d wakes: Block mode did not park", s.wait, s.wake)
			}
			// No wait lasts a PeerCheck in a ping-pong, so no peer check
			// is due; at most one per side per PeerCheck of the loop.
			checks := 0
			if wait == "block-20ms" {
				checks = 2 * int(s.loop/(20*time.Millisecond)+1)
			}
			if s.getlk > checks || s.setlk != 0 || s.otherFcntl != 0 {
				t.Errorf("fcntl in the loop: %d F_OFD_GETLK (want at most %d), %d F_OFD_SETLK, %d others (want 0)", s.getlk, checks, s.setlk, s.otherFcntl)
			}
		})
	}
}
