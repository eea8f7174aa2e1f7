package llm

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"regexp"
	"slices"
	"strconv"
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

func (p *offlineProvider) Complete(ctx context.Context, req Request) (Response, error) {
	if err := p.wait(ctx); err != nil {
		return Response{}, transportError(offlineName, err)
	}
	if _, err := check(offlineName, req); err != nil {
		return Response{}, err
	}
	var v verdict
	if outcomes := outcomesOf(req.Metadata); len(outcomes) == 0 {
		v.Reason = "no decision schema in request"
	} else {
		v = score(userText(req.Messages), outcomes)
	}
	answer, err := json.Marshal(v)
	if err != nil { // a verdict of strings and a float always marshals
		return Response{}, &Error{Provider: offlineName, Err: fmt.Errorf("encode answer: %w", err)}
	}
	in := len(req.System)
	for _, m := range req.Messages {
		in += len(m.Text)
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

// A feature is one transparent signal: its name goes into the reason, its
// weight into the score.
type feature struct {
	name   string
	weight float64
	re     *regexp.Regexp
}

// The patterns match what triage's rules look for (rules/default.yaml) and
// the personal data those rules leave to the LLM.
var (
	piiFeatures = []feature{
		{"email", 0.7, regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`)},
		{"iban", 0.7, regexp.MustCompile(`\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b`)},
		// International (+49 30 1234567, 0044 20 7946 0958) or North
		// American (555-123-4567, (555) 123 4567) numbers.
		{"phone", 0.6, regexp.MustCompile(`(?:\+|\b00)[1-9][0-9]{0,3}(?:[ ./-]?\(?[0-9]{2,4}\)?){2,5}\b|(?:\(\d{3}\)\s?|\b\d{3}[ .-])\d{3}[ .-]\d{4}\b`)},
		{"identity document words", 0.35, regexp.MustCompile(`(?i)\b(passport|date of birth|social security|national id|driver'?s licen[cs]e|tax id)\b`)},
	}
	riskFeatures = []feature{
		{"sanctioned", 0.5, regexp.MustCompile(`(?i)\bsanction`)},
		{"high-risk", 0.3, regexp.MustCompile(`(?i)\bhigh[- ]risk\b`)},
		{"mismatch", 0.25, regexp.MustCompile(`(?i)\bmismatch|\bdiffer(ent|s) from\b`)},
		{"chargeback", 0.2, regexp.MustCompile(`(?i)\bcharge-?backs?\b`)},
		{"velocity", 0.2, regexp.MustCompile(`(?i)\bvelocity\b|\bmany transactions\b`)},
		{"new account", 0.15, regexp.MustCompile(`(?i)\bnew account\b|\byounger than\b`)},
	}
	escalateRe = regexp.MustCompile(
		`\b(urgent|urgently|asap|outage|down|breach|hacked|legal|lawyer|lawsuit|refund|cancel|critical|data loss|complaint)\b`)

	// "amount: 7000.25", "amount=7000", `"amount": 7000`.
	amountRe    = regexp.MustCompile(`(?i)\bamount\b["']?\s*[:=]\s*["']?([0-9][0-9,_]*(?:\.[0-9]+)?)`)
	countryRe   = regexp.MustCompile(`(?i)\bcountry\b["']?\s*[:=]\s*["']?([A-Z]{2})\b`)
	ipCountryRe = regexp.MustCompile(`(?i)\bip_country\b["']?\s*[:=]\s*["']?([A-Z]{2})\b`)
)

// escalateWeight is each escalate-like word's weight.
const escalateWeight = 0.4

// Severity tiers of outcomes and scores.
const (
	tierLow = iota
	tierMid
	tierHigh
)

// score decides among outcomes for text, as the package documentation
// describes.
func score(text string, outcomes []string) verdict {
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
		// A later pattern does not see what an earlier one matched: the
		// digits of an IBAN are not also a phone number.
		rest := text
		for _, f := range piiFeatures {
			if f.re.MatchString(rest) {
				add(f.name, f.weight)
				rest = f.re.ReplaceAllLiteralString(rest, " ")
			}
		}
	case transactionLike(outcomes):
		for _, f := range riskFeatures {
			if f.re.MatchString(text) {
				add(f.name, f.weight)
			}
		}
		if a := maxAmount(text); a >= 1000 {
			add("amount "+strconv.FormatFloat(a, 'f', -1, 64), amountWeight(a))
		}
		c, ip := countryRe.FindStringSubmatch(text), ipCountryRe.FindStringSubmatch(text)
		if c != nil && ip != nil && !strings.EqualFold(c[1], ip[1]) {
			add("country "+strings.ToUpper(c[1])+" vs ip "+strings.ToUpper(ip[1]), 0.25)
		}
	default:
		// Each distinct word counts once.
		words := escalateRe.FindAllString(strings.ToLower(text), -1)
		slices.Sort(words)
		for _, w := range slices.Compact(words) {
			add(w, escalateWeight)
		}
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
	return verdict{Outcome: pick(outcomes, want, sum), Reason: reason, Score: &s}
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

// maxAmount is the largest "amount" value in text, 0 when none.
func maxAmount(text string) float64 {
	var top float64
	for _, m := range amountRe.FindAllStringSubmatch(text, -1) {
		v, err := strconv.ParseFloat(strings.NewReplacer(",", "", "_", "").Replace(m[1]), 64)
		if err == nil && v > top {
			top = v
		}
	}
	return top
}

func amountWeight(a float64) float64 {
	switch {
	case a >= 50000:
		return 0.35
	case a >= 5000:
		return 0.2
	}
	return 0.1
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
