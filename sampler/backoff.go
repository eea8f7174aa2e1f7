package sampler

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff is an exponential back-off with jitter: the n-th wait (from 0) is
// drawn uniformly from [d/2, d] where d = min·2ⁿ capped at max, and never
// shorter than min. It is not safe for concurrent use.
type backoff struct {
	min, max time.Duration
	n        int
}

// next returns the next wait and advances the sequence.
func (b *backoff) next() time.Duration {
	d := b.min
	for range b.n {
		if d >= b.max/2 {
			d = b.max
			break
		}
		d *= 2
	}
	d = min(d, b.max)
	if d < b.max {
		b.n++
	}
	d = d/2 + rand.N(d/2+1)
	return max(d, b.min)
}

// reset starts the sequence again at min.
func (b *backoff) reset() { b.n = 0 }

// wait waits for the next back-off and reports whether it ran to the end
// (false: ctx ended first).
func (b *backoff) wait(ctx context.Context) bool { return pause(ctx, b.next()) }

// pause waits for d and reports whether it ran to the end (false: ctx ended
// first).
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
