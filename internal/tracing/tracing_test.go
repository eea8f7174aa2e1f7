package tracing_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/triage-dev/triage/internal/tracing"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

// TestSetupOff: with no endpoint anywhere, or the SDK disabled, there is
// no provider at all, so the pipeline skips every span.
func TestSetupOff(t *testing.T) {
	for name, kv := range map[string]map[string]string{
		"nothing set":  {},
		"sdk disabled": {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"},
		"exporter none": {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces",
			"OTEL_TRACES_EXPORTER": "none"},
	} {
		t.Run(name, func(t *testing.T) {
			tp, shutdown, err := tracing.Setup(context.Background(), tracing.Config{Service: "test", Getenv: env(kv)})
			if err != nil || tp != nil {
				t.Fatalf("Setup = %v, %v; want no provider", tp, err)
			}
			if err := shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSetupOn: an endpoint from the flag or the environment turns tracing
// on. Nothing is sent: the exporter connects only when spans are flushed.
func TestSetupOn(t *testing.T) {
	for name, c := range map[string]struct {
		cfg tracing.Config
		kv  map[string]string
	}{
		"flag":        {tracing.Config{Endpoint: "http://127.0.0.1:1"}, nil},
		"flag, path":  {tracing.Config{Endpoint: "https://collector:4318/custom"}, nil},
		"environment": {tracing.Config{}, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}},
	} {
		t.Run(name, func(t *testing.T) {
			c.cfg.Service, c.cfg.Getenv = "test", env(c.kv)
			tp, shutdown, err := tracing.Setup(context.Background(), c.cfg)
			if err != nil || tp == nil {
				t.Fatalf("Setup = %v, %v; want a provider", tp, err)
			}
			if err := shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSetupRejectsBadEndpoint(t *testing.T) {
	for _, endpoint := range []string{"collector:4318", "ftp://collector", "http://"} {
		if _, _, err := tracing.Setup(context.Background(), tracing.Config{Service: "test", Endpoint: endpoint, Getenv: env(nil)}); err == nil {
			t.Errorf("endpoint %q: no error", endpoint)
		}
	}
}

// TestSetupExports: spans reach the exporter, named by the service.
func TestSetupExports(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp, shutdown, err := tracing.Setup(context.Background(), tracing.Config{
		Service: "triage-test", Exporter: exp, Sampler: sdktrace.AlwaysSample(), Getenv: env(nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("test").Start(context.Background(), "work")
	span.End()
	defer func() { _ = shutdown(context.Background()) }()
	// Shutdown would reset the in-memory exporter: flush instead.
	if err := tp.(interface{ ForceFlush(context.Context) error }).ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].Name != "work" {
		t.Fatalf("exported %v", spans)
	}
	if v, ok := spans[0].Resource.Set().Value("service.name"); !ok || v.AsString() != "triage-test" {
		t.Errorf("service.name %v", v)
	}
}
