package bench

import (
	"errors"
	"fmt"
)

// session is one case kept open across the rounds of an interleaved run:
// the transport's setup, its peer (blocked between rounds, so it takes no
// CPU from the other cases' rounds) and the parent's end, or the
// in-process measurement of a SelfTimed reference.
type session struct {
	c     Case
	res   Result // the case's name and, at the end, its figures
	setup Setup
	peer  *peerHandle
	conn  Conn
	self  SelfTimed
	// words: the transport carries the control word only (line): the
	// harness checks that word, not the payload.
	words bool

	pat      pattern
	msg, buf []byte
	seq      uint64 // pingpong: the last sequence number sent; stream: the key of the next message

	round, all *Histogram // this round's latencies, and every round's
	count      int64      // measured messages, every round
	elapsed    int64      // measured nanoseconds, every round
	err        error      // the first failure: the session is then closed
}

// openSession sets up t for c and starts its peer, which then waits for
// rounds.
func openSession(t Transport, c Case) (s *session, err error) {
	s = &session{c: c, res: Result{Transport: t.Name(), Mode: c.Mode, Size: c.Size, Note: noteOf(t)}}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%s: %w", t.Name(), err)
			s.fail(err)
		}
	}()
	if c.Size < MinSize {
		return s, fmt.Errorf("%w: size %d B is below the minimum, %d B", ErrBadMessage, c.Size, MinSize)
	}
	if !supports(t, c.Mode) {
		return s, fmt.Errorf("%w %s", ErrUnsupported, c.Mode)
	}
	s.round, s.all = NewHistogram(), NewHistogram()
	if st, ok := t.(SelfTimed); ok {
		s.self = st
		return s, nil
	}
	if w, ok := t.(WordOnly); ok {
		s.words = w.WordOnly()
	}
	s.pat = newPattern(c.Size)
	s.msg, s.buf = make([]byte, c.Size), make([]byte, c.Size)
	s.pat.fill(s.msg)
	if s.setup, err = t.Setup(c.env()); err != nil {
		return s, fmt.Errorf("setup: %w", err)
	}
	track(s.setup)
	if ip, ok := t.(InProcess); ok && ip.InProcess() {
		s.peer, err = startGoroutinePeer(t, c, s.setup.Addr())
	} else {
		s.peer, err = startProcessPeer(t, c, s.setup)
	}
	if err != nil {
		return s, fmt.Errorf("peer: %w", err)
	}
	if s.conn, err = s.setup.Accept(peerTimeout); err != nil {
		return s, fmt.Errorf("accept: %w", err)
	}
	return s, nil
}

func noteOf(t Transport) string {
	switch t.Name() {
	case "line":
		return "one cache line: carries 8 bytes at every size"
	case "floor":
		return "copy into shared memory, sequence word, read in place: the least a transport can do"
	}
	return ""
}

// runRound measures one round; a failure closes the session.
func (s *session) runRound(r roundSpec, progress *Progress) {
	if s.err != nil {
		return
	}
	var fig Round
	var err error
	if s.self != nil {
		fig, err = s.selfRound(r, progress)
	} else {
		fig, err = s.peerRound(r, progress)
	}
	if err != nil {
		s.fail(fmt.Errorf("%s %d B: %w", s.res.Transport, s.c.Size, err))
		return
	}
	s.res.Rounds = append(s.res.Rounds, fig)
}

func (s *session) selfRound(r roundSpec, progress *Progress) (Round, error) {
	c := s.c
	c.N, c.Duration, c.Warmup = r.N, r.Duration, r.Settle
	res, err := s.self.Measure(c, progress)
	if err != nil {
		return Round{}, err
	}
	s.count += res.Count
	s.elapsed += res.ElapsedNS
	return Round{Count: res.Count, ElapsedNS: res.ElapsedNS, MsgsPerSec: res.MsgsPerSec}, nil
}

func (s *session) peerRound(r roundSpec, progress *Progress) (Round, error) {
	if err := s.peer.start(r); err != nil {
		return Round{}, fmt.Errorf("peer: %w", err)
	}
	if s.c.Pin {
		unpin, err := pinThread(0)
		if err != nil {
			return Round{}, err
		}
		defer unpin()
	}
	s.round.Reset()
	var n, elapsed int64
	var err error
	if s.c.Mode == Stream {
		n, elapsed, err = s.streamRound(progress)
	} else {
		n, elapsed, err = s.pingRound(r, progress)
	}
	if err != nil {
		return Round{}, err
	}
	s.all.Merge(s.round)
	s.count += n
	s.elapsed += elapsed
	fig := Round{Count: n, ElapsedNS: elapsed, P50NS: s.round.Quantile(50), P99NS: s.round.Quantile(99)}
	if elapsed > 0 {
		fig.MsgsPerSec = float64(n) / (float64(elapsed) / 1e9)
	}
	return fig, nil
}

// fail records the session's first failure and closes it.
func (s *session) fail(err error) {
	if s.err == nil {
		s.err = err
	}
	if s.peer != nil {
		s.peer.kill()
	}
	s.err = errors.Join(s.err, s.close())
}

// close ends the peer and releases everything; it is safe to call more
// than once.
func (s *session) close() error {
	var err error
	if s.peer != nil {
		s.peer.end()
		err = s.peer.wait(peerTimeout)
		s.peer = nil
	}
	if s.conn != nil {
		err = errors.Join(err, s.conn.Close())
		s.conn = nil
	}
	if s.setup != nil {
		untrack(s.setup)
		err = errors.Join(err, s.setup.Close())
		s.setup = nil
	}
	return err
}

// result closes the session and returns the case's figures over every
// round, or its failure.
func (s *session) result() (Result, error) {
	if err := s.close(); err != nil && s.err == nil {
		s.err = fmt.Errorf("%s %d B: %w", s.res.Transport, s.c.Size, err)
	}
	r := s.res
	if s.err != nil {
		return Result{Transport: r.Transport, Mode: r.Mode, Size: r.Size, Note: r.Note, Error: s.err.Error()}, s.err
	}
	r.Count, r.ElapsedNS = s.count, s.elapsed
	r.setRates(s.c.Size)
	if s.self == nil {
		kind := "rtt"
		if s.c.Mode == Stream {
			kind = "one-way"
		}
		r.Latency = s.all.Latency(kind)
	}
	return r, nil
}
