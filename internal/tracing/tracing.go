// Package tracing sets up OpenTelemetry tracing for triage's binaries: an
// OTLP/HTTP exporter behind a batch span processor when an endpoint is
// configured, and nothing at all otherwise.
//
// "Nothing at all" is the point: with no endpoint, [Setup] returns a nil
// trace.TracerProvider, and the packages that take one (pipeline.Config,
// sampling.Options, sampling.DirectOptions, client.Config) skip every span
// for nil, so the rule path pays a nil check per record, not a no-op
// tracer's context allocations.
//
// The standard OTEL_* variables are honoured, as the OpenTelemetry SDK
// and exporter read them:
//
//   - OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT:
//     either turns tracing on, as the --otlp-endpoint flag does (the flag
//     wins); OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION,
//     _CERTIFICATE and their _TRACES_ forms configure the exporter.
//   - OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turn it off
//     whatever else is set.
//   - OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG choose the sampler;
//     with OTEL_TRACES_SAMPLER unset it is parentbased_traceidratio, at
//     OTEL_TRACES_SAMPLER_ARG or else [DefaultRatio]: a stream of tens of
//     thousands of events a second cannot afford a trace each. Set
//     OTEL_TRACES_SAMPLER_ARG=1 to trace every event (a demo).
//   - OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES name the service
//     (default: Config.Service).
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// DefaultRatio is the share of traces sampled when OTEL_TRACES_SAMPLER is
// not set: 1 % of the events (and of the fetch and commit batches) that
// start a trace. Children follow their parent's decision, so a sampled
// event is traced whole, across the consumer and its samplers.
const DefaultRatio = 0.01

// Config configures Setup.
type Config struct {
	// Endpoint is the OTLP/HTTP endpoint, "http://host:4318" or
	// "https://host:4318/custom/path"; without a path, /v1/traces is
	// appended, as for OTEL_EXPORTER_OTLP_ENDPOINT. Empty means the
	// environment's, and none there means tracing is off.
	Endpoint string
	// Service is service.name unless OTEL_SERVICE_NAME says otherwise.
	// Required.
	Service string
	// Version is service.version; empty leaves it out.
	Version string
	// Sampler replaces the sampler, OTEL_TRACES_SAMPLER included (tests).
	Sampler sdktrace.Sampler
	// Exporter replaces the OTLP exporter (tests: tracetest's in-memory
	// exporter); it turns tracing on like an endpoint does.
	Exporter sdktrace.SpanExporter
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
}

// Setup builds the tracer provider cfg asks for. With tracing off it
// returns a nil provider and a shutdown that does nothing. Call shutdown
// once, on the way out, with a deadline: it flushes the spans still
// queued.
func Setup(ctx context.Context, cfg Config) (tp trace.TracerProvider, shutdown func(context.Context) error, err error) {
	none := func(context.Context) error { return nil }
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if cfg.Service == "" {
		return nil, none, errors.New("tracing: no service name")
	}
	exp := cfg.Exporter
	if exp == nil {
		opts, on, err := exporterOptions(cfg.Endpoint, getenv)
		if err != nil || !on {
			return nil, none, err
		}
		if exp, err = otlptracehttp.New(ctx, opts...); err != nil {
			return nil, none, fmt.Errorf("tracing: OTLP exporter: %w", err)
		}
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", cfg.Service)}
	if cfg.Version != "" {
		attrs = append(attrs, attribute.String("service.version", cfg.Version))
	}
	// The environment's attributes come last, so that OTEL_SERVICE_NAME
	// and OTEL_RESOURCE_ATTRIBUTES override the defaults.
	res, err := resource.New(ctx, resource.WithTelemetrySDK(), resource.WithAttributes(attrs...), resource.WithFromEnv())
	if err != nil {
		return nil, none, fmt.Errorf("tracing: resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(exp), sdktrace.WithResource(res)}
	if s := sampler(cfg, getenv); s != nil {
		opts = append(opts, sdktrace.WithSampler(s))
	}
	p := sdktrace.NewTracerProvider(opts...)
	return p, p.Shutdown, nil
}

// sampler is the sampler cfg asks for; nil leaves the choice to the SDK,
// which reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG.
func sampler(cfg Config, getenv func(string) string) sdktrace.Sampler {
	switch {
	case cfg.Sampler != nil:
		return cfg.Sampler
	case getenv("OTEL_TRACES_SAMPLER") != "":
		return nil
	}
	// The default sampler's ratio: OTEL_TRACES_SAMPLER_ARG alone sets it,
	// as it would with OTEL_TRACES_SAMPLER=parentbased_traceidratio.
	ratio := DefaultRatio
	if arg := getenv("OTEL_TRACES_SAMPLER_ARG"); arg != "" {
		if r, err := strconv.ParseFloat(arg, 64); err == nil && r >= 0 && r <= 1 {
			ratio = r
		}
	}
	return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))
}

// exporterOptions says whether tracing is on and, if so, where spans go.
func exporterOptions(endpoint string, getenv func(string) string) ([]otlptracehttp.Option, bool, error) {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") || getenv("OTEL_TRACES_EXPORTER") == "none" {
		return nil, false, nil
	}
	if endpoint == "" {
		// The exporter reads these itself; they only say that it is wanted.
		on := getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
		return nil, on, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, false, fmt.Errorf("tracing: OTLP endpoint %q: want an http:// or https:// URL such as http://collector:4318", endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return []otlptracehttp.Option{otlptracehttp.WithEndpointURL(u.String())}, true, nil
}

// StopTimeout bounds the flush of the spans still queued when a binary
// exits: an unreachable collector must not hold up a shutdown.
const StopTimeout = 5 * time.Second

// Stop runs shutdown (from Setup) on the way out: after ctx was cancelled
// (a signal), within StopTimeout. A failure is logged, never fatal: the
// spans are lost, the work they describe is not.
func Stop(ctx context.Context, shutdown func(context.Context) error, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), StopTimeout)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		log.Warn("tracing: spans not flushed at exit", "err", err)
	}
}
