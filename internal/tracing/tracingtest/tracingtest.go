// Package tracingtest records spans in memory for tests, and finds the
// ones a test asks about.
package tracingtest

import (
	"context"
	"slices"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Recorder returns a tracer provider that samples every span and exports
// it, as it ends, to the returned in-memory exporter; it shuts down when
// the test ends.
func Recorder(t testing.TB) (*tracetest.InMemoryExporter, *sdktrace.TracerProvider) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return exp, tp
}

// Named returns the spans called name, in export order.
func Named(spans tracetest.SpanStubs, name string) tracetest.SpanStubs {
	return slices.DeleteFunc(slices.Clone(spans), func(s tracetest.SpanStub) bool { return s.Name != name })
}

// ChildOf reports whether child's parent is parent.
func ChildOf(child, parent tracetest.SpanStub) bool {
	return child.Parent.TraceID() == parent.SpanContext.TraceID() && child.Parent.SpanID() == parent.SpanContext.SpanID()
}

// Children returns the names of parent's children among spans, in the
// order they started.
func Children(spans tracetest.SpanStubs, parent tracetest.SpanStub) []string {
	kids := slices.DeleteFunc(slices.Clone(spans), func(s tracetest.SpanStub) bool { return !ChildOf(s, parent) })
	slices.SortStableFunc(kids, func(a, b tracetest.SpanStub) int { return a.StartTime.Compare(b.StartTime) })
	names := make([]string, len(kids))
	for i, k := range kids {
		names[i] = k.Name
	}
	return names
}

// Attr returns the attribute key of sp as text, "" when it has none.
func Attr(sp tracetest.SpanStub, key string) string {
	for _, kv := range sp.Attributes {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}
