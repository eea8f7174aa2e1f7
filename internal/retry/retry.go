// Package retry is triage's one back-off and retry policy, on
// github.com/cenkalti/backoff/v5: the sampler's reconnects, calls and
// answers (package sampling/client), the consumer's direct provider calls
// (package sampling) and the ClickHouse sink's inserts (package audit) use
// it alike; provider calls also honour Retry-After.
package retry

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/triage-dev/triage/llm"
)

// NewBackOff returns an exponential back-off with jitter between lo and hi
// (both > 0, lo ≤ hi): the interval starts at lo and doubles with every
// wait up to hi, each wait is drawn from ±50 % of the interval and clamped
// to [lo, hi], and Reset starts again at lo (call it after a success). It
// is not safe for concurrent use.
func NewBackOff(lo, hi time.Duration) backoff.BackOff {
	return &bounded{
		exp: &backoff.ExponentialBackOff{
			InitialInterval:     lo,
			RandomizationFactor: 0.5,
			Multiplier:          2,
			MaxInterval:         hi,
		},
		lo: lo, hi: hi,
	}
}

// bounded clamps an ExponentialBackOff, whose jitter reaches 50 % beyond its
// interval (and so beyond MaxInterval), to the configured bounds.
type bounded struct {
	exp    *backoff.ExponentialBackOff
	lo, hi time.Duration
}

func (b *bounded) NextBackOff() time.Duration { return min(max(b.exp.NextBackOff(), b.lo), b.hi) }

func (b *bounded) Reset() { b.exp.Reset() }

// Provider calls op, a provider request, until it succeeds or has been
// tried attempts times (at least once). Only errors that llm.IsRetryable
// accepts are retried (a *backoff.PermanentError never is), each after the
// next wait of b, or after the wait the provider asked for when the error
// is an *llm.Error with a RetryAfter. A Retry-After longer than maxWait is
// not waited for: the error is returned at once, so that the item's lease
// or the caller's deadline is not spent sleeping.
//
// The error returned is op's last one (without a PermanentError around
// it), or ctx's cause when it ended during a wait.
func Provider[T any](ctx context.Context, attempts int, b backoff.BackOff, maxWait time.Duration, op func() (T, error)) (T, error) {
	res, err := backoff.Retry(ctx, func() (T, error) {
		res, err := op()
		if err == nil {
			return res, nil
		}
		var perm *backoff.PermanentError
		if errors.As(err, &perm) {
			return res, err
		}
		if !llm.IsRetryable(err) {
			return res, backoff.Permanent(err)
		}
		var lerr *llm.Error
		if errors.As(err, &lerr) && lerr.RetryAfter > 0 {
			if lerr.RetryAfter > maxWait {
				return res, backoff.Permanent(err)
			}
			return res, &retryAfter{err: err, wait: backoff.RetryAfterError{Duration: lerr.RetryAfter}}
		}
		return res, err
	}, backoff.WithBackOff(b), backoff.WithMaxTries(uint(max(attempts, 1))), backoff.WithMaxElapsedTime(0))
	// backoff.Retry returns the last try's error as it is, wrappers and all.
	switch e := err.(type) {
	case *backoff.PermanentError:
		err = e.Err
	case *retryAfter:
		err = e.err
	}
	return res, err
}

// retryAfter carries a provider's error together with the wait it asked
// for, which backoff.Retry finds with errors.As.
type retryAfter struct {
	err  error
	wait backoff.RetryAfterError
}

func (e *retryAfter) Error() string   { return e.err.Error() }
func (e *retryAfter) Unwrap() []error { return []error{e.err, &e.wait} }
