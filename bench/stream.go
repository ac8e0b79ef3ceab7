package bench

import "errors"

// streamSend is the peer's side of one stream round: send as fast as the
// transport takes messages, warm-up marks for r.Settle, then the measured
// ones (one in stampEvery timestamped), then a stop mark. Every message
// carries its number in the session as its key (see pattern), so the
// receiver can check each one whole and notice a lost one.
func streamSend(conn Conn, pat *pattern, msg []byte, key *uint64, r roundSpec) error {
	send := func(w uint64) error {
		pat.stamp(msg, w, *key)
		*key++
		return conn.Send(msg)
	}
	for i, end := 0, Mono()+int64(r.Settle); ; i++ {
		if i&63 == 0 && Mono() >= end {
			break
		}
		if err := send(wordWarmup); err != nil {
			return err
		}
	}
	end := Mono() + int64(r.Duration)
	for i := int64(0); r.N == 0 || i < r.N; i++ {
		w := uint64(wordMeasured)
		if i%stampEvery == 0 {
			now := Mono()
			if r.Duration > 0 && now >= end {
				break
			}
			w = uint64(now)
		}
		if err := send(w); err != nil {
			return err
		}
	}
	return send(wordStop)
}

// batchReceiver is a Conn that can hand over every message ready now in
// one call, releasing them once (the ring's Drain).
type batchReceiver interface {
	RecvBatch(fn func(m []byte) error) error
}

// errStreamStop ends a batch at the stop mark.
var errStreamStop = errors.New("bench: stop mark")

// streamRound is the parent's side of one stream round: it reads every
// byte of every message and checks it against its key, counts the measured
// ones from the first one's arrival, and records one-way latency from
// their timestamps, until the stop mark. A transport that receives in
// batches is read that way.
func (s *session) streamRound(progress *Progress) (n, elapsed int64, err error) {
	var start int64
	take := func(m []byte) error {
		w, err := s.pat.check(m, s.seq)
		if err != nil {
			return err
		}
		s.seq++
		switch w {
		case wordStop:
			if n > 0 {
				elapsed = Mono() - start
			}
			return errStreamStop
		case wordWarmup:
			return nil
		}
		if n == 0 {
			start = Mono()
		}
		n++
		if w != wordMeasured {
			s.round.Record(Mono() - int64(w))
		}
		if n&1023 == 0 {
			progress.set(n)
		}
		return nil
	}
	if b, ok := s.conn.(batchReceiver); ok {
		// The stop mark is taken (released) like any message: nothing
		// follows it in this round.
		stopped := false
		batch := func(m []byte) error {
			if stopped {
				return errors.New("bench: a message after the stop mark")
			}
			if err := take(m); err != errStreamStop {
				return err
			}
			stopped = true
			return nil
		}
		for !stopped {
			if err := b.RecvBatch(batch); err != nil {
				return 0, 0, err
			}
		}
		return n, elapsed, nil
	}
	for {
		m, err := s.conn.Recv(s.buf)
		if err != nil {
			return 0, 0, err
		}
		switch err := take(m); err {
		case nil:
		case errStreamStop:
			return n, elapsed, nil
		default:
			return 0, 0, err
		}
	}
}
