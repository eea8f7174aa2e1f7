// Package pii holds triage's one set of personal-data patterns: e-mail
// addresses, IBANs, phone numbers and payment card numbers. The rules
// package's pii mask replaces them with Mask before a field reaches an LLM,
// and the offline scorer (package llm) detects them with Kinds, so what is
// masked and what is detected cannot drift apart.
//
// It is pattern matching, not understanding: names, postal addresses, dates
// of birth, identity document numbers and free-form descriptions of a
// person pass through untouched, and a number that merely looks like a
// phone or card number is replaced.
package pii

import (
	"regexp"
	"strings"
)

// Kind is one kind of personal data the patterns find.
type Kind string

// The kinds, in the order Mask applies their patterns: an e-mail address may
// hold digits, and an IBAN's digits could pass for a phone or card number; a
// phone number is matched before cards so that "+49 …" is a phone whatever
// its digits' checksum.
const (
	Email Kind = "email"
	IBAN  Kind = "iban"
	Phone Kind = "phone"
	Card  Kind = "card"
)

// kinds lists every Kind in the order Mask applies them.
var kinds = [...]Kind{Email, IBAN, Phone, Card}

// Placeholder is the marker Mask writes in place of data of kind k:
// "[EMAIL]", "[IBAN]", "[PHONE]" or "[CARD]".
func (k Kind) Placeholder() string { return "[" + strings.ToUpper(string(k)) + "]" }

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

// Mask returns text with its e-mail addresses, IBANs, phone numbers in
// international (and common North American) formats and Luhn-valid card
// numbers replaced by their Kind's placeholder. The rest of the text is
// kept, so a reader still sees that personal data was there; placeholders
// already in text are left as they are, so Mask(Mask(s)) == Mask(s). Bytes
// that are not UTF-8 are kept as they are.
func Mask(text string) string {
	return fixedPoint(text, nil)
}

// Kinds reports which kinds of personal data text holds, in the order of
// the Kind constants: data Mask would replace, or a placeholder Mask wrote
// earlier (so a prompt that was masked before it was rendered still counts).
// A pattern does not see what an earlier one matched: the digits of an IBAN
// are not also a phone number.
func Kinds(text string) []Kind {
	var found [len(kinds)]bool
	fixedPoint(text, &found)
	var out []Kind
	for i, k := range kinds {
		if found[i] || strings.Contains(text, k.Placeholder()) {
			out = append(out, k)
		}
	}
	return out
}

// fixedPoint scans s until nothing is left to mask. One scan is enough
// unless a phone pattern match was kept for its digit count and the card
// it ran into was then masked: what is left of it may be a phone number
// ("+1000000000 4111111111111111"), so only then is s scanned again. No
// other pattern can match anew after a later one: placeholders hold no
// digits and no "@". It ends: each further scan replaces at least one digit
// with a placeholder.
func fixedPoint(s string, found *[len(kinds)]bool) string {
	for {
		next, again := scan(s, found)
		if !again {
			return next
		}
		s = next
	}
}

// scan applies the patterns in order, each to what the earlier ones left,
// and records in found (if not nil) which of them replaced something.
// again reports whether the result may hold a phone number that only the
// card masking uncovered.
func scan(s string, found *[len(kinds)]bool) (out string, again bool) {
	note := func(i int, before, after string) string {
		if found != nil && after != before {
			found[i] = true
		}
		return after
	}
	if strings.IndexByte(s, '@') >= 0 {
		s = note(0, s, emailRe.ReplaceAllLiteralString(s, Email.Placeholder()))
	}
	if !strings.ContainsAny(s, "0123456789") {
		return s, false
	}
	s = note(1, s, ibanRe.ReplaceAllLiteralString(s, IBAN.Placeholder()))
	phoneKept := false
	s = note(2, s, phoneRe.ReplaceAllStringFunc(s, func(m string) string {
		if phoneDigitsOK(m) {
			return Phone.Placeholder()
		}
		phoneKept = true
		return m
	}))
	carded := note(3, s, maskCards(s))
	return carded, phoneKept && carded != s
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
			b.WriteString(Card.Placeholder())
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
