package tracing

import (
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TestSampler: unset, the sampler is parent-based with DefaultRatio for
// roots, or OTEL_TRACES_SAMPLER_ARG's ratio; OTEL_TRACES_SAMPLER leaves the choice to the SDK; Config.Sampler
// wins over both.
func TestSampler(t *testing.T) {
	getenv := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	want := sdktrace.ParentBased(sdktrace.TraceIDRatioBased(DefaultRatio)).Description()
	if got := sampler(Config{}, getenv(nil)); got == nil || got.Description() != want {
		t.Errorf("default sampler %v, want %s", got, want)
	}
	wantArg := sdktrace.ParentBased(sdktrace.TraceIDRatioBased(1)).Description()
	if got := sampler(Config{}, getenv(map[string]string{"OTEL_TRACES_SAMPLER_ARG": "1"})); got == nil || got.Description() != wantArg {
		t.Errorf("OTEL_TRACES_SAMPLER_ARG alone: sampler %v, want %s", got, wantArg)
	}
	if got := sampler(Config{}, getenv(map[string]string{"OTEL_TRACES_SAMPLER_ARG": "lots"})); got == nil || got.Description() != want {
		t.Errorf("a bad OTEL_TRACES_SAMPLER_ARG: sampler %v, want the default %s", got, want)
	}
	if got := sampler(Config{}, getenv(map[string]string{"OTEL_TRACES_SAMPLER": "always_on"})); got != nil {
		t.Errorf("with OTEL_TRACES_SAMPLER: sampler %s, want the SDK's choice", got.Description())
	}
	if got := sampler(Config{Sampler: sdktrace.NeverSample()}, getenv(map[string]string{"OTEL_TRACES_SAMPLER": "always_on"})); got == nil || got.Description() != "AlwaysOffSampler" {
		t.Errorf("Config.Sampler not used: %v", got)
	}
}
