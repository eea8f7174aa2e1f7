package llm

import (
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/triage-dev/triage/internal/pii"
)

// The offline scorer's features, as the package documentation lists them.
// Each feature calls add with its name (for the reason) and weight (for the
// score). The patterns read both raw text and the prompts triage renders
// (rules/default.yaml): masked personal data ("[EMAIL]") and fields written
// as "Card country: NG", "amount=7000" or JSON "amount": 7000.

// pattern is one textual signal.
type pattern struct {
	name   string
	weight float64
	re     *regexp.Regexp
}

// piiKinds are the personal data the scorer finds with triage's one set of
// patterns (internal/pii, which the rules' pii mask applies too), raw or as
// the placeholders the mask leaves, with each kind's feature name and
// weight, in the order the reason lists them.
var piiKinds = []struct {
	kind   pii.Kind
	name   string
	weight float64
}{
	{pii.Email, "email", 0.7},
	{pii.IBAN, "iban", 0.7},
	{pii.Card, "card number", 0.7},
	{pii.Phone, "phone", 0.6},
}

// identityWords are words that come with personal data the patterns cannot
// see.
var identityWords = pattern{"identity words", 0.35,
	regexp.MustCompile(`(?i)\b(passport|date of birth|social security|national id|driver'?s licen[cs]e|tax id)\b`)}

// piiFeatures finds personal data. A later pattern does not see what an
// earlier one matched: the digits of an IBAN are not also a phone number.
func piiFeatures(text string, add func(string, float64)) {
	found := pii.Kinds(text)
	for _, k := range piiKinds {
		if slices.Contains(found, k.kind) {
			add(k.name, k.weight)
		}
	}
	if identityWords.re.MatchString(text) {
		add(identityWords.name, identityWords.weight)
	}
}

var (
	riskWords = []pattern{
		{"sanctioned", 0.5, regexp.MustCompile(`(?i)\bsanction`)},
		{"high-risk", 0.3, regexp.MustCompile(`(?i)\bhigh[- ]risk\b`)},
		{"mismatch", 0.25, regexp.MustCompile(`(?i)\bmismatch|\bdiffer(ent|s) from\b`)},
		{"velocity", 0.2, regexp.MustCompile(`(?i)\bvelocity\b|\bmany transactions\b`)},
	}
	// The amount's name is followed directly by its value, so that
	// "Average amount over 30 days: 150" is not an amount.
	amountRe      = field(`amount|transaction`, "")
	avgAmountRe   = field(`average amount|avg_amount\w*`, gap)
	txnCountRe    = field(`transactions in the last 24 hours|txn_count\w*`, gap)
	chargebacksRe = field(`chargebacks?\w*`, gap)
	accountAgeRe  = field(`account[ _]age\w*`, gap)
	// "Card country: NG. IP country: GB.", "country=NG ip_country=GB".
	countryRe = regexp.MustCompile(`(?i)\b(ip[ _])?(?:card[ _])?country\b["']?\s*[:=]\s*["']?([A-Za-z]{2})\b`)
)

// gap lets a few words stand between a field's name and its colon:
// "Chargebacks in the last 90 days: 0".
const gap = `[^:=\n]{0,40}?`

// field matches "name: 7000.25", "name=7000" and JSON "name": 7000.
func field(names, gap string) *regexp.Regexp {
	return regexp.MustCompile(`(?i)\b(?:` + names + `)\b` + gap + `["']?\s*[:=]\s*["']?([0-9][0-9,_]*(?:\.[0-9]+)?)`)
}

// number is the first value of f in text, or the largest with largest.
func number(f *regexp.Regexp, text string, largest bool) (float64, bool) {
	var top float64
	found := false
	for _, m := range f.FindAllStringSubmatch(text, -1) {
		v, err := strconv.ParseFloat(strings.NewReplacer(",", "", "_", "").Replace(m[1]), 64)
		if err != nil {
			continue
		}
		if !largest {
			return v, true
		}
		if !found || v > top {
			top, found = v, true
		}
	}
	return top, found
}

// riskFeatures reads a payment's risk signals, after the transaction rules.
func riskFeatures(text string, add func(string, float64)) {
	for _, p := range riskWords {
		if p.re.MatchString(text) {
			add(p.name, p.weight)
		}
	}
	amount, _ := number(amountRe, text, true)
	switch {
	case amount >= 50000:
		add("amount "+fmtNumber(amount), 0.35)
	case amount >= 5000:
		add("amount "+fmtNumber(amount), 0.2)
	case amount >= 1000:
		add("amount "+fmtNumber(amount), 0.1)
	}
	var card, ip string
	for _, m := range countryRe.FindAllStringSubmatch(text, -1) {
		if m[1] != "" && ip == "" {
			ip = strings.ToUpper(m[2])
		} else if m[1] == "" && card == "" {
			card = strings.ToUpper(m[2])
		}
	}
	if card != "" && ip != "" && card != ip {
		add("country "+card+" vs IP "+ip, 0.25)
	}
	if avg, ok := number(avgAmountRe, text, false); ok && avg > 0 && amount >= 3*avg {
		add("amount over 3x the average", 0.2)
	}
	if n, ok := number(txnCountRe, text, false); ok && n > 40 {
		add(fmtNumber(n)+" transactions in 24h", 0.2)
	}
	if n, ok := number(chargebacksRe, text, false); ok && n >= 1 {
		add(fmtNumber(n)+" chargebacks", 0.2)
	}
	if days, ok := number(accountAgeRe, text, false); ok && days < 30 {
		add("account "+fmtNumber(days)+" days old", 0.15)
	}
}

func fmtNumber(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

var escalateRe = regexp.MustCompile(`\b(urgent|urgently|asap|outage|down|blocked|breach|hacked|` +
	`data loss|lost data|losing money|legal|lawyer|lawsuit|refund|cancel|critical|complaint)\b`)

// escalateFeatures finds escalate-like words; each distinct word counts
// once, in alphabetical order.
func escalateFeatures(text string, add func(string, float64)) {
	words := escalateRe.FindAllString(strings.ToLower(text), -1)
	slices.Sort(words)
	for _, w := range slices.Compact(words) {
		add(w, 0.4)
	}
}
