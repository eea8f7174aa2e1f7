package pipeline

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/triage-dev/triage/rules"
)

// BenchmarkTraceRuleEvent measures what tracing adds to one rule-decided
// event (its root span, decode, rules and emit, ended as at-least-once
// does): off (no TracerProvider, the default), on with the event not
// sampled (what most events cost at a low ratio), and on and sampled, into
// an exporter that drops the spans. BenchmarkRulePath measures the whole
// pipeline; this isolates the hooks.
func BenchmarkTraceRuleEvent(b *testing.B) {
	for _, c := range []struct {
		name string
		tp   trace.TracerProvider
	}{
		{"off", nil},
		{"unsampled", sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0))))},
		{"sampled", sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
			sdktrace.WithSyncer(tracetest.NewNoopExporter()))},
	} {
		b.Run(c.name, func(b *testing.B) {
			x := newTracer(c.tp, StageInline)
			r := &kgo.Record{Topic: "events.transactions", Partition: 3, Offset: 42}
			ev := Event{ID: "ev-1", Type: "transaction", TenantID: "t1"}
			res := rules.Result{Type: "transaction", RuleID: "small_domestic", Action: "allow"}
			d := Decision{Outcome: "allow", Path: PathRule, RuleID: "small_domestic"}
			b.ReportAllocs()
			for b.Loop() {
				start := x.clock()
				decoded := x.clock()
				t := &Ticket{}
				t.trace = x.event(r, &ev, res, start, decoded)
				x.emitting(t, &d, 2)
				x.acked(t, true)
			}
		})
	}
}

// TestTracerOffIsFree: with no TracerProvider the hooks read no clock and
// allocate nothing.
func TestTracerOffIsFree(t *testing.T) {
	var x *tracer
	r := &kgo.Record{Topic: "events.transactions"}
	ev := Event{ID: "ev-1"}
	d := Decision{Path: PathRule}
	allocs := testing.AllocsPerRun(100, func() {
		start := x.clock()
		tk := &Ticket{}
		tk.trace = x.event(r, &ev, rules.Result{}, start, x.clock())
		x.emitting(tk, &d, 2)
		x.acked(tk, true)
		x.fetch(nil)()
		x.committed(time.Time{}, nil, true, nil)
	})
	// The Ticket itself may be heap-allocated by the test; nothing else is.
	if allocs > 1 {
		t.Errorf("tracing off: %.0f allocations per event, want none beyond the ticket", allocs)
	}
	if !x.clock().IsZero() {
		t.Error("tracing off reads the clock")
	}
}
