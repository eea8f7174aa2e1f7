package pipeline

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/triage-dev/triage/rules"
)

// Span names. An event's trace is rooted at SpanEvent (or continues the
// producer's trace when the record carries a traceparent header) and has,
// in order: SpanDecode, SpanRules, then for an ambiguous event SpanQueue
// and SpanDecide (under which the Decider records its own spans: the
// sampling queue, each attempt, each tool call), and SpanEmit. With
// exactly-once delivery SpanEvent ends when the transaction holding the
// event's outputs commits, linked to that transaction's SpanCommit; with
// at-least-once, when the outputs are acknowledged.
//
// Fetches and commits are batches of many events: they are traces of their
// own, linked both ways with the events they carry that are traced.
const (
	SpanFetch = "triage.fetch" // one polled batch: decode, rules and hand-off of its records
	SpanEvent = "triage.event" // one record, from decode to commit
	// SpanHandoff roots a handed-off event's part in the sampling stage,
	// from its handoff record to commit, in the event's trace (the rule
	// stage puts it in the record's traceparent header) when it is traced.
	SpanHandoff = "triage.handoff"
	SpanDecode  = "triage.decode" // parse and validate
	SpanRules   = "triage.rules"  // the rules' verdict
	SpanQueue   = "triage.queue"  // an ambiguous event waiting for a worker
	SpanDecide  = "triage.decide" // the Decider's call
	SpanEmit    = "triage.emit"   // decision, audit records or dead letter, until the broker acknowledged them
	SpanCommit  = "triage.commit" // one transaction: flush, offsets and outputs committed or aborted
)

// maxCommitLinks bounds the links of a commit span to the traced events it
// commits (the SDK's default span limit is 128 links).
const maxCommitLinks = 128

// tracer records the pipeline's spans. A nil tracer (Config.TracerProvider
// nil) is off: every method is a nil check, so the rule path costs nothing
// more. With a tracer, an event whose root span the sampler does not record
// costs that one span's start and no more: its stage spans are never
// made.
type tracer struct {
	t trace.Tracer
	// rootName is the root span's name: SpanEvent, or SpanHandoff in the
	// sampling stage.
	rootName string
	// batch is the span context of the fetch being handled, which the
	// events taken from it link to. The poll goroutine sets it before the
	// partitions are taken and clears it after; the takes only read it.
	batch trace.SpanContext
}

func newTracer(tp trace.TracerProvider, stage string) *tracer {
	if tp == nil {
		return nil
	}
	x := &tracer{t: tp.Tracer("github.com/triage-dev/triage/pipeline"), rootName: SpanEvent}
	if stage == StageSampling {
		x.rootName = SpanHandoff
	}
	return x
}

// inject puts the traced event's context into headers (W3C traceparent),
// for the stage that reads the record next; nothing when it is not traced.
func (et *eventTrace) inject(headers *[]kgo.RecordHeader) {
	if et == nil {
		return
	}
	propagation.TraceContext{}.Inject(et.ctx, (*headerWriter)(headers))
}

// headerWriter writes W3C trace context into Kafka record headers.
type headerWriter []kgo.RecordHeader

func (h *headerWriter) Get(key string) string { return headerCarrier(*h).Get(key) }
func (h *headerWriter) Keys() []string        { return headerCarrier(*h).Keys() }
func (h *headerWriter) Set(key, value string) {
	*h = append(*h, kgo.RecordHeader{Key: key, Value: []byte(value)})
}

// eventTrace is the open spans of one traced event. It travels with the
// event's Ticket.
type eventTrace struct {
	root   trace.Span
	ctx    context.Context // root's, for its stage spans
	queued time.Time       // when an ambiguous event was handed to the workers
	emit   trace.Span      // open while the outputs wait for the broker
	ended  atomic.Bool     // root ended: an event ends once, whichever way
}

// clock is time.Now with tracing on and the zero time without: the rule
// path reads no clock for spans nobody records.
func (x *tracer) clock() time.Time {
	if x == nil {
		return time.Time{}
	}
	return time.Now()
}

func noFetch() {}

// fetch starts the span of one polled batch; the returned func ends it.
func (x *tracer) fetch(fetches kgo.Fetches) (end func()) {
	if x == nil {
		return noFetch
	}
	n := fetches.NumRecords()
	if n == 0 {
		x.batch = trace.SpanContext{}
		return noFetch
	}
	_, span := x.t.Start(context.Background(), SpanFetch, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
		attribute.String("messaging.system", "kafka"),
		attribute.String("messaging.operation.type", "receive"),
		attribute.Int("messaging.batch.message_count", n),
	))
	x.batch = span.SpanContext()
	return func() {
		x.batch = trace.SpanContext{}
		span.End()
	}
}

// root starts an event's root span at start. attrs are what a sampler
// may decide on; the rest are set only once the span is known to be
// recorded, so that an unsampled event costs as little as it can. It
// returns nil when the span is not recorded.
func (x *tracer) root(r *kgo.Record, start time.Time, attrs ...attribute.KeyValue) *eventTrace {
	ctx := context.Background()
	if len(r.Headers) > 0 {
		// The producer's trace, if it sent one: the event continues it.
		ctx = propagation.TraceContext{}.Extract(ctx, headerCarrier(r.Headers))
	}
	opts := []trace.SpanStartOption{trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...)}
	if x.batch.IsSampled() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: x.batch}))
	}
	ctx, span := x.t.Start(ctx, x.rootName, opts...)
	if !span.IsRecording() {
		span.End()
		return nil
	}
	span.SetAttributes(
		attribute.String("messaging.system", "kafka"),
		attribute.String("messaging.operation.type", "process"),
		attribute.String("messaging.destination.name", r.Topic),
		attribute.String("messaging.destination.partition.id", strconv.Itoa(int(r.Partition))),
		attribute.Int64("messaging.kafka.offset", r.Offset),
	)
	return &eventTrace{root: span, ctx: ctx}
}

// event traces a valid event from start; decoded is when decoding ended
// and the rules began. Called on the goroutine taking the event's
// partition.
func (x *tracer) event(r *kgo.Record, ev *Event, res rules.Result, start, decoded time.Time) *eventTrace {
	if x == nil {
		return nil
	}
	et := x.root(r, start, attribute.String("triage.event_type", ev.Type), attribute.String("triage.rule.action", res.Action))
	if et == nil {
		return nil
	}
	et.root.SetAttributes(
		attribute.String("triage.event_id", ev.ID),
		attribute.String("triage.tenant_id", ev.TenantID),
		attribute.String("triage.rule_id", res.RuleID),
	)
	_, decode := x.t.Start(et.ctx, SpanDecode, trace.WithTimestamp(start))
	decode.End(trace.WithTimestamp(decoded))
	_, rs := x.t.Start(et.ctx, SpanRules, trace.WithTimestamp(decoded), trace.WithAttributes(
		attribute.String("triage.rule.action", res.Action),
		attribute.String("triage.rule_id", res.RuleID),
	))
	if res.Err != nil {
		rs.SetStatus(codes.Error, res.Err.Error())
	}
	now := time.Now()
	rs.End(trace.WithTimestamp(now))
	et.queued = now
	return et
}

// deadLetter traces a record that is not a valid event.
func (x *tracer) deadLetter(r *kgo.Record, derr *DecodeError, start time.Time) *eventTrace {
	if x == nil {
		return nil
	}
	et := x.root(r, start, attribute.String("triage.dlq_reason", derr.Reason))
	if et == nil {
		return nil
	}
	_, decode := x.t.Start(et.ctx, SpanDecode, trace.WithTimestamp(start))
	decode.SetStatus(codes.Error, derr.Error())
	decode.End()
	return et
}

// deciding records the event's wait for a worker and starts the span of
// the Decider's call, returning the context to call it with.
func (x *tracer) deciding(ctx context.Context, t *Ticket) (context.Context, trace.Span) {
	if x == nil || t.trace == nil {
		return ctx, nil
	}
	et := t.trace
	_, q := x.t.Start(et.ctx, SpanQueue, trace.WithTimestamp(et.queued))
	q.End()
	_, span := x.t.Start(et.ctx, SpanDecide)
	return trace.ContextWithSpan(ctx, span), span
}

// decided ends the Decider's span with its verdict.
func (x *tracer) decided(span trace.Span, v Verdict, err error) {
	if x == nil || span == nil {
		return
	}
	span.SetAttributes(
		attribute.String("triage.path", v.Path),
		attribute.String("triage.outcome", v.Outcome),
		attribute.String("triage.model", v.Model),
		attribute.String("triage.tier", v.Tier),
		attribute.Int("triage.sampling.audit_records", len(v.Attempts)),
	)
	if err != nil {
		span.SetAttributes(attribute.String("triage.fallback_reason", FallbackReason(err)))
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// emitting puts the decision on the event's root span and starts the span
// of its outputs: records of them.
func (x *tracer) emitting(t *Ticket, d *Decision, records int) {
	if x == nil || t.trace == nil {
		return
	}
	et := t.trace
	if d != nil {
		et.root.SetAttributes(
			attribute.String("triage.path", d.Path),
			attribute.String("triage.outcome", d.Outcome),
			attribute.String("triage.rule_id", d.RuleID),
			attribute.String("triage.model", d.Model),
			attribute.String("triage.tier", d.Tier),
		)
		if d.Path == PathFallback {
			et.root.SetAttributes(attribute.String("triage.fallback_reason", d.Reason))
		}
	}
	_, et.emit = x.t.Start(et.ctx, SpanEmit, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.Int("messaging.batch.message_count", records)))
}

// acked ends the span of the event's outputs, which the broker has
// acknowledged, and, when no transaction is to commit them (final), the
// event's root span.
func (x *tracer) acked(t *Ticket, final bool) {
	if x == nil || t.trace == nil {
		return
	}
	et := t.trace
	if et.emit != nil {
		et.emit.End()
	}
	if final && et.ended.CompareAndSwap(false, true) {
		et.root.End()
	}
}

// abandoned ends the trace of an event that this member will not finish:
// its partition moved, shutdown ran out of time, or a produce failed.
func (x *tracer) abandoned(t *Ticket, why string) {
	if x == nil || t.trace == nil || !t.trace.ended.CompareAndSwap(false, true) {
		return
	}
	et := t.trace
	if et.emit != nil {
		et.emit.End()
	}
	et.root.SetStatus(codes.Error, why)
	et.root.End()
}

// committed records the end of a transaction that began (its flush) at
// start and held results, and ends the root spans of their events: each
// links to the commit, which links to them.
func (x *tracer) committed(start time.Time, results []pendingResult, committed bool, err error) {
	if x == nil {
		return
	}
	var links []trace.Link
	for _, r := range results {
		if r.trace != nil && len(links) < maxCommitLinks {
			links = append(links, trace.Link{SpanContext: r.trace.root.SpanContext()})
		}
	}
	_, span := x.t.Start(context.Background(), SpanCommit, trace.WithTimestamp(start), trace.WithLinks(links...),
		trace.WithAttributes(
			attribute.Bool("triage.committed", committed),
			attribute.Int("triage.commit.events", len(results)),
		))
	switch {
	case err != nil:
		span.SetStatus(codes.Error, err.Error())
	case !committed:
		span.SetStatus(codes.Error, "transaction aborted")
	}
	span.End()
	commit := trace.Link{SpanContext: span.SpanContext()}
	for _, r := range results {
		et := r.trace
		if et == nil || !et.ended.CompareAndSwap(false, true) {
			continue
		}
		et.root.AddLink(commit)
		et.root.SetAttributes(attribute.Bool("triage.committed", committed))
		if !committed {
			et.root.SetStatus(codes.Error, "transaction aborted: the event is processed again")
		}
		et.root.End()
	}
}

// headerCarrier reads W3C trace context from Kafka record headers.
type headerCarrier []kgo.RecordHeader

func (h headerCarrier) Get(key string) string {
	for _, kv := range h {
		if kv.Key == key {
			return string(kv.Value)
		}
	}
	return ""
}

// Set is never called: the pipeline only reads record headers.
func (h headerCarrier) Set(string, string) {}

func (h headerCarrier) Keys() []string {
	keys := make([]string, len(h))
	for i, kv := range h {
		keys[i] = kv.Key
	}
	return keys
}
