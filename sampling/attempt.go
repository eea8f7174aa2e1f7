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
)

// attemptRecord is the audit record of one sampling attempt; the pipeline
// fills in the event's identity when it emits it.
func attemptRecord(c *conversation, mode, session string, started time.Time, status audit.Status, r *llm.Response, reason string) audit.Record {
	a := audit.Record{
		Kind:           audit.KindSampling,
		Path:           pipeline.PathSampled,
		RuleID:         c.item.Rule.RuleID,
		Status:         status,
		Reason:         reason,
		Mode:           mode,
		SamplerSession: session,
		ModelRequested: c.modelRequested(),
		Tier:           c.prompt.Tier,
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
