package audit

import "time"

// Decision is the record of the decisions topic, keyed by the event's entity
// key: one per event, whoever decided it. The pipeline writes it (as
// pipeline.Decision) and the sink stores it; it lives here so that both
// share one definition.
type Decision struct {
	EventID  string `json:"event_id"`
	Type     string `json:"type"`
	TenantID string `json:"tenant_id"`
	Key      string `json:"key"`
	Outcome  string `json:"outcome"`
	// Path is who decided: rule, sampled, cache or fallback.
	Path   string `json:"path"`
	RuleID string `json:"rule_id,omitempty"`
	Reason string `json:"reason,omitempty"`
	Model  string `json:"model,omitempty"`
	// Tier is the risk tier of a sampled, cached or fallback decision, as
	// the rules file's tiers: name it; empty when the file has none.
	Tier string `json:"tier,omitempty"`
	// Score is the model's confidence in a sampled or cached decision's
	// outcome, 0 to 1, when its answer gave one.
	Score *float64 `json:"score,omitempty"`
	// LatencyMS runs from the event's produce timestamp to the decision.
	LatencyMS float64   `json:"latency_ms"`
	DecidedAt time.Time `json:"decided_at"`
}
