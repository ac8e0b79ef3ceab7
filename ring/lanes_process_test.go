package ring_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ringwire/ringwire/ring"
)

var kills = flag.Int("ring.kills", 100, "producer SIGKILLs in the MPSC torture test")

const envID = "RINGWIRE_RING_ID"

// mpscSize is the payload size of message seq from producer id: both
// sides compute it, so the consumer checks lengths and bytes.
func mpscSize(id, seq, max int) int { return 8 + (id*7919+seq*104729)%(max-7) }

// mpscStamp fills a message: producer id and sequence number, then the
// pattern.
func mpscStamp(buf []byte, id, seq int) {
	copy(buf[8:], pattern(id+seq, len(buf)-8))
	binary.LittleEndian.PutUint32(buf, uint32(id))
	binary.LittleEndian.PutUint32(buf[4:], uint32(seq))
}

// mpscChild runs the MPSC child roles; it returns false for other roles.
func mpscChild(role string, o ring.AttachOptions, name string, n int) (bool, error) {
	switch role {
	case "mpsc-produce": // n messages (0: until killed) through Reserve/Commit
		id, _ := strconv.Atoi(os.Getenv(envID))
		r, err := ring.Open(name, o)
		if err != nil {
			return true, err
		}
		p, err := r.Producer()
		if err != nil {
			return true, err
		}
		if n == 0 {
			fmt.Println("ready") // the harness kills it from now on
		}
		for seq := 0; n == 0 || seq < n; seq++ {
			buf, err := p.Reserve(mpscSize(id, seq, p.MaxMessage()))
			if errors.Is(err, ring.ErrPeerDead) { // the consumer is being replaced
				seq--
				continue
			}
			if err != nil {
				return true, fmt.Errorf("message %d: %w", seq, err)
			}
			mpscStamp(buf, id, seq)
			if n == 0 {
				// Work inside the reservation, as a zero-copy producer
				// does: it widens the window between claim and commit in
				// which the harness's SIGKILLs land.
				for start := time.Now(); time.Since(start) < 5*time.Microsecond; {
				}
			}
			if err := p.Commit(); err != nil {
				return true, fmt.Errorf("message %d: %w", seq, err)
			}
		}
		return true, p.Close()
	case "mpsc-consume": // print "id seq" for each message peeked, before releasing it
		c, err := ring.OpenConsumer(name, o)
		if err != nil {
			return true, err
		}
		line := make([]byte, 0, 32)
		for {
			m, err := c.Peek()
			if err == io.EOF {
				return true, c.Close()
			}
			if err != nil {
				return true, err
			}
			id, seq := int(binary.LittleEndian.Uint32(m)), int(binary.LittleEndian.Uint32(m[4:]))
			line = fmt.Appendf(line[:0], "%d %d\n", id, seq)
			if _, err := os.Stdout.Write(line); err != nil {
				return true, err
			}
			if err := c.Release(); err != nil {
				return true, err
			}
		}
	}
	return false, nil
}

func startMPSCChild(t *testing.T, dir, name, role string, id, n int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envRole+"="+role, envDir+"="+dir, envName+"="+name,
		envCount+"="+strconv.Itoa(n), envID+"="+strconv.Itoa(id), "GORACE=atexit_sleep_ms=0")
	cmd.Stderr = os.Stderr
	return cmd
}

// TestMPSCConsumerTakeover: the consumer process is SIGKILLed mid-stream
// and replaced, several times. Nothing committed is lost, and the only
// messages delivered twice are the one each killed consumer had peeked but
// not released.
func TestMPSCConsumerTakeover(t *testing.T) {
	dir := t.TempDir()
	r := newRing(t, ring.Options{Dir: dir, Mode: ring.MPSC, Capacity: 16384, MaxMessage: 512,
		Wait: ring.Wait{PeerCheck: 10 * time.Millisecond}})
	const producers, each, consumerKills = 2, 4000, 5
	var wg sync.WaitGroup
	for id := range producers {
		cmd := startMPSCChild(t, dir, r.Name(), "mpsc-produce", id, each)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); cmd.Wait() }()
	}
	seen := map[[2]int]int{}
	lastSeq := map[int]int{}
	dups := 0
	for k := 0; ; k++ {
		cmd := startMPSCChild(t, dir, r.Name(), "mpsc-consume", 0, 0)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := 1000 + k*300
		sc := bufio.NewScanner(out)
		for lines := 0; sc.Scan(); lines++ {
			var id, seq int
			if _, err := fmt.Sscanf(sc.Text(), "%d %d", &id, &seq); err != nil {
				t.Fatalf("consumer said %q", sc.Text())
			}
			if s, ok := lastSeq[id]; ok && seq < s {
				t.Fatalf("producer %d: message %d after %d", id, seq, s)
			}
			lastSeq[id] = seq
			if seen[[2]int{id, seq}]++; seen[[2]int{id, seq}] > 1 {
				dups++
			}
			if k < consumerKills && lines == killAfter {
				cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		err = cmd.Wait()
		if k >= consumerKills {
			if err != nil {
				t.Fatalf("last consumer: %v", err)
			}
			break
		}
	}
	wg.Wait()
	for id := range producers {
		for seq := range each {
			if seen[[2]int{id, seq}] == 0 {
				t.Fatalf("producer %d message %d never delivered", id, seq)
			}
		}
	}
	if dups > consumerKills {
		t.Fatalf("%d messages delivered twice after %d consumer kills", dups, consumerKills)
	}
	t.Logf("%d messages, %d consumer kills, %d redelivered", producers*each, consumerKills, dups)
}
