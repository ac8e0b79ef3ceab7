package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Case is one measurement: one transport, one mode, one message size.
type Case struct {
	Transport string        `json:"transport"`
	Mode      Mode          `json:"mode"`
	Size      int           `json:"size"`
	N         int64         `json:"n"`        // measured messages; 0: run for Duration
	Duration  time.Duration `json:"duration"` // measured time; 0: run for N messages
	Warmup    time.Duration `json:"warmup"`   // unrecorded time before measuring
	Wait      string        `json:"wait"`     // the ring's wait strategy
	Gap       time.Duration `json:"gap"`      // idle time before each ping
	Pin       bool          `json:"pin"`      // parent on cpu0, peer on cpu1
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

// RunCase measures one case: it sets up the transport, starts the peer (a
// re-executed copy of this binary, which must call PeerMain first thing in
// main, or a goroutine for in-process transports), warms up, measures and
// tears everything down. A failure is returned as an error; the Result then
// only names the case.
func RunCase(t Transport, c Case, progress *Progress) (res Result, err error) {
	res = Result{Transport: t.Name(), Mode: c.Mode, Size: c.Size}
	if t.Name() == "floor" {
		res.Note = "one cache line: carries 8 bytes at every size"
	}
	if c.Size < MinSize {
		return res, fmt.Errorf("%w: size %d B is below the minimum, %d B", ErrBadMessage, c.Size, MinSize)
	}
	if !supports(t, c.Mode) {
		return res, fmt.Errorf("%s: %w %s", t.Name(), ErrUnsupported, c.Mode)
	}
	if st, ok := t.(SelfTimed); ok {
		r, err := st.Measure(c, progress)
		r.Transport, r.Mode, r.Size = res.Transport, res.Mode, res.Size
		return r, err
	}
	s, err := t.Setup(c.env())
	if err != nil {
		return res, fmt.Errorf("%s: setup: %w", t.Name(), err)
	}
	track(s)
	defer func() {
		untrack(s)
		err = errors.Join(err, s.Close())
	}()

	var peer *peerHandle
	if ip, ok := t.(InProcess); ok && ip.InProcess() {
		peer, err = startGoroutinePeer(t, c, s.Addr())
	} else {
		peer, err = startProcessPeer(t, c, s)
	}
	if err != nil {
		return res, fmt.Errorf("%s: peer: %w", t.Name(), err)
	}
	conn, err := s.Accept(peerTimeout)
	if err != nil {
		peer.kill()
		return res, fmt.Errorf("%s: accept: %w", t.Name(), err)
	}

	var r Result
	func() {
		if c.Pin {
			unpin, perr := pinThread(0)
			if perr != nil {
				err = perr
				return
			}
			defer unpin()
		}
		if c.Mode == Stream {
			r, err = streamRecv(conn, c, progress)
		} else {
			r, err = pingPong(conn, c, t.Name() != "floor", progress)
		}
	}()
	if err != nil {
		peer.kill()
	}
	err = errors.Join(err, conn.Close())
	if perr := peer.wait(peerTimeout); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return res, fmt.Errorf("%s %d B: %w", t.Name(), c.Size, err)
	}
	r.Transport, r.Mode, r.Size, r.Note = res.Transport, res.Mode, res.Size, res.Note
	r.setRates(c.Size)
	return r, nil
}

// fill gives a message a recognisable pattern after its control word.
func fill(msg []byte) {
	for i := MinSize; i < len(msg); i++ {
		msg[i] = byte(i)
	}
}

// verifyFirst is how many round trips have their whole payload checked
// (after that, only the sequence word, which keeps checking order and loss
// without adding a pass over the message to what is timed).
const verifyFirst = 16

func filled(m []byte) bool {
	for i := MinSize; i < len(m); i++ {
		if m[i] != byte(i) {
			return false
		}
	}
	return true
}

// pingPong is the parent's side of pingpong mode: send, wait for the echo,
// time the round trip. payload says the transport carries whole messages
// (the floor carries the first 8 bytes only).
func pingPong(conn Conn, c Case, payload bool, progress *Progress) (Result, error) {
	clk := timer()
	msg := make([]byte, c.Size)
	buf := make([]byte, c.Size)
	fill(msg)
	h := NewHistogram()
	var seq uint64
	roundTrip := func() (int64, int64, error) {
		if c.Gap > 0 {
			time.Sleep(c.Gap)
		}
		seq++
		binary.LittleEndian.PutUint64(msg, seq)
		t0 := clk.now()
		if err := conn.Send(msg); err != nil {
			return 0, 0, err
		}
		m, err := conn.Recv(buf)
		t1 := clk.now()
		if err != nil {
			return 0, 0, err
		}
		if len(m) != c.Size || binary.LittleEndian.Uint64(m) != seq {
			return 0, 0, fmt.Errorf("%w: round trip %d came back as %d bytes, word %d",
				ErrBadMessage, seq, len(m), binary.LittleEndian.Uint64(m))
		}
		if payload && seq <= verifyFirst && !bytes.Equal(m[MinSize:], msg[MinSize:]) {
			return 0, 0, fmt.Errorf("%w: round trip %d came back with other content", ErrBadMessage, seq)
		}
		return t1 - t0, t1, nil
	}
	// The first round trip waits for the peer to be scheduled: never counted.
	if _, _, err := roundTrip(); err != nil {
		return Result{}, err
	}
	for end := Mono() + int64(c.Warmup); Mono() < end; {
		if _, _, err := roundTrip(); err != nil {
			return Result{}, err
		}
	}
	deadline := int64(-1)
	if c.Duration > 0 {
		deadline = clk.now() + clk.fromNS(int64(c.Duration))
	}
	for n := int64(0); c.N == 0 || n < c.N; {
		d, t1, err := roundTrip()
		if err != nil {
			return Result{}, err
		}
		h.Record(clk.ns(d))
		n++
		if n&1023 == 0 {
			progress.set(n)
		}
		if deadline >= 0 && t1 >= deadline {
			break
		}
	}
	binary.LittleEndian.PutUint64(msg, wordStop)
	if err := conn.Send(msg); err != nil {
		return Result{}, err
	}
	return Result{Count: h.Count(), ElapsedNS: int64(h.Sum()), Latency: h.Latency("rtt")}, nil
}

// echo is the peer's side of pingpong mode.
func echo(conn Conn, c Case) error {
	buf := make([]byte, c.Size)
	for {
		m, err := conn.Recv(buf)
		if err != nil {
			return err
		}
		if len(m) >= MinSize && binary.LittleEndian.Uint64(m) == wordStop {
			return nil
		}
		if err := conn.Send(m); err != nil {
			return err
		}
	}
}

// streamSend is the peer's side of stream mode: send as fast as the
// transport takes messages, warm-up first, then the measured ones (one in
// stampEvery timestamped), then a stop mark.
func streamSend(conn Conn, c Case) error {
	msg := make([]byte, c.Size)
	fill(msg)
	put := func(w uint64) { binary.LittleEndian.PutUint64(msg, w) }
	put(wordWarmup)
	for i, end := 0, Mono()+int64(c.Warmup); ; i++ {
		if i&63 == 0 && Mono() >= end {
			break
		}
		if err := conn.Send(msg); err != nil {
			return err
		}
	}
	end := Mono() + int64(c.Duration)
	for i := int64(0); c.N == 0 || i < c.N; i++ {
		if i%stampEvery == 0 {
			now := Mono()
			if c.Duration > 0 && now >= end {
				break
			}
			put(uint64(now))
		} else {
			put(wordMeasured)
		}
		if err := conn.Send(msg); err != nil {
			return err
		}
	}
	put(wordStop)
	return conn.Send(msg)
}

// streamRecv is the parent's side of stream mode.
func streamRecv(conn Conn, c Case, progress *Progress) (Result, error) {
	buf := make([]byte, c.Size)
	h := NewHistogram()
	var n, start, got int64
	for {
		m, err := conn.Recv(buf)
		if err != nil {
			return Result{}, err
		}
		if len(m) != c.Size {
			return Result{}, fmt.Errorf("%w: got %d bytes, want %d", ErrBadMessage, len(m), c.Size)
		}
		if got++; got <= verifyFirst && !filled(m) {
			return Result{}, fmt.Errorf("%w: message %d has other content", ErrBadMessage, got)
		}
		w := binary.LittleEndian.Uint64(m)
		switch w {
		case wordStop:
			var elapsed int64
			if n > 0 {
				elapsed = Mono() - start
			}
			return Result{Count: n, ElapsedNS: elapsed, Latency: h.Latency("one-way")}, nil
		case wordWarmup:
			continue
		}
		if n == 0 {
			start = Mono()
		}
		n++
		if w != wordMeasured {
			h.Record(Mono() - int64(w))
		}
		if n&1023 == 0 {
			progress.set(n)
		}
	}
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
