//go:build ringcrash

package ring_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringwire/ringwire/ring"
)

// Crash points: built with -tags ringcrash, a process kills itself with
// SIGKILL at a named step of the send, release, attach or close protocol
// ($RINGWIRE_CRASH, the $RINGWIRE_CRASH_AFTER-th time it passes it). These
// tests run a child up to each point in turn, for SPSC and MPSC, and check
// recovery: nothing committed is lost, only what was not released is
// delivered again, no ErrCorrupt, no stall.

// crashLane is small, so that the sizes below wrap often, and holds the
// up to 17 messages a producer test leaves unread.
const crashLane = 64 << 10

// crashSize is the size of message seq: 8 bytes to 3 KiB, so that records
// wrap around the 16 KiB lanes and padding is written.
func crashSize(seq int) int { return 8 + (seq*2654435761)%3000 }

func init() {
	// crash-produce: send numbered messages, "seq" on stdout after each
	// Send that returned nil; with n > 0, n messages then Close.
	childRoles["crash-produce"] = func(o ring.AttachOptions, name string, n int) error {
		first, _ := strconv.Atoi(os.Getenv(envID))
		p, err := ring.OpenProducer(name, o)
		if err != nil {
			return err
		}
		buf := make([]byte, 4096)
		line := make([]byte, 0, 16)
		for seq := first; n == 0 || seq < first+n; seq++ {
			m := buf[:crashSize(seq)]
			stamp(m, seq)
			if err := p.Send(m); err != nil {
				return fmt.Errorf("message %d: %w", seq, err)
			}
			line = strconv.AppendInt(line[:0], int64(seq), 10)
			if _, err := os.Stdout.Write(append(line, '\n')); err != nil {
				return err
			}
		}
		return p.Close()
	}
	// crash-consume: receive (Recv, or Drain in batches of 8 with
	// $RINGWIRE_RING_SIZE=drain) and print "seq" for each message taken,
	// until io.EOF.
	childRoles["crash-consume"] = func(o ring.AttachOptions, name string, n int) error {
		c, err := ring.OpenConsumer(name, o)
		if err != nil {
			return err
		}
		line := make([]byte, 0, 16)
		emit := func(m []byte) error {
			seq, err := crashCheck(m)
			if err != nil {
				return err
			}
			line = strconv.AppendInt(line[:0], int64(seq), 10)
			_, err = os.Stdout.Write(append(line, '\n'))
			return err
		}
		for {
			if os.Getenv(envSize) == "drain" {
				_, err = c.Drain(context.Background(), 8, emit)
			} else {
				var m []byte
				if m, err = c.Recv(); err == nil {
					err = emit(m)
				}
			}
			if err == io.EOF {
				return c.Close()
			}
			if err != nil {
				return err
			}
		}
	}
}

// crashCheck verifies a message and returns its number.
func crashCheck(m []byte) (int, error) {
	if len(m) < 8 {
		return 0, fmt.Errorf("%d-byte message", len(m))
	}
	seq := 0
	for k := range 8 {
		seq |= int(m[k]) << (8 * k)
	}
	want := make([]byte, crashSize(seq))
	stamp(want, seq)
	if string(m) != string(want) {
		return seq, fmt.Errorf("message %d: %d bytes, not the %d sent", seq, len(m), len(want))
	}
	return seq, nil
}

// crashRun runs a child to completion or to its crash and returns the
// numbers it printed and whether it was killed by SIGKILL.
func crashRun(t *testing.T, dir, name, role string, first, n int, env ...string) (seqs []int, crashed bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), envRole+"="+role, envDir+"="+dir, envName+"="+name,
		envCount+"="+strconv.Itoa(n), envID+"="+strconv.Itoa(first), "GORACE=atexit_sleep_ms=0"), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer done.Stop()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		seq, err := strconv.Atoi(sc.Text())
		if err != nil {
			t.Fatalf("%s said %q", role, sc.Text())
		}
		seqs = append(seqs, seq)
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ProcessState.Sys().(interface{ Signaled() bool }).Signaled() {
		return seqs, true
	}
	if err != nil {
		t.Fatalf("%s: %v: %s", role, err, stderr.String())
	}
	return seqs, false
}

var producerPoints = []struct {
	point string
	after []int // crash at these passes, one run each
}{
	{"attach.locked", []int{1}},
	{"attach.recovered", []int{1}},
	{"send.padded", []int{1}},
	{"send.copied", []int{1, 9, 17}},
	{"send.zeroed", []int{1, 9, 17}},
	{"send.committed", []int{1, 9, 17}},
	{"send.signalled", []int{1, 9, 17}},
	{"close.tail", []int{1}},
	{"close.state", []int{1}},
}

// collect receives in the background until the test ends, and returns a
// function that waits until n messages have arrived (or fails) and
// returns their numbers.
func collect(t *testing.T, c *ring.Consumer, paused *atomic.Bool) func(n int) []int {
	var mu sync.Mutex
	var seqs []int
	var failed error
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if paused.Load() {
				time.Sleep(time.Millisecond)
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			m, err := c.RecvContext(ctx)
			cancel()
			switch {
			case err == nil:
				seq, err := crashCheck(m)
				mu.Lock()
				seqs = append(seqs, seq)
				if err != nil && failed == nil {
					failed = err
				}
				mu.Unlock()
			case err == io.EOF, errors.Is(err, ring.ErrPeerDead), errors.Is(err, context.DeadlineExceeded):
				time.Sleep(time.Millisecond) // between producers
			default:
				mu.Lock()
				failed = err
				mu.Unlock()
				return
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return func(n int) []int {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Millisecond) {
			mu.Lock()
			got, err := append([]int(nil), seqs...), failed
			mu.Unlock()
			if err != nil {
				t.Fatalf("consumer, after %d messages: %v", len(got), err)
			}
			if len(got) >= n {
				return got
			}
			paused.Store(false)
			if time.Now().After(deadline) {
				t.Fatalf("%d messages arrived, want %d: %v", len(got), n, got)
			}
		}
	}
}

// TestCrashPointsProducer: a producer dies at each step of attaching,
// sending and closing. Every message whose Send returned nil arrives once,
// in order; the next producer takes the lane over and its messages follow;
// the consumer never sees ErrCorrupt.
func TestCrashPointsProducer(t *testing.T) {
	for _, mode := range []ring.Mode{ring.SPSC, ring.MPSC} {
		for _, pt := range producerPoints {
			for _, after := range pt.after {
				t.Run(fmt.Sprintf("%v/%s/%d", mode, pt.point, after), func(t *testing.T) {
					dir := t.TempDir()
					r := newRing(t, ring.Options{Dir: dir, Mode: mode, Capacity: crashLane, Checksum: true,
						Wait: ring.Wait{PeerCheck: 10 * time.Millisecond}})
					c, err := r.Consumer()
					if err != nil {
						t.Fatal(err)
					}
					var paused atomic.Bool
					wait := collect(t, c, &paused)
					// 30 messages go through, so that what follows wraps.
					const warm, n = 30, 5
					if seqs, crashed := crashRun(t, dir, r.Name(), "crash-produce", 0, warm); crashed || len(seqs) != warm {
						t.Fatalf("warm-up producer: %d messages, crashed %v", len(seqs), crashed)
					}
					wait(warm)
					// From now on nothing is read until the last producer
					// is done: its takeover must find where the dead one's
					// committed records end.
					paused.Store(true)
					var acked []int
					if strings.HasPrefix(pt.point, "attach.") {
						// A producer sends 10 and closes; the next dies
						// while it takes the lane over.
						acked, _ = crashRun(t, dir, r.Name(), "crash-produce", warm, 10)
						seqs, crashed := crashRun(t, dir, r.Name(), "crash-produce", warm+10, 10, "RINGWIRE_CRASH="+pt.point)
						if !crashed || len(seqs) != 0 {
							t.Fatalf("the producer did not die attaching: crashed %v, sent %d", crashed, len(seqs))
						}
					} else {
						count := 0 // until killed
						if strings.HasPrefix(pt.point, "close.") {
							count = 10
						}
						var crashed bool
						acked, crashed = crashRun(t, dir, r.Name(), "crash-produce", warm, count,
							"RINGWIRE_CRASH="+pt.point, "RINGWIRE_CRASH_AFTER="+strconv.Itoa(after))
						if !crashed {
							t.Fatalf("the producer did not reach %s %d times", pt.point, after)
						}
					}
					// The next producer takes the lane over, after the last
					// committed record: one committed but unacknowledged
					// message may stand between.
					next := warm + len(acked)
					more, crashed := crashRun(t, dir, r.Name(), "crash-produce", next, n)
					if crashed || len(more) != n {
						t.Fatalf("the second producer sent %d of %d (crashed %v)", len(more), n, crashed)
					}
					got := wait(next + n)
					time.Sleep(20 * time.Millisecond) // anything more would be a duplicate
					got = wait(next + n)
					want := make([]int, 0, next+n+1)
					for seq := range next + n {
						want = append(want, seq)
					}
					if len(got) == next+n+1 { // the dead one's last commit
						want = append(want[:next+1], want[next:]...)
					}
					if !slices.Equal(got, want) {
						t.Fatalf("%d acknowledged, then %d from the next producer: got %v", len(acked), n, got)
					}
				})
			}
		}
	}
}

var consumerPoints = []struct {
	point string
	after []int
	drain bool
}{
	{"consumer.locked", []int{1}, false},
	{"consumer.cooled", []int{1}, false},
	{"recv.read", []int{1, 30}, false},
	{"recv.copied", []int{1, 30}, false},
	{"recv.released", []int{1, 30}, false},
	{"drain.taken", []int{1, 3}, true},
	{"consumer.close", []int{1}, false},
}

// TestCrashPointsConsumer: a consumer dies at each step of attaching,
// receiving and closing; the next consumer delivers everything the dead
// one had not released, and nothing it had: with Recv, no message twice;
// with Drain, at most the dead one's last batch.
func TestCrashPointsConsumer(t *testing.T) {
	for _, mode := range []ring.Mode{ring.SPSC, ring.MPSC} {
		for _, pt := range consumerPoints {
			for _, after := range pt.after {
				t.Run(fmt.Sprintf("%v/%s/%d", mode, pt.point, after), func(t *testing.T) {
					dir := t.TempDir()
					r := newRing(t, ring.Options{Dir: dir, Mode: mode, Capacity: crashLane, Checksum: true,
						Wait: ring.Wait{PeerCheck: 10 * time.Millisecond}})
					p, err := r.Producer()
					if err != nil {
						t.Fatal(err)
					}
					// 100 messages, some 150 KiB through a 64 KiB lane: the
					// consumers wrap. The sender retries while a dead
					// consumer is being replaced.
					const n = 100
					sent := make(chan error, 1)
					go func() {
						buf := make([]byte, 4096)
						for seq := range n {
							m := buf[:crashSize(seq)]
							stamp(m, seq)
							ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
							err := p.SendContext(ctx, m)
							for errors.Is(err, ring.ErrPeerDead) {
								time.Sleep(time.Millisecond)
								err = p.SendContext(ctx, m)
							}
							cancel()
							if err != nil {
								sent <- fmt.Errorf("message %d: %w", seq, err)
								return
							}
						}
						sent <- p.Close()
					}()
					extra := []string{"RINGWIRE_CRASH=" + pt.point, "RINGWIRE_CRASH_AFTER=" + strconv.Itoa(after)}
					var env []string
					if pt.drain {
						env = append(env, envSize+"=drain")
					}
					first, crashed := crashRun(t, dir, r.Name(), "crash-consume", 0, 0, append(extra, env...)...)
					if !crashed {
						t.Fatalf("the consumer did not reach %s %d times (it took %d)", pt.point, after, len(first))
					}
					second, crashed := crashRun(t, dir, r.Name(), "crash-consume", 0, 0, env...)
					if crashed {
						t.Fatal("the second consumer crashed")
					}
					if err := <-sent; err != nil {
						t.Fatal(err)
					}
					all := append(append([]int(nil), first...), second...)
					seen := map[int]int{}
					for _, seq := range all {
						seen[seq]++
					}
					// Dying at recv.released, the first consumer had released
					// the message it was receiving (its head was stored) but
					// not returned it: the ring delivered it, and must not
					// deliver it again. Everything else arrives.
					released := -1
					if pt.point == "recv.released" {
						released = len(first)
					}
					for seq := range n {
						switch {
						case seq == released && seen[seq] != 0:
							t.Fatalf("message %d, released by the dead consumer, delivered again (first %v, second %v)", seq, first, second)
						case seq != released && seen[seq] == 0:
							t.Fatalf("message %d lost (first consumer %v, second %v)", seq, first, second)
						}
					}
					dups := len(all) - n
					if released >= 0 {
						dups++
					}
					switch {
					case !pt.drain && dups != 0:
						t.Fatalf("%d messages delivered twice with Recv (first %v, second %v)", dups, first, second)
					case pt.drain && dups > 8:
						t.Fatalf("%d messages delivered twice, more than a batch (first %v, second %v)", dups, first, second)
					}
					for i := 1; i < len(second); i++ {
						if second[i] != second[i-1]+1 {
							t.Fatalf("second consumer out of order: %v", second)
						}
					}
				})
			}
		}
	}
}
