package client

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/sampling/work"
)

// Handler returns a sampling handler for mcp.ClientOptions.CreateMessageHandler
// that answers each request with p: it converts the request with
// [work.RequestFromMCP], calls p.Complete, and converts the response with
// [work.ResultToMCP]. Errors are wrapped with context; the go-sdk sends them to
// the server as the request's JSON-RPC error. log may be nil (no logging).
//
// Handler does not retry; [Sampler] wraps it with a bounded retry of
// retryable provider errors.
func Handler(p llm.Provider, log *slog.Logger) func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	return handler(p, log, work.RequestFromMCP, work.ResultToMCP)
}

// HandlerWithTools is [Handler] for
// mcp.ClientOptions.CreateMessageWithToolsHandler, which go-sdk calls for
// every sampling request, with tools or without: it converts with
// [work.RequestFromMCPWithTools] and [work.ResultToMCPWithTools], so the
// request's tools reach p and the model's tool calls go back to the server
// as tool_use content (stopReason "toolUse"). It never runs a tool: the
// server that offered them does. p should support tools (see llm.Provider);
// one that ignores them answers with text only.
func HandlerWithTools(p llm.Provider, log *slog.Logger) func(context.Context, *mcp.CreateMessageWithToolsRequest) (*mcp.CreateMessageWithToolsResult, error) {
	return handler(p, log, work.RequestFromMCPWithTools, work.ResultToMCPWithTools)
}

// handler is both handlers: convert the params with from, call p, log both
// outcomes and wrap the error, convert the response with to.
func handler[P mcp.Params, R any](p llm.Provider, log *slog.Logger,
	from func(P) (llm.Request, error), to func(llm.Response) R) func(context.Context, *mcp.ClientRequest[P]) (R, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, req *mcp.ClientRequest[P]) (R, error) {
		var none R
		if req == nil {
			return none, fmt.Errorf("sampler: %w: no request", work.ErrUnsupported)
		}
		lreq, err := from(req.Params) // nil params are refused there
		if err != nil {
			return none, err
		}
		// A traced provider's span joins the consumer's trace of the event.
		ctx = work.ExtractTrace(ctx, req.Params.GetMeta())
		start := time.Now()
		resp, err := p.Complete(ctx, lreq)
		if err != nil {
			log.Warn("sampler: provider failed", "provider", p.Name(), "event_id", lreq.Metadata["event_id"],
				"retryable", llm.IsRetryable(err), "err", err)
			return none, fmt.Errorf("sampler: %s: %w", p.Name(), err)
		}
		log.Debug("sampler: answered", "provider", p.Name(), "model", resp.Model, "event_id", lreq.Metadata["event_id"],
			"stop_reason", resp.StopReason, "tools_offered", len(lreq.Tools), "tool_calls", len(resp.ToolCalls),
			"input_tokens", resp.InputTokens, "output_tokens", resp.OutputTokens, "latency", time.Since(start))
		return to(resp), nil
	}
}

// supportsTools reports whether p says it passes Request.Tools to its
// model (see llm.Provider).
func supportsTools(p llm.Provider) bool {
	t, ok := p.(interface{ SupportsTools() bool })
	return ok && t.SupportsTools()
}
