package work

import (
	"context"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/propagation"
)

// Trace context keys of a sampling request's _meta: W3C Trace Context
// (https://www.w3.org/TR/trace-context/), under the keys MCP's
// OpenTelemetry conventions give them. The consumer sets them to the span
// of the sampling attempt, so that a sampler's provider call joins the
// consumer's trace as its child; a sampler that does not trace ignores
// them.
const (
	MetaTraceparent = "traceparent"
	MetaTracestate  = "tracestate"
)

// traceContext is the one propagator both sides use: W3C Trace Context,
// never the process's global one, which a library must not depend on.
var traceContext propagation.TraceContext

// InjectTrace writes the span context of ctx into the _meta of params, a
// sampling request (*mcp.CreateMessageParams or
// *mcp.CreateMessageWithToolsParams). It does nothing when ctx carries no
// valid span context.
func InjectTrace(ctx context.Context, params mcp.InputRequest) {
	p, ok := params.(mcp.Params)
	if !ok {
		return
	}
	meta := p.GetMeta()
	if meta == nil {
		meta = map[string]any{}
	}
	traceContext.Inject(ctx, metaCarrier(meta))
	if len(meta) > 0 {
		p.SetMeta(meta)
	}
}

// ExtractTrace returns ctx with the remote span context that meta, a
// sampling request's _meta, carries; ctx unchanged when it carries none.
func ExtractTrace(ctx context.Context, meta map[string]any) context.Context {
	if _, ok := meta[MetaTraceparent]; !ok {
		return ctx
	}
	return traceContext.Extract(ctx, metaCarrier(meta))
}

// metaCarrier adapts _meta to propagation.TextMapCarrier: values are
// strings on the wire, and anything else under a trace key is ignored.
type metaCarrier map[string]any

func (m metaCarrier) Get(key string) string {
	s, _ := m[key].(string)
	return s
}

func (m metaCarrier) Set(key, value string) { m[key] = value }

func (m metaCarrier) Keys() []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}
