package bench

import (
	"math"
	"slices"
)

// Spread summarises one ratio over the rounds of a run: its median and
// how far the rounds spread around it.
type Spread struct {
	Median float64 `json:"median"`
	P25    float64 `json:"p25"` // first quartile of the per-round values
	P75    float64 `json:"p75"` // third quartile
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Rounds int     `json:"rounds"` // how many rounds had both figures
}

// SpreadOf summarises per-round values. Quartiles interpolate linearly
// between the two nearest ranks (the median of an even count is the mean
// of the middle two). It returns false for no values.
func SpreadOf(vs []float64) (Spread, bool) {
	if len(vs) == 0 {
		return Spread{}, false
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	return Spread{
		Median: quantile(s, 0.5),
		P25:    quantile(s, 0.25),
		P75:    quantile(s, 0.75),
		Min:    s[0],
		Max:    s[len(s)-1],
		Rounds: len(s),
	}, true
}

// quantile of sorted values, q from 0 to 1, by linear interpolation
// between ranks.
func quantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	return sorted[lo] + (sorted[hi]-sorted[lo])*(pos-float64(lo))
}
