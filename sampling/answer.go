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

// ParseAnswer reads the model's answer: of the complete top-level JSON
// objects in text (models wrap answers in prose or code fences), the last
// one that is a valid answer, so that a verdict the model quotes from the
// document before its own does not win, nor an object nested in its
// answer. The error, when none is valid, says what is wrong with the last
// object in words fit for a corrective follow-up.
func ParseAnswer(text string, outcomes []string) (Answer, error) {
	var (
		found   bool
		answer  Answer
		lastErr error
	)
	for i := 0; i < len(text); i++ {
		if text[i] != '{' {
			continue
		}
		dec := json.NewDecoder(strings.NewReader(text[i:]))
		var a Answer
		if err := dec.Decode(&a); err != nil {
			if !found {
				lastErr = fmt.Errorf("the answer's JSON object does not parse: %v", err)
			}
			continue
		}
		i += int(dec.InputOffset()) - 1 // past the object: nested ones are part of it
		if err := a.validate(outcomes); err != nil {
			lastErr = err
			continue
		}
		found, answer, lastErr = true, a, nil
	}
	switch {
	case found:
		return answer, nil
	case lastErr != nil:
		return Answer{}, lastErr
	}
	return Answer{}, errors.New("the answer contains no JSON object")
}

// validate checks a decoded answer and normalises it.
func (a *Answer) validate(outcomes []string) error {
	a.Outcome = strings.TrimSpace(a.Outcome)
	if !slices.Contains(outcomes, a.Outcome) {
		return fmt.Errorf("outcome %q is not one of %s", a.Outcome, strings.Join(outcomes, ", "))
	}
	if a.Score != nil && (*a.Score < 0 || *a.Score > 1) {
		return fmt.Errorf("score %v is outside 0..1", *a.Score)
	}
	if len(a.Reason) > maxReason {
		// Between characters, and with room for the ellipsis clip adds.
		a.Reason = clip(a.Reason, maxReason-len("…"))
	}
	return nil
}
