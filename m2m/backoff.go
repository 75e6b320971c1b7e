package m2m

import (
	"math/rand/v2"
	"time"
)

// Default backoff bounds (EDGE_M2M_RETRY_MIN, EDGE_M2M_RETRY_MAX).
const (
	DefaultRetryMin = time.Second
	DefaultRetryMax = 5 * time.Minute
)

// Backoff computes retry delays: exponential growth from Min, capped at
// Max, with full jitter so that a fleet of gateways coming back together
// does not retry in step. A zero Min or Max takes its default; a Max under
// Min is raised to Min.
type Backoff struct{ Min, Max time.Duration }

// Delay is the wait before retry number attempt (0 for the first retry): a
// uniform draw in [Min, min(Max, Min·2^attempt)]. rnd returns a number in
// [0, 1); nil uses math/rand/v2. Tests pass a fixed function.
func (b Backoff) Delay(attempt int, rnd func() float64) time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = DefaultRetryMin
	}
	if hi <= 0 {
		hi = DefaultRetryMax
	}
	if hi < lo {
		hi = lo
	}
	if attempt < 0 {
		attempt = 0
	}
	ceil := hi
	// lo·2^attempt without overflow: stop doubling once it passes hi.
	if attempt < 63 {
		c := lo
		for range attempt {
			if c > hi/2 {
				c = hi
				break
			}
			c *= 2
		}
		ceil = min(c, hi)
	}
	if rnd == nil {
		rnd = rand.Float64
	}
	f := rnd()
	if !(f >= 0) { // NaN or negative
		f = 0
	}
	if f >= 1 {
		f = 1
	}
	d := lo + time.Duration(f*float64(ceil-lo))
	return min(max(d, lo), ceil)
}
