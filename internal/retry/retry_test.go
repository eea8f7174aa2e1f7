package retry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/triage-dev/triage/internal/retry"
	"github.com/triage-dev/triage/llm"
)

func TestBackOffGrowsWithJitterWithinBounds(t *testing.T) {
	cases := []struct {
		name   string
		lo, hi time.Duration
	}{
		{"sampler defaults", 200 * time.Millisecond, 10 * time.Second},
		{"equal", time.Second, time.Second},
		{"tiny", time.Nanosecond, 3 * time.Nanosecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := retry.NewBackOff(c.lo, c.hi)
			interval := c.lo
			for n := range 100 { // far past the cap
				d := b.NextBackOff()
				if d < c.lo || d > c.hi || d < interval/2 {
					t.Fatalf("wait %d = %v, want within [%v, %v] and at least %v", n, d, c.lo, c.hi, interval/2)
				}
				interval = min(2*interval, c.hi)
			}
			b.Reset()
			if d := b.NextBackOff(); d < c.lo || d > min(c.lo*3/2+1, c.hi) {
				t.Fatalf("after reset %v, want about %v", d, c.lo)
			}
		})
	}
}

// provider returns the errors in turn, then succeeds.
func provider(errs ...error) (op func() (string, error), calls *int) {
	calls = new(int)
	return func() (string, error) {
		*calls++
		if *calls <= len(errs) {
			return "", errs[*calls-1]
		}
		return "ok", nil
	}, calls
}

func TestProvider(t *testing.T) {
	busy := &llm.Error{Provider: "p", Status: 503, Retryable: true, Err: errors.New("503")}
	bad := &llm.Error{Provider: "p", Status: 400, Err: errors.New("400")}
	slowDown := &llm.Error{Provider: "p", Status: 429, Retryable: true, RetryAfter: 20 * time.Millisecond, Err: errors.New("429")}
	goAway := &llm.Error{Provider: "p", Status: 429, Retryable: true, RetryAfter: time.Hour, Err: errors.New("429")}
	cases := []struct {
		name     string
		attempts int
		errs     []error
		calls    int
		err      error // nil: success
		atLeast  time.Duration
	}{
		{"first try", 3, nil, 1, nil, 0},
		{"retryable then ok", 3, []error{busy, busy}, 3, nil, 0},
		{"attempts run out", 3, []error{busy, busy, busy}, 3, busy, 0},
		{"one attempt", 1, []error{busy}, 1, busy, 0},
		{"zero attempts means one", 0, []error{busy}, 1, busy, 0},
		{"not retryable", 3, []error{bad}, 1, bad, 0},
		{"permanent", 3, []error{backoff.Permanent(busy)}, 1, busy, 0},
		{"retry-after honoured", 3, []error{slowDown}, 2, nil, slowDown.RetryAfter},
		{"retry-after on the last try", 1, []error{slowDown}, 1, slowDown, 0},
		{"retry-after beyond the cap", 3, []error{goAway}, 1, goAway, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			op, calls := provider(c.errs...)
			start := time.Now()
			res, err := retry.Provider(context.Background(), c.attempts, retry.NewBackOff(time.Nanosecond, time.Minute), time.Minute, op)
			if err != c.err || (err == nil && res != "ok") {
				t.Fatalf("got %q, %v (%T); want error %v", res, err, err, c.err)
			}
			if *calls != c.calls {
				t.Fatalf("%d calls, want %d", *calls, c.calls)
			}
			if waited := time.Since(start); waited < c.atLeast {
				t.Fatalf("done after %v, before the %v the provider asked for", waited, c.atLeast)
			}
		})
	}
}

func TestProviderEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	wait := &llm.Error{Provider: "p", Status: 429, Retryable: true, RetryAfter: time.Hour, Err: errors.New("429")}
	calls := 0
	_, err := retry.Provider(ctx, 5, retry.NewBackOff(time.Hour, time.Hour), 2*time.Hour, func() (string, error) {
		calls++
		cancel()
		return "", wait
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("err = %v after %d calls, want context.Canceled after 1", err, calls)
	}
}
