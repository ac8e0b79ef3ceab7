package bench

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

// streamRound is the parent's side of one stream round: it reads every
// byte of every message and checks it against its key, counts the measured
// ones from the first one's arrival, and records one-way latency from
// their timestamps, until the stop mark.
func (s *session) streamRound(progress *Progress) (n, elapsed int64, err error) {
	var start int64
	for {
		m, err := s.conn.Recv(s.buf)
		if err != nil {
			return 0, 0, err
		}
		w, err := s.pat.check(m, s.seq)
		if err != nil {
			return 0, 0, err
		}
		s.seq++
		switch w {
		case wordStop:
			if n > 0 {
				elapsed = Mono() - start
			}
			return n, elapsed, nil
		case wordWarmup:
			continue
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
	}
}
