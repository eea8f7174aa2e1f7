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
		a, n, err := decodeAnswer(text[i:])
		if err != nil {
			if !found {
				lastErr = fmt.Errorf("the answer's JSON object does not parse: %v", err)
			}
			continue
		}
		i += n - 1 // past the object: nested ones are part of it
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

// decodeAnswer decodes the JSON object at the start of text and returns it
// with the number of bytes it spans. A line break or tab written raw inside
// a string, which JSON forbids but models write (grammar-constrained
// decoders too: llama-cpp-python's JSON grammar lets them through), is read
// as its escape.
func decodeAnswer(text string) (Answer, int, error) {
	var a Answer
	dec := json.NewDecoder(strings.NewReader(text))
	err := dec.Decode(&a)
	if err == nil {
		return a, int(dec.InputOffset()), nil
	}
	fixed, n, ok := escapeRawControls(text)
	if !ok {
		return Answer{}, 0, err
	}
	a = Answer{}
	if json.Unmarshal([]byte(fixed), &a) != nil {
		return Answer{}, 0, err
	}
	return a, n, nil
}

// escapeRawControls returns the object at the start of text, up to its
// closing brace, with the control characters inside its strings escaped,
// and the number of bytes of text it spans; ok is false when text holds no
// complete object or no raw control character in a string.
func escapeRawControls(text string) (fixed string, n int, ok bool) {
	var (
		b       strings.Builder
		inStr   bool
		esc     bool
		depth   int
		changed bool
	)
	for i := 0; i < len(text); i++ {
		c := text[i]
		if inStr && c < 0x20 {
			fmt.Fprintf(&b, `\u%04x`, c)
			changed = true
			continue
		}
		b.WriteByte(c)
		switch {
		case esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case !inStr && c == '{':
			depth++
		case !inStr && c == '}':
			depth--
			if depth == 0 {
				return b.String(), i + 1, changed
			}
		}
	}
	return "", 0, false
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
