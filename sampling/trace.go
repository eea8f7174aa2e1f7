package sampling

import (
	"context"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/sampling/work"
)

// Span names of the sampling stage. They are children of the span in the
// context given to Decide (the pipeline's triage.decide), so that one
// event's trace shows its time in the pool's queue, each request to a
// sampler or provider, and each tool call, in order.
const (
	// SpanQueue is an item's wait in the pool's queue until a sampler
	// leases it; an item re-queued after a failed lease waits again.
	SpanQueue = "sampling.queue"
	// SpanAttempt is one sampling request on a lease (or, in direct mode,
	// one provider call), from the moment it is built to its answer or
	// end: the first request, each round of a tool loop, the corrective
	// round. Its context travels to the sampler in the request's _meta
	// (work.MetaTraceparent), where the provider call (llm.SpanComplete)
	// is its child.
	SpanAttempt = "sampling.attempt"
	// SpanToolCall is one tool call the server ran for the model.
	SpanToolCall = "sampling.tool_call"
)

// tracer records the sampling stage's spans; nil (no TracerProvider) is
// off, and every method is then a nil check.
type tracer struct{ t trace.Tracer }

func newTracer(tp trace.TracerProvider) *tracer {
	if tp == nil {
		return nil
	}
	return &tracer{t: tp.Tracer("github.com/triage-dev/triage/sampling")}
}

// parent is the context the spans of an item's sampling hang from: the
// span of ctx, without ctx's deadline or values, since the job outlives
// the call that queued it in the spans of its leases.
func (x *tracer) parent(ctx context.Context) context.Context {
	if x == nil {
		return nil
	}
	return trace.ContextWithSpanContext(context.Background(), trace.SpanContextFromContext(ctx))
}

// queued starts the span of j's wait in the queue. Call with Pool.mu held.
func (x *tracer) queued(j *job) {
	if x == nil {
		return
	}
	_, j.wait = x.t.Start(j.tctx, SpanQueue, trace.WithAttributes(attribute.Int("triage.sampling.leases", j.leases)))
}

// leased ends j's wait: session took it. Call with Pool.mu held.
func (x *tracer) leased(j *job, mode, session string) {
	if x == nil || j.wait == nil {
		return
	}
	j.wait.SetAttributes(attribute.String("triage.sampling.mode", mode), attribute.String("triage.sampler.session", session))
	j.wait.End()
	j.wait = nil
}

// request starts the attempt span of the request params about to go out
// on l, and writes its context into the request's _meta for the sampler.
// Call with Pool.mu held.
func (x *tracer) request(l *lease, params mcp.InputRequest) {
	if x == nil {
		return
	}
	x.endAttempt(l.span, nil, "superseded") // cannot happen: each request's span ends with its answer
	var ctx context.Context
	ctx, l.span = x.startAttempt(l.job.tctx, l.mode, l.session, l.job.conv, l.job.leases)
	work.InjectTrace(ctx, params)
}

// startAttempt starts an attempt span for the next request of c; lease
// counts the item's leases in the pool, 0 in direct mode.
func (x *tracer) startAttempt(parent context.Context, mode, session string, c *conversation, lease int) (context.Context, trace.Span) {
	if x == nil {
		return parent, nil
	}
	attrs := []attribute.KeyValue{
		attribute.String("triage.sampling.mode", mode),
		attribute.String("triage.sampler.session", session),
		attribute.Int("triage.sampling.tool_round", c.rounds),
		attribute.Bool("triage.sampling.corrective", c.corrected),
		attribute.Bool("triage.sampling.tools_offered", c.offered),
		attribute.String("triage.model_requested", c.modelRequested()),
		attribute.String("triage.tier", c.prompt.Tier),
	}
	if lease > 0 {
		attrs = append(attrs, attribute.Int("triage.sampling.lease", lease))
	}
	return x.t.Start(parent, SpanAttempt, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// endAttempt ends an attempt span with what its audit record says: status,
// model, tokens. A nil rec ends a span whose request got no answer at all
// (the lease was dropped), with reason.
func (x *tracer) endAttempt(span trace.Span, rec *audit.Record, reason string) {
	if x == nil || span == nil {
		return
	}
	if rec == nil {
		span.SetAttributes(attribute.String("triage.status", "dropped"), attribute.String("triage.reason", reason))
		span.End()
		return
	}
	span.SetAttributes(
		attribute.String("triage.status", string(rec.Status)),
		attribute.String("gen_ai.response.model", rec.ModelAnswered),
		attribute.Int64("gen_ai.usage.input_tokens", rec.InputTokens),
		attribute.Int64("gen_ai.usage.output_tokens", rec.OutputTokens),
	)
	if rec.Status != audit.StatusOK {
		span.SetStatus(codes.Error, rec.Reason)
	} else if rec.Reason != "" {
		span.SetAttributes(attribute.String("triage.reason", rec.Reason))
	}
	span.End()
}

// toolCalls records a span per tool call of a round, from its audit
// record: the tools run in memory and quickly, so the spans are made
// after the fact rather than carried through the toolbox.
func (x *tracer) toolCalls(parent context.Context, calls []audit.Record) {
	if x == nil || !trace.SpanContextFromContext(parent).IsSampled() {
		return
	}
	for i := range calls {
		c := &calls[i]
		end := c.At
		start := end.Add(-time.Duration(c.LatencyMS * float64(time.Millisecond)))
		_, span := x.t.Start(parent, SpanToolCall, trace.WithTimestamp(start), trace.WithAttributes(
			attribute.String("gen_ai.tool.name", c.Tool),
			attribute.String("triage.status", string(c.Status)),
		))
		if c.Status != audit.StatusOK {
			span.SetStatus(codes.Error, c.Reason)
		}
		span.End(trace.WithTimestamp(end))
	}
}

// finished ends what is still open of j when it is decided or given up:
// its wait in the queue (no sampler took it) and the request out on its
// lease (dropped). Call with Pool.mu held.
func (x *tracer) finished(j *job, err error) {
	if x == nil {
		return
	}
	if j.wait != nil {
		if err != nil {
			j.wait.SetStatus(codes.Error, err.Error())
		}
		j.wait.End()
		j.wait = nil
	}
	if l := j.lease; l != nil && l.span != nil {
		reason := "the item was decided or given up while its request was out"
		if err != nil {
			reason = err.Error()
		}
		x.endAttempt(l.span, nil, reason)
		l.span = nil
	}
}
