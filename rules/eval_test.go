package rules

import (
	"errors"
	"strings"
	"testing"
)

func TestEvalDefaultPolicy(t *testing.T) {
	set := mustParse(t, "default.yaml", Default)
	tests := []struct {
		name       string
		typ        string
		over       map[string]any
		wantRule   string
		wantAction string
	}{
		{"clean transaction", "transaction", nil, DefaultRuleID, "allow"},
		{"sanctioned country", "transaction", map[string]any{"country": "IR"}, "block_sanctioned", "block"},
		{"sanctioned ip country", "transaction", map[string]any{"ip_country": "KP"}, "block_sanctioned", "block"},
		{"huge amount, new account", "transaction",
			map[string]any{"amount": 60000, "account_age_days": 10}, "block_huge_new_account", "block"},
		{"huge amount, old account", "transaction", map[string]any{"amount": 60000}, DefaultRuleID, "allow"},
		{"large amount, high-risk country (boundary)", "transaction",
			map[string]any{"amount": 5000, "country": "RU", "ip_country": "RU"}, "sample_large_high_risk", "sample"},
		{"small amount, high-risk country", "transaction",
			map[string]any{"amount": 4999.99, "country": "RU", "ip_country": "RU"}, DefaultRuleID, "allow"},
		{"large amount, geo mismatch", "transaction",
			map[string]any{"amount": 7000.25, "ip_country": "GB"}, "sample_geo_mismatch_large", "sample"},
		{"small amount, geo mismatch", "transaction", map[string]any{"ip_country": "GB"}, DefaultRuleID, "allow"},
		{"velocity spike", "transaction",
			map[string]any{"txn_count_24h": 41, "amount": 300.01, "avg_amount_30d": 100}, "sample_velocity_spike", "sample"},
		{"velocity at threshold", "transaction",
			map[string]any{"txn_count_24h": 40, "amount": 900, "avg_amount_30d": 100}, DefaultRuleID, "allow"},
		{"velocity, amount exactly 3x", "transaction",
			map[string]any{"txn_count_24h": 90, "amount": 300, "avg_amount_30d": 100}, DefaultRuleID, "allow"},
		{"chargebacks", "transaction", map[string]any{"chargebacks_90d": 3}, "review_chargebacks", "review"},
		// First match wins: every later rule matches these too.
		{"order: sanctioned beats the rest", "transaction", map[string]any{
			"country": "CU", "amount": 90000, "account_age_days": 1, "chargebacks_90d": 9,
		}, "block_sanctioned", "block"},
		{"order: block beats sample", "transaction", map[string]any{
			"country": "NG", "ip_country": "GB", "amount": 90000, "account_age_days": 1,
		}, "block_huge_new_account", "block"},
		{"order: sample beats review", "transaction", map[string]any{
			"amount": 8000, "ip_country": "DE", "chargebacks_90d": 4,
		}, "sample_geo_mismatch_large", "sample"},

		{"known template, clean text", "document", nil, DefaultRuleID, "no_pii"},
		{"no template", "document", map[string]any{"template_id": nil}, "sample_unknown_template", "sample"},
		{"empty template", "document", map[string]any{"template_id": ""}, "sample_unknown_template", "sample"},
		{"unknown template", "document", map[string]any{"template_id": "menu_v9"}, "sample_unknown_template", "sample"},
		{"pii template", "document", map[string]any{"template_id": "payslip_v1"}, "pii_template", "contains_pii"},
		{"email in text", "document",
			map[string]any{"text": "Contact jane.doe+billing@example.co.uk today"}, "pii_pattern", "contains_pii"},
		{"iban in text", "document",
			map[string]any{"text": "Pay to DE89 3704 0044 0532 0130 00 by Friday"}, "pii_pattern", "contains_pii"},
		{"compact iban in text", "document",
			map[string]any{"text": "IBAN: GB29NWBK60161331926819."}, "pii_pattern", "contains_pii"},
		{"no address, just an at sign", "document",
			map[string]any{"text": "Meet @ noon, see example.com"}, DefaultRuleID, "no_pii"},
		// The deterministic patterns decide before any text goes to an LLM.
		{"order: pii pattern beats unknown template", "document",
			map[string]any{"template_id": "x", "text": "a@b.io"}, "pii_pattern", "contains_pii"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := cleanTxn
			if tt.typ == "document" {
				base = cleanDoc
			}
			ev := validated(t, set, tt.typ, base, tt.over)
			got := set.Eval(tt.typ, ev)
			if got.Err != nil {
				t.Fatalf("Eval error: %v", got.Err)
			}
			if got.RuleID != tt.wantRule || got.Action != tt.wantAction || got.Type != tt.typ {
				t.Errorf("Eval = %+v, want rule %s action %s", got, tt.wantRule, tt.wantAction)
			}
			if got.Reason == "" {
				t.Error("empty Reason")
			}
		})
	}
}

// errorsFile has rules that fail at run time, behind one that never matches.
const errorsFile = `
types:
  t:
    key: id
    fields:
      id: {type: string, required: true}
      note: {type: string}
    outcomes: [ok, bad]
    fallback: bad
    default: ok
    params:
      big: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
            20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39]
    rules:
      - id: never
        when: event.id == "never"
        action: bad
      - id: unguarded_optional
        when: event.id == "a" && event.note == "x"
        action: bad
      - id: runaway
        when: >-
          params.big.all(a, params.big.all(b, params.big.all(c, params.big.all(d, a + b + c + d >= 0))))
        action: bad
    sampling:
      fields: [note]
`

func TestEvalRuleErrorSamples(t *testing.T) {
	set := mustParse(t, "errors.yaml", []byte(errorsFile))
	tests := []struct {
		name, id string
		wantRule string
		wantErr  string
	}{
		// note is optional and absent: reading it without has() fails.
		{"missing optional field", "a", "unguarded_optional", "no such key"},
		// 40^4 iterations: the cost limit stops it long before it finishes.
		{"cost limit", "b", "runaway", "cost limit exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := validated(t, set, "t", map[string]any{"id": tt.id}, nil)
			got := set.Eval("t", ev)
			if got.RuleID != tt.wantRule || got.Action != ActionSample || got.Reason != "rule error" {
				t.Errorf("Eval = %+v, want rule %s, sample, rule error", got, tt.wantRule)
			}
			if got.Err == nil || !strings.Contains(got.Err.Error(), tt.wantErr) {
				t.Errorf("Err = %v, want it to contain %q", got.Err, tt.wantErr)
			}
			if !strings.Contains(got.Err.Error(), `t rule "`+tt.wantRule+`"`) {
				t.Errorf("Err = %v, want it to name the rule", got.Err)
			}
		})
	}
}

func TestEvalUnknownType(t *testing.T) {
	set := mustParse(t, "default.yaml", Default)
	got := set.Eval("invoice", map[string]any{})
	if !errors.Is(got.Err, ErrUnknownType) || got.Action != "" || got.Type != "invoice" {
		t.Errorf("Eval = %+v, want ErrUnknownType and no action", got)
	}
}

func TestHits(t *testing.T) {
	set := mustParse(t, "errors.yaml", []byte(errorsFile))
	evs := []map[string]any{
		{"id": "never"}, {"id": "never"}, // match never
		{"id": "a", "note": "x"}, // matches unguarded_optional
		{"id": "a"},              // fails in unguarded_optional
		{"id": "c"},              // fails in runaway
	}
	for _, ev := range evs {
		set.Eval("t", validated(t, set, "t", ev, nil))
	}
	want := []Hit{
		{Type: "t", RuleID: "never", Count: 2},
		{Type: "t", RuleID: "unguarded_optional", Count: 1, Errors: 1},
		{Type: "t", RuleID: "runaway", Errors: 1},
		{Type: "t", RuleID: DefaultRuleID},
	}
	got := set.Hits()
	if len(got) != len(want) {
		t.Fatalf("Hits = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Hits[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestHitsDefaultPolicyOrder(t *testing.T) {
	set := mustParse(t, "default.yaml", Default)
	set.Eval("transaction", validated(t, set, "transaction", cleanTxn, nil))
	var ids []string
	for _, h := range set.Hits() {
		ids = append(ids, h.Type+"/"+h.RuleID)
		if h.RuleID == DefaultRuleID && h.Type == "transaction" && h.Count != 1 {
			t.Errorf("transaction default count = %d, want 1", h.Count)
		}
	}
	want := "document/pii_template document/pii_pattern document/sample_unknown_template document/default " +
		"transaction/block_sanctioned transaction/block_huge_new_account transaction/sample_large_high_risk " +
		"transaction/sample_geo_mismatch_large transaction/sample_velocity_spike transaction/review_chargebacks " +
		"transaction/default"
	if got := strings.Join(ids, " "); got != want {
		t.Errorf("Hits order:\n got %s\nwant %s", got, want)
	}
}

// BenchmarkEval measures the hot path. A clean transaction is the worst
// case for rules (every rule runs, then the default); a document runs two
// regexes over its text.
func BenchmarkEval(b *testing.B) {
	set := mustParse(b, "default.yaml", Default)
	longText := strings.Repeat("Quarterly figures are attached; totals are final. ", 300) // ~15 KiB
	cases := []struct {
		name, typ string
		ev        map[string]any
	}{
		{"transaction/default", "transaction", validated(b, set, "transaction", cleanTxn, nil)},
		{"transaction/first_rule", "transaction", validated(b, set, "transaction", cleanTxn, map[string]any{"country": "IR"})},
		{"document/short_text", "document", validated(b, set, "document", cleanDoc, nil)},
		{"document/15KiB_text", "document", validated(b, set, "document", cleanDoc, map[string]any{"text": longText})},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r := set.Eval(c.typ, c.ev); r.Err != nil {
					b.Fatal(r.Err)
				}
			}
		})
	}
	b.Run("transaction/default/parallel", func(b *testing.B) {
		ev := cases[0].ev
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				set.Eval("transaction", ev)
			}
		})
	})
}
