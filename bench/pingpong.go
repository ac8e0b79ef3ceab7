package bench

import (
	"encoding/binary"
	"fmt"
	"time"
)

// pingRound is the parent's side of one pingpong round: send, wait for the
// echo, read every byte of it, time the round trip. The first round trip
// (the peer was blocked between rounds) and those of r.Settle are not
// recorded; a stop mark ends the round.
func (s *session) pingRound(r roundSpec, progress *Progress) (int64, int64, error) {
	clk := timer()
	if _, _, err := s.roundTrip(clk); err != nil {
		return 0, 0, err
	}
	for end := Mono() + int64(r.Settle); Mono() < end; {
		if _, _, err := s.roundTrip(clk); err != nil {
			return 0, 0, err
		}
	}
	deadline := int64(-1)
	if r.Duration > 0 {
		deadline = clk.now() + clk.fromNS(int64(r.Duration))
	}
	var sum int64
	n := int64(0)
	for r.N == 0 || n < r.N {
		d, t1, err := s.roundTrip(clk)
		if err != nil {
			return 0, 0, err
		}
		ns := clk.ns(d)
		s.round.Record(ns)
		sum += ns
		n++
		if n&1023 == 0 {
			progress.set(n)
		}
		if deadline >= 0 && t1 >= deadline {
			break
		}
	}
	s.pat.stamp(s.msg, wordStop, 0)
	if err := s.conn.Send(s.msg); err != nil {
		return 0, 0, err
	}
	return n, sum, nil
}

// roundTrip sends the next sequence number and returns the round trip in
// clock ticks and the tick it ended at. Checking the echo is part of the
// round trip: a receiver has read a message only when it has read every
// byte (the line carries its control word alone, and only that is
// checked).
func (s *session) roundTrip(clk ticks) (int64, int64, error) {
	if s.c.Gap > 0 {
		time.Sleep(s.c.Gap)
	}
	s.seq++
	s.pat.stamp(s.msg, s.seq, s.seq)
	t0 := clk.now()
	if err := s.conn.Send(s.msg); err != nil {
		return 0, 0, err
	}
	m, err := s.conn.Recv(s.buf)
	if err != nil {
		return 0, 0, err
	}
	var w uint64
	if s.words {
		if len(m) >= MinSize {
			w = binary.LittleEndian.Uint64(m)
		}
	} else if w, err = s.pat.check(m, s.seq); err != nil {
		return 0, 0, fmt.Errorf("round trip %d: %w", s.seq, err)
	}
	t1 := clk.now()
	if w != s.seq {
		return 0, 0, fmt.Errorf("%w: round trip %d came back as %d", ErrBadMessage, s.seq, w)
	}
	return t1 - t0, t1, nil
}

// echo is the peer's side of one pingpong round: send back every message
// until the stop mark. Sending it back reads every byte of it.
func echo(conn Conn, buf []byte) error {
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
