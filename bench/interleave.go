package bench

import "time"

// settleMax bounds the unrecorded start of every round after a case's
// first (whose is c.Warmup): time for a peer that was blocked to be
// running and its caches warm again.
const settleMax = 5 * time.Millisecond

// RunSize measures the transports ts at c.Size side by side, in interleaved
// rounds: it opens every case (each with its peer), then runs c.Rounds
// rounds; in each, every case runs once, for c.Duration or its share of
// c.N, while the other cases' peers wait blocked. The order rotates from
// round to round. A change of the machine's speed that lasts longer than a
// round so touches a transport's round and its references' alike, and the
// per-round ratios of ComputeRatios cancel it. A case's first round starts
// with c.Warmup unrecorded, the later ones with at most 5 ms.
//
// Results and errors are in the order of ts; a failed case's Result has
// Error set, and the others run on.
func RunSize(ts []Transport, c Case) ([]Result, []error) {
	return runSize(ts, c, nil)
}

// roundHook returns the progress counter of one case's round and the
// function to call when the round ends.
type roundHook func(round int, transport string) (*Progress, func())

func runSize(ts []Transport, c Case, hook roundHook) ([]Result, []error) {
	rounds := max(c.Rounds, 1)
	if c.N > 0 && c.N < int64(rounds) {
		rounds = int(c.N)
	}
	sessions := make([]*session, len(ts))
	for i, t := range ts {
		ci := c
		ci.Transport = t.Name()
		sessions[i], _ = openSession(t, ci) // a failure is kept in the session
	}
	for r := range rounds {
		spec := roundSpec{Duration: c.Duration, Settle: min(c.Warmup, settleMax)}
		if r == 0 {
			spec.Settle = c.Warmup
		}
		if c.N > 0 {
			spec.N = share(c.N, rounds, r)
		}
		for k := range sessions {
			i := (k + r) % len(sessions)
			s := sessions[i]
			if s.err != nil {
				continue
			}
			progress, done := (*Progress)(nil), func() {}
			if hook != nil {
				progress, done = hook(r, s.res.Transport)
			}
			s.runRound(spec, progress)
			done()
		}
	}
	results := make([]Result, len(ts))
	errs := make([]error, len(ts))
	for i, s := range sessions {
		results[i], errs[i] = s.result()
	}
	return results, errs
}

// share is round r's part of n messages over rounds rounds: equal parts,
// the remainder spread over the first rounds.
func share(n int64, rounds, r int) int64 {
	q := n / int64(rounds)
	if int64(r) < n%int64(rounds) {
		q++
	}
	return q
}
