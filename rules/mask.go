package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
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
	// international (and common national) formats and Luhn-valid card
	// numbers inside a string, or inside the strings of a list or object,
	// with [EMAIL], [IBAN], [PHONE] and [CARD]. The rest of the text is
	// kept, so a classifier still sees that personal data was there. It is
	// pattern matching: names and addresses pass through.
	MaskPII = "pii"
)

var maskKinds = []string{MaskHash, MaskRedact, MaskPII}

// The patterns MaskPII replaces, applied in this order: an e-mail address
// may hold digits, and an IBAN's digits could pass for a phone or card
// number; a phone number is matched before cards so that "+49 …" is a phone
// whatever its digits' checksum.
var (
	// emailRe takes letters of any script, so that "jürgen@…" is masked
	// whole rather than from the "r".
	emailRe = regexp.MustCompile(`[\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)*\.\p{L}{2,}`)
	ibanRe  = regexp.MustCompile(`\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b`)
	// phoneRe: +CC or 00CC and up to six groups; (area) local; 3-3-4.
	// phoneDigitsOK then bounds the digit count as E.164 does.
	phoneRe = regexp.MustCompile(`(?:\+|\b00)[1-9][0-9]{0,2}(?:[ .-]?\([0-9]{1,4}\))?(?:[ .-]?[0-9]{1,5}){1,6}\b` +
		`|\([0-9]{2,5}\)[ .-]?[0-9]{3,4}[ .-]?[0-9]{3,4}\b` +
		`|\b[0-9]{3}[.-][0-9]{3}[.-][0-9]{4}\b`)
	// digitRunRe finds candidate card numbers: digit groups joined by
	// single spaces or hyphens.
	digitRunRe = regexp.MustCompile(`[0-9]+(?:[ -][0-9]+)*`)
)

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

// scrubValue applies scrubPII to v's strings, copying lists and objects.
func scrubValue(v any) any {
	switch x := v.(type) {
	case string:
		return scrubPII(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = scrubValue(e)
		}
		return out
	case []string:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = scrubPII(e)
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

// scrubPII returns s with its e-mail addresses, IBANs, phone numbers and
// card numbers replaced, as MaskPII describes. Bytes that are not UTF-8
// are kept as they are.
func scrubPII(s string) string {
	hasAt, hasDigit := strings.IndexByte(s, '@') >= 0, strings.ContainsAny(s, "0123456789")
	if hasAt {
		s = emailRe.ReplaceAllLiteralString(s, "[EMAIL]")
	}
	if !hasDigit {
		return s
	}
	s = ibanRe.ReplaceAllLiteralString(s, "[IBAN]")
	s = phoneRe.ReplaceAllStringFunc(s, func(m string) string {
		if phoneDigitsOK(m) {
			return "[PHONE]"
		}
		return m
	})
	return maskCards(s)
}

// phoneDigitsOK reports whether a phoneRe match has 7 to 15 digits, not
// counting a leading 00 (E.164 numbers have at most 15).
func phoneDigitsOK(m string) bool {
	m = strings.TrimPrefix(m, "00")
	n := 0
	for i := 0; i < len(m); i++ {
		if m[i] >= '0' && m[i] <= '9' {
			n++
		}
	}
	return n >= 7 && n <= 15
}

// maskCards replaces card numbers: 13 to 19 Luhn-valid digits, in groups
// joined by single spaces or hyphens. A run of digits may hold more than
// the card (a CVV or a date after it), so windows of whole groups are
// tried, the longest valid one from each start.
func maskCards(s string) string {
	runs := digitRunRe.FindAllStringIndex(s, -1)
	if runs == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, run := range runs {
		if run[1]-run[0] < 13 {
			continue
		}
		groups := digitGroups(s, run[0], run[1])
		for i := 0; i < len(groups); i++ {
			j := longestCard(s, groups[i:])
			if j < 0 {
				continue
			}
			b.WriteString(s[last:groups[i][0]])
			b.WriteString("[CARD]")
			last = groups[i+j][1]
			i += j
		}
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// digitGroups returns the [start, end) of each digit group in s[from:to].
func digitGroups(s string, from, to int) [][2]int {
	var groups [][2]int
	start := from
	for i := from; i <= to; i++ {
		if i == to || s[i] == ' ' || s[i] == '-' {
			groups = append(groups, [2]int{start, i})
			start = i + 1
		}
	}
	return groups
}

// longestCard returns the largest j such that groups[0..j] hold 13 to 19
// digits that pass the Luhn check, or -1.
func longestCard(s string, groups [][2]int) int {
	var digits []byte
	best := -1
	for j, g := range groups {
		digits = append(digits, s[g[0]:g[1]]...)
		if len(digits) > 19 {
			break
		}
		if len(digits) >= 13 && luhn(digits) {
			best = j
		}
	}
	return best
}

// luhn reports whether ASCII digits pass the Luhn (mod 10) check that every
// payment card number carries.
func luhn(digits []byte) bool {
	sum := 0
	for i := range digits {
		d := int(digits[len(digits)-1-i] - '0')
		if i%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}
