package bench

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Case is one measurement: one transport, one mode, one message size, in
// Rounds rounds of Duration each (or N messages in all).
type Case struct {
	Transport string        `json:"transport"`
	Mode      Mode          `json:"mode"`
	Size      int           `json:"size"`
	N         int64         `json:"n"`        // measured messages, all rounds; 0: run for Duration
	Duration  time.Duration `json:"duration"` // measured time of one round; 0: run for N messages
	Warmup    time.Duration `json:"warmup"`   // unrecorded time before the first round
	Wait      string        `json:"wait"`     // the ring's wait strategy
	Gap       time.Duration `json:"gap"`      // idle time before each ping
	Pin       bool          `json:"pin"`      // parent on cpu0, peer on cpu1
	Rounds    int           `json:"rounds"`   // interleaved rounds; see RunSize
	Capacity  int           `json:"capacity"` // the ring's data region
	Dir       string        `json:"dir"`      // for segments; "" means /dev/shm
	ZeroCopy  bool          `json:"zero_copy"`
}

// MinSize is the smallest message: each one carries an 8-byte control word
// (a sequence number, a timestamp or a stop mark).
const MinSize = 8

// Control words of stream mode (the first 8 bytes of a message). Any larger
// value is a CLOCK_MONOTONIC timestamp of a measured message.
const (
	wordStop     = 0 // the last message
	wordWarmup   = 1 // not measured
	wordMeasured = 2 // measured, not timestamped
)

// stampEvery: in stream mode one message in stampEvery carries a timestamp,
// so that reading the clock (some 25 ns) does not bound the rate.
const stampEvery = 32

func (c Case) env() Env {
	return Env{Dir: c.Dir, Mode: c.Mode, Size: c.Size, Capacity: c.Capacity, Wait: c.Wait, ZeroCopy: c.ZeroCopy}
}

// Progress is a live count of a running case's measured messages, for a
// progress line. A nil *Progress is ignored.
type Progress struct {
	n atomic.Int64
}

func (p *Progress) set(n int64) {
	if p != nil {
		p.n.Store(n)
	}
}

// Count returns the messages measured so far.
func (p *Progress) Count() int64 {
	if p == nil {
		return 0
	}
	return p.n.Load()
}

// peerTimeout bounds how long the parent waits for a peer to start or end.
const peerTimeout = 30 * time.Second

// RunCase measures one case in one round of c.N messages or c.Duration
// after c.Warmup: it sets up the transport, starts the peer (a re-executed
// copy of this binary, which must call PeerMain first thing in main, or a
// goroutine for in-process transports), measures and tears everything
// down. A failure is returned as an error; the Result then only names the
// case. RunSize measures cases side by side in interleaved rounds.
func RunCase(t Transport, c Case, progress *Progress) (Result, error) {
	c.Rounds = 1
	rs, errs := runSize([]Transport{t}, c, func(int, string) (*Progress, func()) { return progress, func() {} })
	return rs[0], errs[0]
}

// The live set: setups and peers to clean up on a signal.
var live = struct {
	sync.Mutex
	setups map[Setup]bool
	peers  map[*peerHandle]bool
}{setups: map[Setup]bool{}, peers: map[*peerHandle]bool{}}

func track(s Setup) {
	live.Lock()
	live.setups[s] = true
	live.Unlock()
}

func untrack(s Setup) {
	live.Lock()
	delete(live.setups, s)
	live.Unlock()
}

// Interrupt removes the names of every live case's resources (ring
// segments, socket files) and kills every live peer. It is for a signal
// handler, which should exit right after it: the running case is left
// broken.
func Interrupt() error {
	live.Lock()
	defer live.Unlock()
	var err error
	for s := range live.setups {
		err = errors.Join(err, s.Remove())
	}
	for p := range live.peers {
		p.kill()
	}
	return err
}
