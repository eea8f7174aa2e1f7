package llm

import (
	"context"
	"errors"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// SpanComplete is the name of the span of one Provider.Complete call that
// Traced records.
const SpanComplete = "llm.complete"

// Traced returns p with a span per Complete call (SpanComplete, kind
// client), a child of the span in the call's context: the sampling attempt
// in direct mode, and in a sampler the consumer's attempt, which reaches
// it in the request's _meta. The span carries OpenTelemetry's gen_ai
// attributes (provider, max tokens, the model that answered, token usage,
// finish reason) and triage's event id; it never records prompts or
// answers, which may hold personal data that only the masked audit
// summaries are allowed to keep. A nil tp returns p itself.
//
// The returned provider keeps p's SupportsTools.
func Traced(p Provider, tp trace.TracerProvider) Provider {
	if tp == nil {
		return p
	}
	t := tracedProvider{p: p, t: tp.Tracer("github.com/triage-dev/triage/llm")}
	if s, ok := p.(interface{ SupportsTools() bool }); ok && s.SupportsTools() {
		return tracedTools{t}
	}
	return t
}

type tracedProvider struct {
	p Provider
	t trace.Tracer
}

// tracedTools is a traced provider that runs tool loops: a separate type,
// so that one that does not keeps having no SupportsTools method.
type tracedTools struct{ tracedProvider }

func (tracedTools) SupportsTools() bool { return true }

func (t tracedProvider) Name() string { return t.p.Name() }

func (t tracedProvider) Complete(ctx context.Context, req Request) (Response, error) {
	ctx, span := t.t.Start(ctx, SpanComplete, trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	if span.IsRecording() {
		attrs := []attribute.KeyValue{
			attribute.String("gen_ai.operation.name", "chat"),
			attribute.String("gen_ai.provider.name", t.p.Name()),
			attribute.Int("gen_ai.request.max_tokens", req.MaxTokens),
			attribute.Int("triage.llm.tools_offered", len(req.Tools)),
		}
		if len(req.Preferences.Hints) > 0 {
			attrs = append(attrs, attribute.String("triage.llm.model_hints", strings.Join(req.Preferences.Hints, ",")))
		}
		if id, ok := req.Metadata["event_id"].(string); ok {
			attrs = append(attrs, attribute.String("triage.event_id", id))
		}
		span.SetAttributes(attrs...)
	}
	resp, err := t.p.Complete(ctx, req)
	if err != nil {
		var le *Error
		span.SetAttributes(attribute.Bool("triage.llm.retryable", IsRetryable(err)))
		if errors.As(err, &le) && le.Status != 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", le.Status))
		}
		span.SetStatus(codes.Error, err.Error())
		return resp, err
	}
	span.SetAttributes(
		attribute.String("gen_ai.response.model", resp.Model),
		attribute.StringSlice("gen_ai.response.finish_reasons", []string{resp.StopReason}),
		attribute.Int64("gen_ai.usage.input_tokens", resp.InputTokens),
		attribute.Int64("gen_ai.usage.output_tokens", resp.OutputTokens),
		attribute.Int("triage.llm.tool_calls", len(resp.ToolCalls)),
	)
	return resp, nil
}
