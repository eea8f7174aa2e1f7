package rules

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// ruleFile is a valid file with one rule whose condition and action the
// tests fill in; the `when` is on line 15. A rule can sample (when its
// condition fails at run time), so the type has a sampling: block.
const ruleFile = `types:
  t:
    key: id
    fields:
      id: {type: string, required: true}
      n: {type: number}
      opt: {type: string}
    outcomes: [ok, bad]
    fallback: ok
    default: ok
    params:
      limit: 5
    rules:
      - id: r1
        when: %s
        action: %s
    sampling:
      fields: [n]
`

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		wantLine int
		wantRule string
		want     string // substring of the whole error
	}{
		{"bad CEL", fmt.Sprintf(ruleFile, "event.n >", "bad"), 15, "r1",
			`rules: test.yaml:15: t rule "r1": compile: 1:10: Syntax error`},
		{"undeclared variable", fmt.Sprintf(ruleFile, "evnt.n > 1", "bad"), 15, "r1", "undeclared reference to 'evnt'"},
		{"condition is dyn", fmt.Sprintf(ruleFile, "event.n", "bad"), 15, "r1", "condition is dyn, want bool"},
		{"condition is an int", fmt.Sprintf(ruleFile, "event.n + 1", "bad"), 15, "r1", "condition is int, want bool"},
		{"condition is a string", fmt.Sprintf(ruleFile, `'"yes"'`, "bad"), 15, "r1", "condition is string, want bool"},
		{"undeclared field", fmt.Sprintf(ruleFile, "event.amount > 1", "bad"), 15, "r1",
			`compile: 1:1: event field "amount" is not declared in fields`},
		{"undefined param", fmt.Sprintf(ruleFile, "event.n > params.limt", "bad"), 15, "r1", "params.limt is not defined"},
		{"bad regex literal", fmt.Sprintf(ruleFile, `event.opt.matches("(")`, "bad"), 15, "r1", "missing closing )"},
		{"unknown action", fmt.Sprintf(ruleFile, "true", "deny"), 16, "r1",
			`unknown action "deny": want an outcome (ok, bad) or "sample"`},
		{"empty when", fmt.Sprintf(ruleFile, `""`, "bad"), 15, "r1", "empty when"},
		{"when not a string", fmt.Sprintf(ruleFile, "[1]", "bad"), 15, "r1", "when: want a CEL expression, got a list"},
		{"duplicate rule id", strings.Replace(fmt.Sprintf(ruleFile, "true", "ok"), "    rules:\n",
			"    rules:\n      - {id: r1, when: 'false', action: bad}\n", 1), 15, "r1", "duplicate rule id (first at line 14)"},
		{"reserved rule id", strings.Replace(fmt.Sprintf(ruleFile, "true", "ok"), "id: r1", "id: default", 1),
			14, "default", "reserved for the default"},
		{"bad fallback", strings.Replace(fmt.Sprintf(ruleFile, "true", "ok"), "fallback: ok", "fallback: maybe", 1),
			9, "", `fallback "maybe" is not an outcome (ok, bad)`},
		{"bad default", strings.Replace(fmt.Sprintf(ruleFile, "true", "ok"), "default: ok", "default: later", 1),
			10, "", `default "later" is not an outcome (ok, bad) or "sample"`},
		{"sample as outcome", strings.Replace(fmt.Sprintf(ruleFile, "true", "ok"), "[ok, bad]", "[ok, bad, sample]", 1),
			8, "", `outcome "sample" is reserved`},
		{"duplicate outcome", strings.Replace(fmt.Sprintf(ruleFile, "true", "ok"), "[ok, bad]", "[ok, bad, ok]", 1),
			8, "", `duplicate outcome "ok"`},
		{"bad pattern", strings.Replace(fmt.Sprintf(ruleFile, "true", "ok"), "opt: {type: string}",
			`opt: {type: string, pattern: "[A-Z"}`, 1), 7, "", `t field "opt": pattern: error parsing regexp`},
		{"bad field type", strings.Replace(fmt.Sprintf(ruleFile, "true", "ok"), "n: {type: number}",
			"n: {type: float}", 1), 6, "", `t field "n": unknown type "float"`},
		{"constraint on wrong type", strings.Replace(fmt.Sprintf(ruleFile, "true", "ok"), "n: {type: number}",
			`n: {type: number, pattern: "^1$"}`, 1), 6, "", "pattern does not apply to a number field"},
		{"min above max", strings.Replace(fmt.Sprintf(ruleFile, "true", "ok"), "n: {type: number}",
			"n: {type: number, min: 5, max: 1}", 1), 6, "", "max 1 < min 5"},
		{"unknown field key", strings.Replace(fmt.Sprintf(ruleFile, "true", "ok"), "n: {type: number}",
			"n: {type: number, requird: true}", 1), 6, "", `unknown key "requird"`},
		{"envelope redeclared", strings.Replace(fmt.Sprintf(ruleFile, "true", "ok"), "      n: {type: number}\n",
			"      n: {type: number}\n      event_id: {type: string}\n", 1), 7, "", "envelope fields are implicit"},
		{"key not declared", strings.Replace(fmt.Sprintf(ruleFile, "true", "ok"), "key: id", "key: account_id", 1),
			3, "", `key field "account_id" is not declared`},
		{"key not a required string", strings.Replace(fmt.Sprintf(ruleFile, "true", "ok"), "key: id", "key: n", 1),
			3, "", `key field "n" must be a required string`},
		{"missing outcomes", strings.Replace(fmt.Sprintf(ruleFile, "true", "ok"), "    outcomes: [ok, bad]\n", "", 1),
			2, "", `missing key "outcomes"`},
		{"unknown type key", strings.Replace(fmt.Sprintf(ruleFile, "true", "ok"), "    params:", "    parms:", 1),
			11, "", `unknown key "parms"`},
		{"duplicate yaml key", strings.Replace(fmt.Sprintf(ruleFile, "true", "ok"), "default: ok", "default: ok\n    default: bad", 1),
			11, "", `duplicate key "default" (first at line 10)`},
		{"max_bytes not positive", strings.Replace(fmt.Sprintf(ruleFile, "true", "ok"), "key: id", "key: id\n    max_bytes: 0", 1),
			4, "", "max_bytes: want > 0"},
		{"yaml syntax", "types:\n  t: [\n", 0, "", "rules: test.yaml: yaml:"},
		{"empty file", "", 0, "", "empty file"},
		{"no types", "types: {}\n", 1, "", "no types"},
		{"not a mapping", "- a\n", 1, "", "want a mapping, got a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse("test.yaml", []byte(tt.file))
			if err == nil {
				t.Fatalf("Parse succeeded (%v types), want error containing %q", s.Types(), tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n  %v\nwant it to contain\n  %s", err, tt.want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError", err)
			}
			if pe.File != "test.yaml" || pe.Line != tt.wantLine || pe.Rule != tt.wantRule {
				t.Errorf("first ParseError at %s:%d rule %q, want test.yaml:%d rule %q (%v)",
					pe.File, pe.Line, pe.Rule, tt.wantLine, tt.wantRule, pe)
			}
		})
	}
}

func TestParseReportsEveryProblemInFileOrder(t *testing.T) {
	file := strings.NewReplacer("fallback: ok", "fallback: nope", "n: {type: number}", "n: {type: num}").
		Replace(fmt.Sprintf(ruleFile, "event.x", "deny"))
	_, err := Parse("test.yaml", []byte(file))
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	var lines []string
	for _, l := range strings.Split(err.Error(), "\n") {
		lines = append(lines, strings.SplitN(l, ": ", 3)[1])
	}
	if got, want := strings.Join(lines, " "), "test.yaml:6 test.yaml:9 test.yaml:15 test.yaml:16"; got != want {
		t.Errorf("problems at %s, want %s:\n%v", got, want, err)
	}
}

func TestParseDefault(t *testing.T) {
	set := mustParse(t, "default.yaml", Default)
	if got := set.Types(); !reflect.DeepEqual(got, []string{"document", "transaction"}) {
		t.Errorf("Types = %v", got)
	}
	txn, _ := set.Type("transaction")
	if txn.Key != "account_id" || txn.MaxBytes != 65536 || txn.Fallback != "review" || txn.Default != "allow" ||
		!reflect.DeepEqual(txn.Outcomes, []string{"allow", "review", "block"}) {
		t.Errorf("transaction = %+v", txn)
	}
	if got := txn.Params["large_amount"]; got != int64(5000) {
		t.Errorf("large_amount = %#v, want int64(5000)", got)
	}
	if got := txn.Params["high_risk_countries"]; !reflect.DeepEqual(got, []string{"NG", "RU", "UA", "VE", "PK", "BY"}) {
		t.Errorf("high_risk_countries = %#v", got)
	}
	if f, ok := txn.Field("amount"); !ok || f.Type != FieldNumber || !f.Required || *f.Min != 0 || *f.Max != 1e9 {
		t.Errorf("amount field = %+v", f)
	}
	if f, ok := txn.Field("occurred_at"); !ok || f.Type != FieldTimestamp {
		t.Errorf("envelope field occurred_at = %+v, %v", f, ok)
	}
	doc, _ := set.Type("document")
	if f, _ := doc.Field("template_id"); f.Required {
		t.Error("template_id is required, want optional")
	}
	if _, ok := set.Type("support_ticket"); ok {
		t.Error("default policy has support_ticket; it belongs in examples/tickets.yaml")
	}
	if v := set.Version(); len(v) != 16 {
		t.Errorf("Version = %q, want 16 hex digits", v)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(good, Default, 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := Load(good, WithMaskKey(testKey))
	if err != nil {
		t.Fatal(err)
	}
	if set.Name() != good {
		t.Errorf("Name = %q, want %q", set.Name(), good)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want ErrNotExist", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(fmt.Sprintf(ruleFile, "event.n >", "ok")), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), bad+":15:") {
		t.Errorf("Load(bad) = %v, want the path and line", err)
	}
}

// featuresFile uses what a policy author may reach for: anchors, nested and
// mixed params, a catch-all `when: true`, and rules without a reason.
const featuresFile = `
types:
  a:
    key: id
    fields:
      id: {type: string, required: true}
      n: {type: integer}
    outcomes: &outs [approve, deny]
    fallback: deny
    default: sample
    params:
      mixed: [1, two, 3.5]
      nested: {a: {b: x}, n: 2}
    rules:
      - id: nested_param
        when: params.nested.a.b == "x" && params.mixed[0] == 1 && has(event.n) && event.n == params.nested.n
        action: approve
      - id: catch_all
        when: true
        action: deny
    sampling:
      fields: [n]
  b:
    key: id
    fields: {id: {type: string, required: true}}
    outcomes: *outs
    fallback: deny
    default: approve
`

func TestParseFeatures(t *testing.T) {
	set := mustParse(t, "features.yaml", []byte(featuresFile))
	tests := []struct {
		typ        string
		ev         map[string]any
		wantRule   string
		wantAction string
		wantReason string
	}{
		{"a", map[string]any{"id": "1", "n": 2}, "nested_param", "approve", "nested_param"},
		{"a", map[string]any{"id": "1", "n": 3}, "catch_all", "deny", "catch_all"},
		{"a", map[string]any{"id": "1"}, "catch_all", "deny", "catch_all"},
		{"b", map[string]any{"id": "1"}, DefaultRuleID, "approve", "no rule matched"},
	}
	for _, tt := range tests {
		got := set.Eval(tt.typ, validated(t, set, tt.typ, tt.ev, nil))
		if got.Err != nil || got.RuleID != tt.wantRule || got.Action != tt.wantAction || got.Reason != tt.wantReason {
			t.Errorf("Eval(%s, %v) = %+v, want %s %s %q", tt.typ, tt.ev, got, tt.wantRule, tt.wantAction, tt.wantReason)
		}
	}
	b, _ := set.Type("b")
	if !reflect.DeepEqual(b.Outcomes, []string{"approve", "deny"}) {
		t.Errorf("outcomes through an alias = %v", b.Outcomes)
	}
}

func TestParseErrorsInParams(t *testing.T) {
	tests := []struct{ name, params, want string }{
		{"non-string keys", "      m: {1: a}", "params.m: unsupported value"},
		{"integer overflow", "      m: [18446744073709551615]", "params.m: 18446744073709551615 overflows int64"},
		{"not a mapping", "      - a", "want a mapping, got a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := strings.Replace(fmt.Sprintf(ruleFile, "true", "ok"), "      limit: 5", tt.params, 1)
			file = strings.Replace(file, "event.n > params.limit", "true", 1)
			if _, err := Parse("test.yaml", []byte(file)); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse = %v, want error containing %q", err, tt.want)
			}
		})
	}
}
