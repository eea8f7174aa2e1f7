package rules

import (
	"strings"
	"testing"
)

func TestTiersRouteModels(t *testing.T) {
	set := mustParse(t, "default.yaml", Default)
	typ, _ := set.Type("transaction")
	tests := []struct {
		name     string
		over     map[string]any
		rule     string
		tier     string
		wantHint string
	}{
		{"huge amount", map[string]any{"amount": 60000}, "sample_geo_mismatch_large", "high", "claude-opus"},
		{"young account", map[string]any{"amount": 6000, "account_age_days": 3}, "sample_geo_mismatch_large", "high", "claude-opus"},
		{"velocity, small amount", map[string]any{"amount": 400, "txn_count_24h": 50}, "sample_velocity_spike", "low", "claude-haiku"},
		{"large amount, old account", map[string]any{"amount": 7000}, "sample_geo_mismatch_large", "standard", "claude-sonnet"},
		// A rule's override wins over the tier's model; the tier is still named.
		{"rule override", map[string]any{"amount": 400}, "sample_large_high_risk", "low", "claude-opus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := validated(t, set, "transaction", cleanTxn, tt.over)
			if got := typ.TierOf(ev); got != tt.tier {
				t.Errorf("TierOf = %q, want %q", got, tt.tier)
			}
			pr, err := typ.Prompt(ev, tt.rule)
			if err != nil {
				t.Fatal(err)
			}
			if pr.Tier != tt.tier || len(pr.Model.Hints) == 0 || pr.Model.Hints[0] != tt.wantHint {
				t.Errorf("prompt tier %q hints %v, want %q and %s first", pr.Tier, pr.Model.Hints, tt.tier, tt.wantHint)
			}
		})
	}
	// The low tier's model is merged over the type's: what it leaves out
	// (temperature is not a model preference; a priority is) is the type's.
	ev := validated(t, set, "transaction", cleanTxn, map[string]any{"amount": 400})
	pr, _ := typ.Prompt(ev, "sample_velocity_spike")
	if pr.Model.Cost == nil || *pr.Model.Cost != 0.9 || pr.Model.Intelligence == nil || *pr.Model.Intelligence != 0.3 {
		t.Errorf("low tier model %+v", pr.Model)
	}
}

func TestTiersErrors(t *testing.T) {
	base := `types:
  t:
    key: k
    fields: {k: {type: string, required: true}, n: {type: integer, required: true}}
    outcomes: [a, b]
    fallback: b
    default: sample
    sampling: {fields: [n]}
    tiers:
`
	tests := []struct{ tiers, want string }{
		{"      - {name: hi, when: event.nope > 1}", `tiers: tier "hi": compile`},
		{"      - {name: hi, when: event.n}", "want bool"},
		{"      - {name: standard, when: event.n > 1}", `name "standard" is the tier of events no tier matches`},
		{"      - {name: hi, when: event.n > 1}\n      - {name: hi, when: event.n > 2}", `duplicate tier "hi" (first at line 10)`},
		{"      - {when: event.n > 1}", "a tier without a name"},
		{"      - {name: hi}", `tier "hi": want a CEL condition`},
		{"      - {name: hi, when: event.n > 1, color: red}", `unknown key "color"`},
		{"      - {name: hi, when: event.n > 1, model: {hints: [x], cost_priority: 2}}", "tiers.model.cost_priority: want 0 to 1"},
	}
	for _, tt := range tests {
		_, err := Parse("t.yaml", []byte(base+tt.tiers+"\n"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.tiers, err, tt.want)
		}
	}
}
