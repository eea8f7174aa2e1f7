package pipeline

import (
	"context"
	"errors"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/rules"
)

// Paths say who made a decision.
const (
	PathRule     = "rule"     // a rule matched, or the type's default applied
	PathSampled  = "sampled"  // an LLM answered
	PathCache    = "cache"    // a cached LLM answer for the same masked context
	PathFallback = "fallback" // sampling could not decide; the type's fallback outcome
)

// Item is an event the rules left ambiguous, handed to a Decider.
type Item struct {
	Event Event
	// Type is the event's type as configured when the event was evaluated.
	Type *rules.Type
	// Rule is the rule result that sent the event to sampling.
	Rule rules.Result
	// Prompt, when not nil, is the event's sampling request as a Decider
	// in front of another (sampling.Guard) already rendered it, so that
	// the one behind does not render it again; nil means render it.
	Prompt *rules.Prompt
	// Caller names who asked for a synchronous decision (see Sync); empty
	// for an event read from a topic. The guards limit callers as they
	// limit users.
	Caller string
}

// Verdict is a Decider's answer for one item.
type Verdict struct {
	// Outcome must be one of the item type's outcomes.
	Outcome string
	// Path is PathSampled or PathCache; empty means PathSampled.
	Path   string
	Reason string
	Model  string
	// Tier is the risk tier that chose the request's model preferences
	// (rules.Prompt.Tier); the decision carries it.
	Tier string
	// Score is the answer's confidence in Outcome (0 to 1), if it gave one.
	Score *float64
	// CacheKey is the result cache's key of a sampled or cached verdict,
	// and SourceAuditID, on a cached one, the audit_id of the sampled
	// decision it reuses; the decision's audit record carries both.
	CacheKey, SourceAuditID string
	// Shared marks a cached verdict that waited for an identical request
	// in flight (one request for concurrent identical misses) rather than
	// finding the answer stored: it costs that request's time, not a
	// lookup's.
	Shared bool
	// Attempts are audit records for each sampling attempt and tool call made
	// on the way to this verdict; the pipeline emits them with the decision.
	Attempts []audit.Record
}

// Decider decides ambiguous items, typically by asking an LLM.
//
// A nil error means the verdict is the decision. An error means the item gets
// its type's fallback outcome; the error's FallbackReason (see
// FallbackReason) goes into the decision and its audit record. When ctx is
// cancelled because the pipeline is shutting down, the item is handed back
// uncommitted rather than decided, so a Decider should return promptly.
type Decider interface {
	Decide(ctx context.Context, item Item) (Verdict, error)
}

// AllLLMRuleID is the rule id of the events Config.AllLLM sends to the
// Decider.
const AllLLMRuleID = "all_llm"

// Fallback reasons: the vocabulary of the decision's reason field, which
// Deciders' errors name through FallbackReason.
const (
	FallbackNoSampler = "no_sampler"
	FallbackTimeout   = "timeout"
	FallbackError     = "error"
	FallbackInvalid   = "invalid_answer"
	// FallbackLeaseExpired: samplers took the item and never answered.
	FallbackLeaseExpired = "lease_expired"
	// FallbackPolicy: the tenant's policy does not allow LLM decisions
	// (audit status denied). The guards' other refusals, rate_limited and
	// budget_exceeded, are audit statuses of the same name.
	FallbackPolicy = "policy"
)

// FallbackReason maps a Decider error to the reason recorded with the
// fallback decision: an error that has a `FallbackReason() string` method
// (anywhere in its chain) names its own reason; deadlines are "timeout";
// everything else is "error".
func FallbackReason(err error) string {
	var r interface{ FallbackReason() string }
	if errors.As(err, &r) {
		return r.FallbackReason()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return FallbackTimeout
	}
	return FallbackError
}

// Decision is the record written to the decisions topic, keyed by the
// event's entity key; see audit.Decision.
type Decision = audit.Decision
