package llm

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"time"
)

const offlineName = "offline"

// OfflineModel is the offline provider's Response.Model: it is not a
// language model, and every answer says so.
const OfflineModel = "offline-scorer (deterministic, not an LLM)"

// offlineProvider is the deterministic scorer described in the package
// documentation ("The offline scorer").
type offlineProvider struct {
	latency time.Duration
}

func newOffline(o Options) *offlineProvider { return &offlineProvider{latency: o.Latency} }

func (p *offlineProvider) Name() string { return offlineName }

// SupportsTools reports that Request.Tools reach the model (see
// Provider).
func (p *offlineProvider) SupportsTools() bool { return true }

func (p *offlineProvider) Complete(ctx context.Context, req Request) (Response, error) {
	if err := p.wait(ctx); err != nil {
		return Response{}, transportError(offlineName, err)
	}
	if _, err := check(offlineName, req); err != nil {
		return Response{}, err
	}
	in := len(req.System) + toolChars(req.Messages)
	for _, m := range req.Messages {
		in += len(m.Text)
	}
	var v verdict
	if outcomes := outcomesOf(req.Metadata); len(outcomes) == 0 {
		v.Reason = "no decision schema in request"
	} else {
		text := userText(req.Messages)
		if call, ok := offlineToolCall(req, outcomes, text); ok {
			return Response{
				Model:        OfflineModel,
				StopReason:   StopToolUse,
				ToolCalls:    []ToolCall{call},
				InputTokens:  approxTokens(in),
				OutputTokens: approxTokens(callChars(call)),
			}, nil
		}
		v = score(text, outcomes, toolEvidence(req.Messages, outcomes, text))
	}
	answer, err := json.Marshal(v)
	if err != nil { // a verdict of strings and a float always marshals
		return Response{}, &Error{Provider: offlineName, Err: fmt.Errorf("encode answer: %w", err)}
	}
	return Response{
		Text:         string(answer),
		Model:        OfflineModel,
		StopReason:   StopEndTurn,
		InputTokens:  approxTokens(in),
		OutputTokens: approxTokens(len(answer)),
	}, nil
}

// wait simulates the model's latency, returning early when ctx ends.
func (p *offlineProvider) wait(ctx context.Context) error {
	if p.latency <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(p.latency)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// approxTokens is the rule of thumb of four characters a token.
func approxTokens(chars int) int64 { return int64((chars + 3) / 4) }

// verdict is the offline answer. Score is absent only without a schema.
type verdict struct {
	Outcome string   `json:"outcome"`
	Reason  string   `json:"reason"`
	Score   *float64 `json:"score,omitempty"`
}

// outcomesOf reads Metadata["outcomes"]: a []string, or a []any of strings
// as it arrives after a JSON round trip. Other values and empty names are
// ignored.
func outcomesOf(md map[string]any) []string {
	var out []string
	switch v := md["outcomes"].(type) {
	case []string:
		for _, s := range v {
			if s != "" {
				out = append(out, s)
			}
		}
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// userText joins the user messages' text with newlines.
func userText(msgs []Message) string {
	parts := make([]string, 0, len(msgs))
	for _, m := range msgs {
		if m.Role == RoleUser {
			parts = append(parts, m.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// Severity tiers of outcomes and scores.
const (
	tierLow = iota
	tierMid
	tierHigh
)

// score decides among outcomes for text, as the package documentation
// describes, with what tool results added (none without tools).
func score(text string, outcomes []string, ev evidence) verdict {
	text += ev.text
	h := fnv.New64a()
	h.Write([]byte(text))
	h.Write([]byte{0})
	h.Write([]byte(strings.Join(outcomes, "\x00")))
	sum := h.Sum64()

	var fired []string
	miss := 1.0 // the product of (1 - weight): the score is 1 - miss
	add := func(name string, w float64) {
		fired = append(fired, name)
		miss *= 1 - w
	}
	switch {
	case slices.Contains(outcomes, "contains_pii"):
		piiFeatures(text, add)
	case transactionLike(outcomes):
		riskFeatures(text, add)
	default:
		escalateFeatures(text, add)
	}
	for _, f := range ev.features {
		add(f.name, f.weight)
	}

	var s float64
	var reason string
	if len(fired) == 0 {
		// No feature: a stable pseudo-score, 0.00 to 0.49, from the high
		// half of the hash (pick uses the low bits).
		s = float64((sum>>32)%50) / 100
		reason = "no feature fired; stable hash score"
	} else {
		s = min(1-miss, 0.99)
		reason = "features: " + strings.Join(fired, ", ")
	}
	s = math.Round(s*100) / 100
	want := tierLow
	switch {
	case s >= 0.6:
		want = tierHigh
	case s >= 0.3:
		want = tierMid
	}
	return verdict{Outcome: pick(outcomes, want, sum), Reason: reasonWith(reason, ev.notes), Score: &s}
}

// nearest lists the tiers to try for a wanted tier: itself, then the
// nearest, the more severe first on a tie.
var nearest = [...][3]int{
	tierLow:  {tierLow, tierMid, tierHigh},
	tierMid:  {tierMid, tierHigh, tierLow},
	tierHigh: {tierHigh, tierMid, tierLow},
}

// pick returns an outcome of the wanted tier, else of the nearest tier that
// has one, choosing among several by the hash.
func pick(outcomes []string, want int, sum uint64) string {
	for _, t := range nearest[want] {
		var in []string
		for _, o := range outcomes {
			if tierOf(o) == t {
				in = append(in, o)
			}
		}
		if len(in) > 0 {
			return in[sum%uint64(len(in))]
		}
	}
	return "" // unreachable: outcomes is not empty and every outcome has a tier
}

// tierOf ranks an outcome by its name.
func tierOf(outcome string) int {
	n := strings.ToLower(outcome)
	switch {
	case hasPrefix(n, "no_", "not_", "non_"):
		return tierLow
	case containsAny(n, "block", "deny", "decline", "reject", "fraud", "escalat", "contains_", "pii"):
		return tierHigh
	case containsAny(n, "review", "human", "manual", "hold", "flag", "check", "investigat"):
		return tierMid
	}
	return tierLow
}

// transactionLike reports whether a schema decides on payments.
func transactionLike(outcomes []string) bool {
	for _, o := range outcomes {
		if containsAny(strings.ToLower(o), "allow", "approve", "accept", "block", "deny", "decline", "reject") {
			return true
		}
	}
	return false
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func hasPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
