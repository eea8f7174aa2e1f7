package sampling_test

import (
	"context"
	"slices"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/triage-dev/triage/internal/tracing/tracingtest"
	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/sampling"
	sampler "github.com/triage-dev/triage/sampling/client"
	"github.com/triage-dev/triage/sampling/work"
)

// traceProtocols are the two generations a sampler pulls with: "" is
// go-sdk's default, 2026-07-28 (the client fulfils the input request);
// 2025-11-25 goes through the server-side middleware's createMessage.
var traceProtocols = []struct{ name, version string }{
	{"2026-07-28", ""},
	{"2025-11-25", work.ProtocolLegacy},
}

// TestTraceparentInMeta: a pulled sampling request carries, in its _meta,
// the W3C trace context of the pool's attempt span, a child of the span
// Decide was called under, on both protocol generations.
func TestTraceparentInMeta(t *testing.T) {
	typ := paymentType(t)
	for _, pc := range traceProtocols {
		t.Run(pc.name, func(t *testing.T) {
			exp, tp, pool := tracedPool(t)
			c := connectMemory(t, pool, pc.version, outcomeAnswer("allow"))
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			wg := c.pull(ctx, t, 1)
			defer wg.Wait()
			defer cancel()

			dctx, decide := tp.Tracer("test").Start(ctx, "triage.decide")
			v, err := pool.Decide(dctx, item(t, typ, 1))
			decide.End()
			if err != nil || v.Outcome != "allow" {
				t.Fatalf("Decide = %+v, %v", v, err)
			}

			c.mu.Lock()
			seen := slices.Clone(c.seen)
			c.mu.Unlock()
			if len(seen) != 1 {
				t.Fatalf("sampler saw %d requests, want 1", len(seen))
			}
			meta := seen[0].GetMeta()
			sent := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
				propagation.MapCarrier{"traceparent": str(meta[work.MetaTraceparent])}))
			if !sent.IsValid() {
				t.Fatalf("request _meta %v has no valid traceparent", meta)
			}
			spans := exp.GetSpans()
			attempts := tracingtest.Named(spans, sampling.SpanAttempt)
			if len(attempts) != 1 {
				t.Fatalf("%d attempt spans, want 1", len(attempts))
			}
			a := attempts[0]
			if sent.TraceID() != a.SpanContext.TraceID() || sent.SpanID() != a.SpanContext.SpanID() || !sent.IsSampled() {
				t.Errorf("traceparent %v, want the attempt span %v, sampled", sent, a.SpanContext)
			}
			if a.Parent.SpanID() != decide.SpanContext().SpanID() {
				t.Errorf("attempt span's parent %v, want the decide span", a.Parent)
			}
			for key, want := range map[string]string{
				"triage.status": "ok", "triage.sampling.mode": sampling.ModePull, "gen_ai.response.model": "fake-model",
				"gen_ai.usage.input_tokens": "12", "gen_ai.usage.output_tokens": "7",
			} {
				if got := tracingtest.Attr(a, key); got != want {
					t.Errorf("attempt span: %s = %q, want %q", key, got, want)
				}
			}
			if tracingtest.Attr(a, "triage.sampler.session") == "" {
				t.Errorf("attempt span names no sampler session: %v", a.Attributes)
			}
			queue := tracingtest.Named(spans, sampling.SpanQueue)
			if len(queue) != 1 || !tracingtest.ChildOf(queue[0], tracetest.SpanStubFromReadOnlySpan(decide.(sdktrace.ReadOnlySpan))) {
				t.Errorf("queue spans %v, want one under the decide span", queue)
			}
		})
	}
}

// tracedPool is a pool that records its spans.
func tracedPool(t *testing.T) (*tracetest.InMemoryExporter, *sdktrace.TracerProvider, *sampling.Pool) {
	t.Helper()
	exp, tp := tracingtest.Recorder(t)
	pool := sampling.NewPool(sampling.Options{Logger: testLogger(), TracerProvider: tp})
	t.Cleanup(func() { _ = pool.Close() })
	return exp, tp, pool
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// TestSamplerJoinsTrace: triage's own sampler (sampling/client, a go-sdk
// client on the in-memory transport) records its provider call as a child
// of the pool's attempt span, on both protocol generations.
func TestSamplerJoinsTrace(t *testing.T) {
	typ := paymentType(t)
	for _, pc := range traceProtocols {
		t.Run(pc.name, func(t *testing.T) {
			exp, tp, pool := tracedPool(t)
			prov, err := llm.New("offline", llm.Options{})
			if err != nil {
				t.Fatal(err)
			}
			runSampler(t, pool, sampler.Config{Provider: prov, Concurrency: 1, WaitMS: 200, ProtocolVersion: pc.version, TracerProvider: tp})

			ctx, decide := tp.Tracer("test").Start(context.Background(), "triage.decide")
			ctx, cancel := context.WithTimeout(ctx, waitTimeout)
			defer cancel()
			if _, err := pool.Decide(ctx, item(t, typ, 2)); err != nil {
				t.Fatal(err)
			}
			decide.End()

			spans := exp.GetSpans()
			calls := tracingtest.Named(spans, llm.SpanComplete)
			attempts := tracingtest.Named(spans, sampling.SpanAttempt)
			if len(calls) == 0 || len(calls) != len(attempts) {
				t.Fatalf("%d provider call spans and %d attempt spans, want as many, at least one", len(calls), len(attempts))
			}
			for i, call := range calls {
				if !slices.ContainsFunc(attempts, func(a tracetest.SpanStub) bool { return tracingtest.ChildOf(call, a) }) {
					t.Errorf("provider call %d: parent %v is none of the attempt spans", i, call.Parent)
				}
				if !call.Parent.IsRemote() {
					t.Errorf("provider call %d: parent not remote: it came through the request's _meta, not the Go context", i)
				}
				if tracingtest.Attr(call, "gen_ai.provider.name") != "offline" || tracingtest.Attr(call, "triage.event_id") != "ev-0002" {
					t.Errorf("provider call %d: attributes %v", i, call.Attributes)
				}
			}
			for _, a := range attempts {
				if a.SpanContext.TraceID() != decide.SpanContext().TraceID() {
					t.Errorf("attempt span in trace %v, want the decide span's %v", a.SpanContext.TraceID(), decide.SpanContext().TraceID())
				}
			}
		})
	}
}

// TestDirectTrace: in direct mode each provider call is an attempt span
// (mode direct) under the span Decide was called with, and the call itself
// (llm.complete) is the attempt's child.
func TestDirectTrace(t *testing.T) {
	exp, tp := tracingtest.Recorder(t)
	prov, err := llm.New("offline", llm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := sampling.NewDirect(prov, sampling.DirectOptions{Logger: testLogger(), TracerProvider: tp})
	ctx, decide := tp.Tracer("test").Start(context.Background(), "triage.decide")
	if _, err := d.Decide(ctx, item(t, paymentType(t), 3)); err != nil {
		t.Fatal(err)
	}
	decide.End()
	spans := exp.GetSpans()
	attempts := tracingtest.Named(spans, sampling.SpanAttempt)
	calls := tracingtest.Named(spans, llm.SpanComplete)
	if len(attempts) != 1 || len(calls) != 1 {
		t.Fatalf("%d attempt and %d provider call spans, want one each", len(attempts), len(calls))
	}
	if attempts[0].Parent.SpanID() != decide.SpanContext().SpanID() || !tracingtest.ChildOf(calls[0], attempts[0]) {
		t.Errorf("want decide → attempt → provider call; got attempt parent %v, call parent %v", attempts[0].Parent, calls[0].Parent)
	}
	if tracingtest.Attr(attempts[0], "triage.sampling.mode") != sampling.ModeDirect || tracingtest.Attr(attempts[0], "triage.status") != "ok" ||
		tracingtest.Attr(attempts[0], "gen_ai.response.model") == "" {
		t.Errorf("attempt span attributes %v", attempts[0].Attributes)
	}
}
