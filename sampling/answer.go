package sampling

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Answer is an LLM answer parsed into a type's decision schema.
type Answer struct {
	Outcome string   `json:"outcome"`
	Reason  string   `json:"reason,omitempty"`
	Score   *float64 `json:"score,omitempty"`
}

// maxReason bounds the reason carried into decisions and audit records.
const maxReason = 500

// ParseAnswer reads the first JSON object in text (models wrap answers in
// prose or code fences) and checks it against the allowed outcomes. The
// error says what is wrong in words fit for a corrective follow-up.
func ParseAnswer(text string, outcomes []string) (Answer, error) {
	start := strings.IndexByte(text, '{')
	if start < 0 {
		return Answer{}, errors.New("the answer contains no JSON object")
	}
	dec := json.NewDecoder(strings.NewReader(text[start:]))
	var a Answer
	if err := dec.Decode(&a); err != nil {
		return Answer{}, fmt.Errorf("the answer's JSON object does not parse: %v", err)
	}
	a.Outcome = strings.TrimSpace(a.Outcome)
	if !slices.Contains(outcomes, a.Outcome) {
		return Answer{}, fmt.Errorf("outcome %q is not one of %s", a.Outcome, strings.Join(outcomes, ", "))
	}
	if a.Score != nil && (*a.Score < 0 || *a.Score > 1) {
		return Answer{}, fmt.Errorf("score %v is outside 0..1", *a.Score)
	}
	if len(a.Reason) > maxReason {
		// Between characters, and with room for the ellipsis clip adds.
		a.Reason = clip(a.Reason, maxReason-len("…"))
	}
	return a, nil
}
