package loadgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// This file re-states the contract's default policy (rules/default.yaml) and
// event schemas in plain Go, as an oracle for the generator's tests. The
// loadgen package must not import rules, so the oracle is the contract read
// independently; if the shipped policy changes, this file and the generator
// change together.

var (
	emailPattern = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)
	// Deliberately looser than an IBAN: spaces allowed and any length from
	// 11, so "no IBAN" texts are checked against more than a rule would see.
	ibanPattern = regexp.MustCompile(`[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}`)

	knownTemplateIDs = []string{"invoice_v2", "payslip_v1", "contract_nda_v3", "marketing_flyer_v1", "release_notes_v1", "id_scan_v1"}
	piiTemplateIDs   = []string{"payslip_v1", "contract_nda_v3", "id_scan_v1"}
)

// decode parses an event as the consumer does (UseNumber).
func decode(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var ev map[string]any
	if err := d.Decode(&ev); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, fmt.Errorf("trailing data")
	}
	return ev, nil
}

func num(ev map[string]any, k string) float64 {
	n, _ := ev[k].(json.Number)
	f, _ := n.Float64()
	return f
}

func text(ev map[string]any, k string) string { s, _ := ev[k].(string); return s }

// evalDefault returns the action and rule id the default policy gives ev.
func evalDefault(ev map[string]any) (action, rule string) {
	switch text(ev, "type") {
	case TypeTransaction:
		amount, country, ip := num(ev, "amount"), text(ev, "country"), text(ev, "ip_country")
		switch {
		case slices.Contains(sanctionedCountries, country) || slices.Contains(sanctionedCountries, ip):
			return "block", "block_sanctioned"
		case amount >= hugeAmount && num(ev, "account_age_days") < 30:
			return "block", "block_huge_new_account"
		case amount >= largeAmount && slices.Contains(highRiskCountries, country):
			return "sample", "sample_large_high_risk"
		case amount >= largeAmount && ip != country:
			return "sample", "sample_geo_mismatch_large"
		case num(ev, "txn_count_24h") > 40 && amount > 3*num(ev, "avg_amount_30d"):
			return "sample", "sample_velocity_spike"
		case num(ev, "chargebacks_90d") >= 3:
			return "review", "review_chargebacks"
		}
		return "allow", "default"
	case TypeDocument:
		tpl := text(ev, "template_id")
		switch {
		case !slices.Contains(knownTemplateIDs, tpl):
			return "sample", "sample_unknown_template"
		case slices.Contains(piiTemplateIDs, tpl):
			return "contains_pii", "pii_template"
		case emailPattern.MatchString(text(ev, "text")) || ibanPattern.MatchString(text(ev, "text")):
			return "contains_pii", "pii_pattern"
		}
		return "no_pii", "default"
	}
	return "", ""
}

type fieldRule struct {
	kind    string // string, number, integer, timestamp
	pattern string
	enum    []string
	min     float64
	maxLen  int
	opt     bool
}

var schemas = map[string]map[string]fieldRule{
	TypeTransaction: {
		"account_id": {kind: "string"}, "user_id": {kind: "string"},
		"amount": {kind: "number", min: 0}, "currency": {kind: "string", pattern: `^[A-Z]{3}$`},
		"country": {kind: "string", pattern: `^[A-Z]{2}$`}, "ip_country": {kind: "string", pattern: `^[A-Z]{2}$`},
		"merchant": {kind: "string"}, "mcc": {kind: "string", pattern: `^[0-9]{4}$`},
		"channel":   {kind: "string", enum: []string{"card_present", "ecommerce", "atm", "transfer"}},
		"device_id": {kind: "string"}, "txn_count_24h": {kind: "integer"}, "avg_amount_30d": {kind: "number"},
		"account_age_days": {kind: "integer"}, "chargebacks_90d": {kind: "integer"},
	},
	TypeDocument: {
		"doc_id": {kind: "string"}, "owner_id": {kind: "string"}, "mime": {kind: "string"},
		"size_bytes": {kind: "integer"}, "template_id": {kind: "string", opt: true},
		"title": {kind: "string", maxLen: 512}, "text": {kind: "string", maxLen: 16384},
	},
}

// validate checks ev against the contract's envelope and type schema and
// returns the DLQ reason it deserves, or "" for a valid event.
func validate(ev map[string]any) string {
	for _, k := range []string{"event_id", "type", "tenant_id", "occurred_at"} {
		s, ok := ev[k].(string)
		switch {
		case !ok && ev[k] == nil:
			return BadMissingField
		case !ok:
			return BadWrongType
		case s == "" || (k == "event_id" && len(s) > 128):
			return BadInvalidValue
		}
	}
	if _, err := time.Parse(time.RFC3339, text(ev, "occurred_at")); err != nil {
		return BadTimestamp
	}
	schema, ok := schemas[text(ev, "type")]
	if !ok {
		return BadUnknownType
	}
	for name, r := range schema {
		v, present := ev[name]
		if !present {
			if r.opt {
				continue
			}
			return BadMissingField
		}
		switch r.kind {
		case "string":
			s, ok := v.(string)
			if !ok {
				return BadWrongType
			}
			if r.pattern != "" && !regexp.MustCompile(r.pattern).MatchString(s) ||
				r.enum != nil && !slices.Contains(r.enum, s) {
				return BadInvalidValue
			}
			if r.maxLen > 0 && len([]rune(s)) > r.maxLen {
				return BadOutOfRange
			}
		case "number", "integer":
			n, ok := v.(json.Number)
			if !ok {
				return BadWrongType
			}
			if _, err := n.Int64(); r.kind == "integer" && err != nil {
				return BadWrongType
			}
			if f, _ := n.Float64(); f < 0 || f > 1e9 {
				return BadOutOfRange
			}
		}
	}
	return ""
}
