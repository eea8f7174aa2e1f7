package sampling

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/pipeline"
)

// DirectOptions configure Direct. Zero values mean the defaults in comments.
type DirectOptions struct {
	// Retries bounds the retries of a transient provider error (429, 5xx,
	// network), each after Backoff doubled per retry. Default 2.
	Retries int
	// Backoff is the first retry's wait. Default 100 ms.
	Backoff time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics, when not nil, counts attempts.
	Metrics *Metrics
}

// Direct decides ambiguous items by calling an LLM provider API from the
// consumer itself, with no MCP in between: the migration path that SEP-2577
// recommends now that sampling is deprecated. It shares request building,
// answer validation and the corrective follow-up with the MCP pool.
type Direct struct {
	provider llm.Provider
	opts     DirectOptions
}

// NewDirect returns a Decider that calls provider.
func NewDirect(provider llm.Provider, opts DirectOptions) *Direct {
	if opts.Retries == 0 {
		opts.Retries = 2
	} else if opts.Retries < 0 {
		opts.Retries = 0
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 100 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Direct{provider: provider, opts: opts}
}

// Decide implements pipeline.Decider. Each attempt is bounded by the type's
// sampling timeout; a timed-out attempt is final (retrying would multiply the
// item's latency), while fast transient errors (429, 5xx, resets) are retried.
func (d *Direct) Decide(ctx context.Context, it pipeline.Item) (pipeline.Verdict, error) {
	pr, err := it.Type.Prompt(it.Event.Fields, it.Rule.RuleID)
	if err != nil {
		return pipeline.Verdict{}, fmt.Errorf("sampling: build request for %s: %w", it.Event.ID, err)
	}
	conv := newConversation(it, pr)
	var attempts []audit.Record
	record := func(started time.Time, status audit.Status, r *reply, reason string) {
		attempts = append(attempts, attemptRecord(conv, ModeDirect, d.provider.Name(), started, status, r, reason))
		d.opts.Metrics.attempt(ModeDirect, status, time.Since(started))
	}
	retries, backoff, corrected := 0, d.opts.Backoff, false
	for {
		started := time.Now()
		actx, cancel := context.WithTimeout(ctx, pr.Timeout)
		resp, err := d.provider.Complete(actx, conv.llmRequest())
		timedOut := errors.Is(actx.Err(), context.DeadlineExceeded)
		cancel()
		if err != nil {
			status := audit.StatusError
			if timedOut {
				status = audit.StatusTimeout
				err = fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
			}
			record(started, status, nil, clip(err.Error(), 500))
			if ctx.Err() != nil {
				return pipeline.Verdict{Attempts: attempts}, ctx.Err()
			}
			if !llm.IsRetryable(err) || retries >= d.opts.Retries {
				return pipeline.Verdict{Attempts: attempts}, fmt.Errorf("sampling: %s: %w", d.provider.Name(), err)
			}
			retries++
			if err := wait(ctx, backoff); err != nil {
				return pipeline.Verdict{Attempts: attempts}, err
			}
			backoff *= 2
			continue
		}
		r := replyFromLLM(resp)
		a, perr := ParseAnswer(r.Text, it.Type.Outcomes)
		if perr == nil {
			record(started, audit.StatusOK, &r, "")
			return pipeline.Verdict{Outcome: a.Outcome, Reason: a.Reason, Model: r.Model, Path: pipeline.PathSampled, Attempts: attempts}, nil
		}
		record(started, audit.StatusInvalidAnswer, &r, perr.Error())
		if corrected {
			return pipeline.Verdict{Attempts: attempts}, fmt.Errorf("%w: %v", ErrInvalidAnswer, perr)
		}
		corrected = true
		conv.correct(r.Text, perr)
	}
}

func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
