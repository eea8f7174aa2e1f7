package client

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/triage-dev/triage/internal/retry"
)

// backoff returns a new exponential back-off with jitter between
// BackoffMin and BackoffMax, for one loop or one answer.
func (s *Sampler) backoff() backoff.BackOff {
	return retry.NewBackOff(s.cfg.BackoffMin, s.cfg.BackoffMax)
}

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
