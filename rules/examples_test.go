package rules

import (
	"os"
	"reflect"
	"testing"
)

// TestExampleTickets checks examples/tickets.yaml: it parses, carries the
// default types unchanged, and its support_ticket type decides as documented.
func TestExampleTickets(t *testing.T) {
	data, err := os.ReadFile("../examples/tickets.yaml")
	if err != nil {
		t.Fatal(err)
	}
	set := mustParse(t, "tickets.yaml", data)
	if got, want := set.Types(), []string{"document", "support_ticket", "transaction"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Types = %v, want %v", got, want)
	}
	def := mustParse(t, "default.yaml", Default)
	for _, name := range def.Types() {
		want, _ := def.Type(name)
		got, _ := set.Type(name)
		if !sameType(got, want) {
			t.Errorf("type %s in examples/tickets.yaml differs from rules/default.yaml; copy it again", name)
		}
	}

	typ, _ := set.Type("support_ticket")
	if typ.Key != "ticket_id" || typ.Fallback != "human" || typ.Default != ActionSample ||
		!reflect.DeepEqual(typ.Outcomes, []string{"escalate", "template", "human"}) {
		t.Errorf("support_ticket = %+v", typ)
	}
	base := map[string]any{
		"ticket_id": "tk-1", "customer_id": "c-1", "tier": "pro", "priority": "normal",
		"subject": "App crashes when exporting", "body": "Since the update, export fails.",
	}
	tests := []struct {
		name       string
		over       map[string]any
		wantRule   string
		wantAction string
	}{
		{"enterprise urgent", map[string]any{"tier": "enterprise", "priority": "urgent"}, "escalate_enterprise_urgent", "escalate"},
		{"enterprise, not urgent", map[string]any{"tier": "enterprise", "priority": "high"}, DefaultRuleID, ActionSample},
		{"password reset", map[string]any{"subject": "Forgot my password"}, "template_password_reset", "template"},
		{"password reset, any case", map[string]any{"subject": "PASSWORD RESET please"}, "template_password_reset", "template"},
		{"invoice copy", map[string]any{"subject": "Need a copy of my invoice for March"}, "template_invoice_copy", "template"},
		{"urgent enterprise password reset escalates first", map[string]any{
			"tier": "enterprise", "priority": "urgent", "subject": "password reset",
		}, "escalate_enterprise_urgent", "escalate"},
		{"anything else", nil, DefaultRuleID, ActionSample},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := validated(t, set, "support_ticket", base, tt.over)
			got := set.Eval("support_ticket", ev)
			if got.Err != nil || got.RuleID != tt.wantRule || got.Action != tt.wantAction {
				t.Errorf("Eval = %+v, want rule %s action %s", got, tt.wantRule, tt.wantAction)
			}
		})
	}
	if err := typ.Validate(event(t, "support_ticket", base, map[string]any{"tier": "gold"})); err == nil {
		t.Error("tier gold validated; want invalid_value")
	}
}

// sameType compares what a type decides and samples with, ignoring line
// numbers and compiled state.
func sameType(a, b *Type) bool {
	if a == nil || b == nil || a.Key != b.Key || a.MaxBytes != b.MaxBytes || a.Fallback != b.Fallback ||
		a.Default != b.Default || !reflect.DeepEqual(a.Outcomes, b.Outcomes) ||
		!reflect.DeepEqual(a.Params, b.Params) || len(a.Fields) != len(b.Fields) || len(a.Rules) != len(b.Rules) {
		return false
	}
	for i := range a.Fields {
		fa, fb := a.Fields[i], b.Fields[i]
		fa.Line, fb.Line, fa.re, fb.re = 0, 0, nil, nil
		if !reflect.DeepEqual(fa, fb) {
			return false
		}
	}
	for i := range a.Rules {
		ra, rb := a.Rules[i], b.Rules[i]
		if ra.ID != rb.ID || ra.When != rb.When || ra.Action != rb.Action || ra.Reason != rb.Reason {
			return false
		}
	}
	sa, sb := a.Sampling, b.Sampling
	sa.tmpl, sb.tmpl = nil, nil
	return reflect.DeepEqual(sa, sb)
}
