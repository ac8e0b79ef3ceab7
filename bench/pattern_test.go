package bench

import (
	"errors"
	"slices"
	"testing"
)

func TestPatternDetectsEveryCorruptedByte(t *testing.T) {
	for _, size := range []int{8, 15, 16, 24, 64, 100, 4096} {
		p := newPattern(size)
		msg := make([]byte, size)
		p.fill(msg)
		p.stamp(msg, 12345, 77)
		if w, err := p.check(msg, 77); err != nil || w != 12345 {
			t.Fatalf("size %d: intact message: word %d, %v", size, w, err)
		}
		for i := MinSize; i < size; i++ { // word 0 is checked by its meaning
			for _, flip := range []byte{1, 0x80} {
				msg[i] ^= flip
				if _, err := p.check(msg, 77); !errors.Is(err, ErrBadMessage) {
					t.Errorf("size %d: byte %d xor %#x not detected", size, i, flip)
				}
				msg[i] ^= flip
			}
		}
		if size >= 16 {
			if _, err := p.check(msg, 78); !errors.Is(err, ErrBadMessage) {
				t.Errorf("size %d: another message's key not detected", size)
			}
		}
		if _, err := p.check(msg[:size-1], 77); !errors.Is(err, ErrBadMessage) {
			t.Errorf("size %d: short message not detected", size)
		}
	}
}

func TestChecksumReadsEveryByte(t *testing.T) {
	b := make([]byte, 1000)
	for i := range b {
		b[i] = byte(i*31 + 7)
	}
	var want uint64
	for i := 0; i+8 <= len(b); i += 8 {
		var w uint64
		for k := 0; k < 8; k++ {
			w |= uint64(b[i+k]) << (8 * k)
		}
		want += w
	}
	if got := checksum(b); got != want {
		t.Errorf("checksum = %d, want %d", got, want)
	}
	if got, want := checksum(b[:13]), checksum(b[:8])+uint64(b[8])+uint64(b[9])+uint64(b[10])+uint64(b[11])+uint64(b[12]); got != want {
		t.Errorf("tail bytes: %d, want %d", got, want)
	}
}

// queueConn is a one-way transport inside the test: Send queues a copy,
// Recv takes the oldest.
type queueConn struct{ q [][]byte }

func (c *queueConn) Send(p []byte) error { c.q = append(c.q, slices.Clone(p)); return nil }
func (c *queueConn) Recv([]byte) ([]byte, error) {
	if len(c.q) == 0 {
		return nil, errors.New("queue empty")
	}
	m := c.q[0]
	c.q = c.q[1:]
	return m, nil
}
func (c *queueConn) Close() error { return nil }

func streamSession(size int, conn Conn) *session {
	return &session{c: Case{Mode: Stream, Size: size}, pat: newPattern(size), buf: make([]byte, size),
		conn: conn, round: NewHistogram()}
}

// sendRound fills a queue with what a stream peer sends in a round of n
// measured messages, and returns it.
func sendRound(t *testing.T, size int, n int64) *queueConn {
	t.Helper()
	q := &queueConn{}
	p := newPattern(size)
	msg := make([]byte, size)
	p.fill(msg)
	var key uint64
	if err := streamSend(q, &p, msg, &key, roundSpec{N: n}); err != nil {
		t.Fatal(err)
	}
	return q
}

func TestStreamReceiverReadsEveryMessage(t *testing.T) {
	for _, size := range []int{64, 1000, 65536} {
		q := sendRound(t, size, 100)
		n, _, err := streamSession(size, q).streamRound(nil)
		if err != nil || n != 100 {
			t.Fatalf("size %d: intact round: %d messages, %v", size, n, err)
		}
		for _, at := range []int{MinSize, size / 2, size - 1} {
			q := sendRound(t, size, 100)
			q.q[57][at] ^= 0x10
			if _, _, err := streamSession(size, q).streamRound(nil); !errors.Is(err, ErrBadMessage) {
				t.Errorf("size %d: byte %d of message 57 corrupted: %v", size, at, err)
			}
		}
		q = sendRound(t, size, 100)
		q.q = slices.Delete(q.q, 40, 41)
		if _, _, err := streamSession(size, q).streamRound(nil); !errors.Is(err, ErrBadMessage) {
			t.Errorf("size %d: a lost message went unnoticed: %v", size, err)
		}
	}
}

// echoConn is a pingpong peer inside the test: Recv returns what Send got,
// with byte corruptAt of round trip corruptTrip flipped.
type echoConn struct {
	last                   []byte
	trips                  int
	corruptTrip, corruptAt int
}

func (c *echoConn) Send(p []byte) error { copy(c.last, p); return nil }
func (c *echoConn) Recv([]byte) ([]byte, error) {
	c.trips++
	if c.trips == c.corruptTrip {
		c.last[c.corruptAt] ^= 1
	}
	return c.last, nil
}
func (c *echoConn) Close() error { return nil }

func pingSession(size int, conn Conn) *session {
	s := &session{c: Case{Mode: PingPong, Size: size}, pat: newPattern(size), buf: make([]byte, size),
		msg: make([]byte, size), conn: conn, round: NewHistogram()}
	s.pat.fill(s.msg)
	return s
}

func TestPingPongReadsEveryEcho(t *testing.T) {
	const size = 4096
	ok := &echoConn{last: make([]byte, size)}
	if n, _, err := pingSession(size, ok).pingRound(roundSpec{N: 50}, nil); err != nil || n != 50 {
		t.Fatalf("intact echoes: %d round trips, %v", n, err)
	}
	for _, at := range []int{MinSize, 2000, size - 1} {
		bad := &echoConn{last: make([]byte, size), corruptTrip: 30, corruptAt: at}
		if _, _, err := pingSession(size, bad).pingRound(roundSpec{N: 50}, nil); !errors.Is(err, ErrBadMessage) {
			t.Errorf("byte %d corrupted in round trip 30: %v", at, err)
		}
	}
}

func TestHarnessHotPathsAllocateNothing(t *testing.T) {
	s := pingSession(1024, &echoConn{last: make([]byte, 1024)})
	clk := timer()
	if n := testing.AllocsPerRun(1000, func() {
		if _, _, err := s.roundTrip(clk); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("a round trip allocates %v times", n)
	}
	p := newPattern(1024)
	msg := make([]byte, 1024)
	p.fill(msg)
	key := uint64(0)
	if n := testing.AllocsPerRun(1000, func() {
		key++
		p.stamp(msg, wordMeasured, key)
		if _, err := p.check(msg, key); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("stamp and check allocate %v times", n)
	}
}
