package sampling

import (
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/sampler"
)

// Modes say how an attempt reached the model.
const (
	ModePull   = "pull"   // a sampler pulled the item through the work tool
	ModePush   = "push"   // the pool sent sampling/createMessage to a legacy host
	ModeDirect = "direct" // the consumer called the provider API itself
)

// UsageMetaKey is the _meta key under which samplers report token usage in a
// sampling result: {"inputTokens": n, "outputTokens": m}. The sampler package
// defines the wire contract both sides share.
const UsageMetaKey = sampler.UsageMetaKey

// reply is a model's answer as the pool needs it, whichever way it came.
type reply struct {
	Text                      string
	Model                     string
	StopReason                string
	InputTokens, OutputTokens int64
}

func replyFromLLM(r llm.Response) reply {
	return reply{Text: r.Text, Model: r.Model, StopReason: r.StopReason, InputTokens: r.InputTokens, OutputTokens: r.OutputTokens}
}

// replyFromMCP accepts both result shapes: a go-sdk client answering on
// 2026-07-28 sends a CreateMessageResult, while the server-side MRTR
// middleware for older clients delivers a CreateMessageWithToolsResult.
func replyFromMCP(v any) (reply, bool) {
	var r reply
	var meta mcp.Meta
	var contents []mcp.Content
	switch res := v.(type) {
	case *mcp.CreateMessageResult:
		if res == nil {
			return r, false
		}
		r.Model, r.StopReason, meta = res.Model, res.StopReason, res.Meta
		contents = []mcp.Content{res.Content}
	case *mcp.CreateMessageWithToolsResult:
		if res == nil {
			return r, false
		}
		r.Model, r.StopReason, meta = res.Model, res.StopReason, res.Meta
		contents = res.Content
	default:
		return r, false
	}
	for _, c := range contents {
		if t, ok := c.(*mcp.TextContent); ok {
			r.Text += t.Text
		}
	}
	r.InputTokens, r.OutputTokens, _ = sampler.UsageFromMeta(meta)
	return r, true
}

// attemptRecord is the audit record of one sampling attempt; the pipeline
// fills in the event's identity when it emits it.
func attemptRecord(c *conversation, mode, session string, started time.Time, status audit.Status, r *reply, reason string) audit.Record {
	a := audit.Record{
		Kind:           audit.KindSampling,
		Path:           pipeline.PathSampled,
		RuleID:         c.item.Rule.RuleID,
		Status:         status,
		Reason:         reason,
		Mode:           mode,
		SamplerSession: session,
		ModelRequested: c.modelRequested(),
		RequestSummary: c.summary(),
		LatencyMS:      float64(time.Since(started).Microseconds()) / 1000,
		At:             time.Now().UTC(),
	}
	if r != nil {
		a.ModelAnswered = r.Model
		a.InputTokens, a.OutputTokens = r.InputTokens, r.OutputTokens
		a.ResponseSummary = clip(r.Text, 1024)
	}
	return a
}
