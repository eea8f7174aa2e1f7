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
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
		if req == nil || req.Params == nil {
			return nil, fmt.Errorf("sampler: %w: no params", work.ErrUnsupported)
		}
		lreq, err := work.RequestFromMCP(req.Params)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		resp, err := p.Complete(ctx, lreq)
		if err != nil {
			log.Warn("sampler: provider failed", "provider", p.Name(), "event_id", lreq.Metadata["event_id"],
				"retryable", llm.IsRetryable(err), "err", err)
			return nil, fmt.Errorf("sampler: %s: %w", p.Name(), err)
		}
		log.Debug("sampler: answered", "provider", p.Name(), "model", resp.Model, "event_id", lreq.Metadata["event_id"],
			"stop_reason", resp.StopReason, "input_tokens", resp.InputTokens, "output_tokens", resp.OutputTokens,
			"latency", time.Since(start))
		return work.ResultToMCP(resp), nil
	}
}
