package pipeline_test

import (
	"context"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/triage-dev/triage/internal/tracing/tracingtest"
	"github.com/triage-dev/triage/pipeline"
)

// spanDecider answers the type's first outcome inside a span of its own,
// started from the context the pipeline gives it: what a traced Decider
// (sampling.Pool, sampling.Direct) does.
type spanDecider struct{ t trace.Tracer }

func (d spanDecider) Decide(ctx context.Context, it pipeline.Item) (pipeline.Verdict, error) {
	_, span := d.t.Start(ctx, "test.decider")
	defer span.End()
	return pipeline.Verdict{Outcome: it.Type.Outcomes[0], Model: "test-model"}, nil
}

// spanIndex finds spans of one export by what the tests ask about them.
type spanIndex tracetest.SpanStubs

func (s spanIndex) event(t *testing.T, id string) tracetest.SpanStub {
	t.Helper()
	for _, sp := range s {
		if sp.Name == pipeline.SpanEvent && attr(sp, "triage.event_id") == id {
			return sp
		}
	}
	t.Fatalf("no %s span for event %s", pipeline.SpanEvent, id)
	return tracetest.SpanStub{}
}

func (s spanIndex) byID(id trace.SpanID) (tracetest.SpanStub, bool) {
	for _, sp := range s {
		if sp.SpanContext.SpanID() == id {
			return sp, true
		}
	}
	return tracetest.SpanStub{}, false
}

// children are the names of parent's children, in start order.
func (s spanIndex) children(parent tracetest.SpanStub) []string {
	return tracingtest.Children(tracetest.SpanStubs(s), parent)
}

var attr = tracingtest.Attr

// linked returns the span named name among the links of sp.
func (s spanIndex) linked(t *testing.T, sp tracetest.SpanStub, name string) tracetest.SpanStub {
	t.Helper()
	for _, l := range sp.Links {
		if target, ok := s.byID(l.SpanContext.SpanID()); ok && target.Name == name {
			return target
		}
	}
	t.Fatalf("%s (%s) has no link to a %s span: %v", sp.Name, attr(sp, "triage.event_id"), name, sp.Links)
	return tracetest.SpanStub{}
}

func linksTo(sp, target tracetest.SpanStub) bool {
	return slices.ContainsFunc(sp.Links, func(l sdktrace.Link) bool {
		return l.SpanContext.SpanID() == target.SpanContext.SpanID()
	})
}

// TestTraceSpanTree: with a tracer provider, an ambiguous event's trace is
// decode → rules → queue → decide (the Decider's spans under it) → emit,
// a rule-decided event's decode → rules → emit and continues the trace its
// record's traceparent header names, a dead letter's decode (failed) →
// emit; each event's root links to the fetch that brought it and to the
// transaction that committed it, which links back.
func TestTraceSpanTree(t *testing.T) {
	brokers := startBroker(t)
	exp, tp := tracingtest.Recorder(t)

	upstream := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled,
	})
	ruled := record("events.transactions", txn("tx-rule", 25, "DE", "DE"))
	ruled.Headers = []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-" + upstream.TraceID().String() + "-" + upstream.SpanID().String() + "-01")}}
	sampled := record("events.transactions", txn("tx-sampled", 9000, "NG", "NG"))
	bad := &kgo.Record{Topic: "events.transactions", Key: []byte("bad"), Value: []byte("{not json")}
	produce(t, brokers, []*kgo.Record{ruled, sampled, bad})

	res := newResults()
	stop := runPipeline(t, pipeline.Config{
		Brokers: brokers, Group: "trace", Decider: spanDecider{tp.Tracer("test")},
		OnResult: res.add, TracerProvider: tp,
	})
	res.waitFor(t, 3)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	spans := spanIndex(exp.GetSpans())

	amb := spans.event(t, "tx-sampled")
	if got, want := spans.children(amb), []string{pipeline.SpanDecode, pipeline.SpanRules, pipeline.SpanQueue, pipeline.SpanDecide, pipeline.SpanEmit}; !slices.Equal(got, want) {
		t.Errorf("ambiguous event: children %v, want %v", got, want)
	}
	for _, sp := range spans {
		if sp.Name == pipeline.SpanDecide && sp.Parent.SpanID() == amb.SpanContext.SpanID() {
			if got := spans.children(sp); !slices.Equal(got, []string{"test.decider"}) {
				t.Errorf("decide span: children %v, want the Decider's span", got)
			}
		}
	}
	if attr(amb, "triage.path") != pipeline.PathSampled || attr(amb, "triage.rule.action") != "sample" || attr(amb, "triage.committed") != "true" {
		t.Errorf("ambiguous event: attributes %v", amb.Attributes)
	}

	rule := spans.event(t, "tx-rule")
	if got, want := spans.children(rule), []string{pipeline.SpanDecode, pipeline.SpanRules, pipeline.SpanEmit}; !slices.Equal(got, want) {
		t.Errorf("rule event: children %v, want %v", got, want)
	}
	if rule.Parent.TraceID() != upstream.TraceID() || rule.Parent.SpanID() != upstream.SpanID() {
		t.Errorf("rule event: parent %v, want the producer's span %v from the traceparent header", rule.Parent, upstream)
	}
	if attr(rule, "triage.path") != pipeline.PathRule || attr(rule, "triage.outcome") != "allow" || attr(rule, "messaging.destination.name") != "events.transactions" {
		t.Errorf("rule event: attributes %v", rule.Attributes)
	}

	var dead tracetest.SpanStub
	for _, sp := range spans {
		if sp.Name == pipeline.SpanEvent && attr(sp, "triage.dlq_reason") != "" {
			dead = sp
		}
	}
	if got, want := spans.children(dead), []string{pipeline.SpanDecode, pipeline.SpanEmit}; !slices.Equal(got, want) {
		t.Errorf("dead letter: children %v, want %v", got, want)
	}
	for _, sp := range spans {
		if sp.Name == pipeline.SpanDecode && sp.Parent.SpanID() == dead.SpanContext.SpanID() && sp.Status.Code != codes.Error {
			t.Errorf("dead letter: decode status %v, want an error", sp.Status)
		}
	}

	for _, ev := range []tracetest.SpanStub{amb, rule, dead} {
		commit := spans.linked(t, ev, pipeline.SpanCommit)
		if !linksTo(commit, ev) || attr(commit, "triage.committed") != "true" {
			t.Errorf("%s: commit span %v does not link back or did not commit", attr(ev, "triage.event_id"), commit.Attributes)
		}
		if commit.SpanContext.TraceID() == ev.SpanContext.TraceID() {
			t.Errorf("the commit span is in the event's trace: a commit is a batch, a trace of its own")
		}
		spans.linked(t, ev, pipeline.SpanFetch)
	}
	if !slices.ContainsFunc(amb.Attributes, func(kv attribute.KeyValue) bool {
		return kv.Key == "triage.model" && kv.Value.AsString() == "test-model"
	}) {
		t.Errorf("ambiguous event: no model attribute: %v", amb.Attributes)
	}
}

// TestNoTracerProviderExportsNothing: a pipeline without a TracerProvider
// records no span, not even through the process's global provider.
func TestNoTracerProviderExportsNothing(t *testing.T) {
	brokers := startBroker(t)
	exp, tp := tracingtest.Recorder(t)
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	produce(t, brokers, []*kgo.Record{
		record("events.transactions", txn("tx-rule", 25, "DE", "DE")),
		record("events.transactions", txn("tx-sampled", 9000, "NG", "NG")),
	})
	res := newResults()
	stop := runPipeline(t, pipeline.Config{Brokers: brokers, Group: "untraced", Decider: spanDecider{noop.NewTracerProvider().Tracer("")}, OnResult: res.add})
	res.waitFor(t, 2)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := exp.GetSpans(); len(got) != 0 {
		t.Fatalf("exported %d spans without a tracer provider: %v", len(got), got)
	}
}
