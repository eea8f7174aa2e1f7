package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/triage-dev/triage/internal/pii"
)

// The masks a sampling: block may apply to an allow-listed field, so that
// what reaches an LLM is no more than the decision needs.
const (
	// MaskHash replaces the value with "h:" and the first 12 hex digits of
	// its SHA-256 (of a string's bytes, of any other value's JSON): a
	// stable pseudonym that lets the LLM, caches and audits see that two
	// events share a value without seeing it. A guessable value (a short
	// id) can be found again by hashing candidates: it is a pseudonym,
	// not anonymisation.
	MaskHash = "hash"
	// MaskRedact replaces the value with "[REDACTED]": the LLM learns only
	// that the field is present.
	MaskRedact = "redact"
	// MaskPII replaces e-mail addresses, IBANs, phone numbers in
	// international (and common North American) formats and Luhn-valid
	// card numbers inside a string, or inside the strings of a list or
	// object, with [EMAIL], [IBAN], [PHONE] and [CARD]: triage's one set of
	// personal-data patterns (internal/pii), which the offline scorer
	// detects with too. The rest of the text is kept, so a classifier still
	// sees that personal data was there. It is pattern matching: names,
	// postal addresses and dates of birth pass through.
	MaskPII = "pii"
)

var maskKinds = []string{MaskHash, MaskRedact, MaskPII}

// MaskValue returns v masked as kind says (MaskHash, MaskRedact or
// MaskPII); an unknown kind redacts, failing closed. It never modifies v
// (lists and objects are copied) and never panics, whatever v holds.
// MaskPII leaves numbers, bools and timestamps as they are: Parse rejects
// pii on such fields.
func MaskValue(kind string, v any) any {
	switch kind {
	case MaskHash:
		return hashValue(v)
	case MaskPII:
		return scrubValue(v)
	}
	return "[REDACTED]"
}

func hashValue(v any) string {
	var data []byte
	switch x := v.(type) {
	case string:
		data = []byte(x)
	default:
		var err error
		if data, err = json.Marshal(x); err != nil {
			data = []byte(fmt.Sprintf("%T", x)) // unencodable; not an event value
		}
	}
	sum := sha256.Sum256(data)
	return "h:" + hex.EncodeToString(sum[:6])
}

// scrubValue applies pii.Mask to v's strings, copying lists and objects.
func scrubValue(v any) any {
	switch x := v.(type) {
	case string:
		return pii.Mask(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = scrubValue(e)
		}
		return out
	case []string:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = pii.Mask(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = scrubValue(e)
		}
		return out
	}
	return v
}
