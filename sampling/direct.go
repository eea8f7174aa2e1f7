package sampling

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.opentelemetry.io/otel/trace"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/internal/retry"
	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/pipeline"
)

// DirectOptions configure Direct. Zero values mean the defaults in comments.
type DirectOptions struct {
	// Retries bounds the retries of transient provider errors (429, 5xx,
	// network, an attempt that timed out) per item. Default 2; negative
	// means none.
	Retries int
	// TimeoutRetries is how many of those retries may follow an attempt
	// that ran out the type's sampling timeout, each costing the item that
	// long again. Default 1, as the pool gives an item whose lease expired
	// one more lease (Options.Requeues), so that a provider that hangs now
	// and then costs as many items in either mode; negative means none.
	TimeoutRetries int
	// Backoff is the first retry's wait, doubled (with jitter) per retry up
	// to BackoffMax. Default 100 ms.
	Backoff time.Duration
	// BackoffMax caps the wait between retries. A provider's Retry-After
	// replaces the back-off; one longer than BackoffMax is not waited for,
	// and the item gets the fallback at once rather than hold a pipeline
	// worker. Default 10 s (as cmd/sampler's), and never below Backoff.
	BackoffMax time.Duration
	// Region is where the provider's API runs, as the operator configured
	// it: an item of a tenant restricted to other regions is never sent,
	// and falls back with no_sampler.
	Region string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics, when not nil, counts attempts.
	Metrics *Metrics
	// History, when not nil, is what the transaction_history tool reads;
	// without it, that tool is not offered. Tools are offered only to a
	// provider that says it passes them to its model (a SupportsTools
	// method, see llm.Provider).
	History *History
	// TracerProvider, when not nil, records a SpanAttempt per provider
	// call, with the provider call itself (llm.SpanComplete) and each
	// tool call (SpanToolCall) under the span of Decide's context. Nil
	// records nothing.
	TracerProvider trace.TracerProvider
}

// Direct decides ambiguous items by calling an LLM provider API from the
// consumer itself, with no MCP in between: the migration path that SEP-2577
// recommends now that sampling is deprecated. It shares request building,
// answer validation and the corrective follow-up with the MCP pool.
type Direct struct {
	provider llm.Provider
	opts     DirectOptions
	tools    bool    // the provider runs tool loops
	trace    *tracer // nil: no tracing
}

// NewDirect returns a Decider that calls provider.
func NewDirect(provider llm.Provider, opts DirectOptions) *Direct {
	opts.Retries = countOption(opts.Retries, 2)
	opts.TimeoutRetries = countOption(opts.TimeoutRetries, 1)
	if opts.Backoff <= 0 {
		opts.Backoff = 100 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 10 * time.Second
	}
	opts.BackoffMax = max(opts.BackoffMax, opts.Backoff)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	provider = llm.Traced(provider, opts.TracerProvider)
	t, ok := provider.(interface{ SupportsTools() bool })
	return &Direct{provider: provider, opts: opts, tools: ok && t.SupportsTools(), trace: newTracer(opts.TracerProvider)}
}

// Decide implements pipeline.Decider. Each attempt is bounded by the type's
// sampling timeout; a timed-out attempt is retried TimeoutRetries times
// (each multiplies the item's latency), and fast transient errors (429,
// 5xx, resets) are retried after the back-off or the provider's
// Retry-After, as cmd/sampler does (package internal/retry). When the
// type offers tools, a response that calls them is run as a round of the
// tool loop (see the package doc) and the next request follows.
func (d *Direct) Decide(ctx context.Context, it pipeline.Item) (pipeline.Verdict, error) {
	v, err := d.decide(ctx, it)
	if v.Tier == "" {
		v.Tier = it.Type.TierOf(it.Event.Fields)
	}
	return v, err
}

func (d *Direct) decide(ctx context.Context, it pipeline.Item) (pipeline.Verdict, error) {
	if r := it.Type.Guards().Tenant(it.Event.TenantID).Regions; len(r) > 0 && !slices.Contains(r, d.opts.Region) {
		return pipeline.Verdict{}, ErrNoSampler
	}
	pr, err := promptOf(it)
	if err != nil {
		return pipeline.Verdict{}, err
	}
	conv := newConversation(it, pr, d.opts.History)
	var attempts []audit.Record
	var span trace.Span // the attempt's, ended by record
	record := func(started time.Time, status audit.Status, r *llm.Response, reason string) {
		attempts = append(attempts, attemptRecord(conv, ModeDirect, d.provider.Name(), started, status, r, reason))
		d.opts.Metrics.attempt(ModeDirect, status, time.Since(started))
		d.trace.endAttempt(span, &attempts[len(attempts)-1], "")
	}
	retries, timeouts := d.opts.Retries, d.opts.TimeoutRetries
	for {
		var started time.Time
		failed := 0
		r, err := retry.Provider(ctx, retries+1, retry.NewBackOff(d.opts.Backoff, d.opts.BackoffMax), d.opts.BackoffMax,
			func() (llm.Response, error) {
				started = time.Now()
				actx, cancel := context.WithTimeout(ctx, pr.Timeout)
				defer cancel()
				req := conv.llmRequest(d.tools)
				actx, span = d.trace.startAttempt(actx, ModeDirect, d.provider.Name(), conv, 0)
				resp, err := d.provider.Complete(actx, req)
				if err == nil {
					return resp, nil
				}
				failed++
				if errors.Is(actx.Err(), context.DeadlineExceeded) {
					err = fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
					record(started, audit.StatusTimeout, nil, clip(err.Error(), 500))
					if timeouts <= 0 || ctx.Err() != nil {
						return resp, backoff.Permanent(err)
					}
					timeouts--
					// retry.Provider retries only what llm.IsRetryable
					// accepts, as a provider's own timeout is.
					return resp, &llm.Error{Provider: d.provider.Name(), Retryable: true, Err: err}
				}
				record(started, audit.StatusError, nil, clip(err.Error(), 500))
				return resp, err
			})
		retries -= failed
		if err != nil {
			if ctx.Err() != nil {
				return pipeline.Verdict{Attempts: attempts}, ctx.Err()
			}
			return pipeline.Verdict{Attempts: attempts}, fmt.Errorf("sampling: %s: %w", d.provider.Name(), err)
		}
		if conv.wantsTools(r) {
			record(started, audit.StatusOK, &r, reasonToolUse)
			calls := conv.toolRound(r, ModeDirect, d.provider.Name())
			d.opts.Metrics.toolCalls(calls)
			d.trace.toolCalls(ctx, calls)
			attempts = append(attempts, calls...)
			continue
		}
		a, perr := conv.parse(r)
		if perr == nil {
			record(started, audit.StatusOK, &r, "")
			return pipeline.Verdict{Outcome: a.Outcome, Reason: a.Reason, Score: a.Score, Model: r.Model, Path: pipeline.PathSampled, Attempts: attempts}, nil
		}
		record(started, audit.StatusInvalidAnswer, &r, perr.Error())
		if conv.corrected {
			return pipeline.Verdict{Attempts: attempts}, fmt.Errorf("%w: %v", ErrInvalidAnswer, perr)
		}
		conv.correct(r.Text, perr)
	}
}
