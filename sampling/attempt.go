package sampling

import (
	"time"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/pipeline"
)

// Modes say how an attempt reached the model.
const (
	ModePull   = "pull"   // a sampler pulled the item through the work tool
	ModePush   = "push"   // the pool sent sampling/createMessage to a legacy host
	ModeDirect = "direct" // the consumer called the provider API itself
	// ModeCaller: the client that called the decide tool answered its own
	// item's request (sampling back to the caller).
	ModeCaller = "caller"
)

// attemptRecord is the audit record of one sampling attempt; the pipeline
// fills in the event's identity when it emits it.
func attemptRecord(c *conversation, mode, session string, started time.Time, status audit.Status, r *llm.Response, reason string) audit.Record {
	a := stepRecord(c, audit.KindSampling, mode, session, started, status, reason)
	a.ModelRequested = c.modelRequested()
	a.RequestSummary = c.summary()
	if r != nil {
		a.ModelAnswered = r.Model
		a.InputTokens, a.OutputTokens = r.InputTokens, r.OutputTokens
		a.ResponseSummary = clip(turnText(llm.Message{Text: r.Text, ToolCalls: r.ToolCalls}), 1024)
	}
	return a
}

// stepRecord is what the audit records of a sampling attempt and of a tool
// call have in common.
func stepRecord(c *conversation, kind audit.Kind, mode, session string, started time.Time, status audit.Status, reason string) audit.Record {
	return audit.Record{
		Kind:           kind,
		Path:           pipeline.PathSampled,
		RuleID:         c.item.Rule.RuleID,
		Status:         status,
		Reason:         reason,
		Mode:           mode,
		SamplerSession: session,
		Tier:           c.prompt.Tier,
		LatencyMS:      float64(time.Since(started).Microseconds()) / 1000,
		At:             time.Now().UTC(),
	}
}
