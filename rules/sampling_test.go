package rules

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// samplingFile is a valid file with a full sampling: block that the tests
// edit; the block starts on line 15.
const samplingFile = `types:
  t:
    key: id
    fields:
      id: {type: string, required: true}
      n: {type: number}
      note: {type: string}
      secret: {type: string}
    outcomes: [ok, bad]
    fallback: ok
    default: sample
    rules:
      - {id: r1, when: 'has(event.n) && event.n > 5.0', action: sample}
      - {id: r2, when: 'false', action: bad}
    sampling:
      timeout: 1500ms
      system: Decide.
      fields: [id, n, note]
      mask:
        note: pii
      template: "n={{.n}} note={{.note}}"
      model:
        hints: [small]
        cost_priority: 0.5
      rule_models:
        r1: {intelligence_priority: 0.9}
      temperature: 0.5
      max_tokens: 100
      stop: ["END"]
`

func TestParseSampling(t *testing.T) {
	set := mustParse(t, "test.yaml", []byte(samplingFile))
	typ, _ := set.Type("t")
	s := typ.Sampling
	half, nine := 0.5, 0.9
	want := Sampling{
		Timeout:     1500 * time.Millisecond,
		System:      "Decide.",
		Fields:      []string{"id", "n", "note"},
		Mask:        map[string]string{"note": MaskPII},
		Model:       ModelPrefs{Hints: []string{"small"}, Cost: &half},
		RuleModels:  map[string]ModelPrefs{"r1": {Hints: []string{"small"}, Cost: &half, Intelligence: &nine}},
		Temperature: &half,
		MaxTokens:   100,
		Stop:        []string{"END"},
		Template:    "n={{.n}} note={{.note}}",
		key:         testKey,
	}
	if s.tmpl == nil {
		t.Fatal("template not compiled")
	}
	s.tmpl, s.system = nil, ""
	if !reflect.DeepEqual(s, want) {
		t.Errorf("Sampling =\n%+v\nwant\n%+v", s, want)
	}
}

// sampledProbe is probeFile with a sampling default and a sampling: block
// that only allow-lists every field, leaving the rest to the defaults.
var sampledProbe = strings.Replace(probeFile, "default: ok", "default: sample", 1) +
	"    sampling:\n      fields: [id, n, big, x, s, code, kind, flag, at, tags, meta]\n"

func TestParseSamplingDefaults(t *testing.T) {
	set := mustParse(t, "probe.yaml", []byte(sampledProbe))
	typ, _ := set.Type("probe")
	s := typ.Sampling
	if s.Timeout != DefaultSamplingTimeout || s.MaxTokens != DefaultMaxTokens || s.System != "Decide the probe event." ||
		s.Temperature != nil || s.Stop != nil || s.Mask != nil || s.RuleModels != nil ||
		!reflect.DeepEqual(s.Model, ModelPrefs{}) {
		t.Errorf("Sampling = %+v", s)
	}
	want := []string{"id", "n", "big", "x", "s", "code", "kind", "flag", "at", "tags", "meta"}
	if !reflect.DeepEqual(s.Fields, want) {
		t.Errorf("Fields = %v, want %v", s.Fields, want)
	}
	ev := validated(t, set, "probe", map[string]any{"id": "p-1", "n": 0, "x": 0, "flag": false}, nil)
	p, err := typ.Prompt(ev, DefaultRuleID)
	if err != nil {
		t.Fatal(err)
	}
	// The generated template: optional fields the event lacks are left
	// out; zero values are not.
	if want := "id: p-1\nn: 0\nx: 0\nflag: false"; p.User != want {
		t.Errorf("User = %q, want %q", p.User, want)
	}
}

// TestParseSamplingNoBlock checks that a type that is never sampled needs
// no sampling: block, and that without one nothing can be sent.
func TestParseSamplingNoBlock(t *testing.T) {
	set := mustParse(t, "probe.yaml", []byte(probeFile))
	typ, _ := set.Type("probe")
	if typ.Sampling.Fields != nil || typ.Sampling.Template != "" {
		t.Errorf("Sampling = %+v, want no allow-list and no template", typ.Sampling)
	}
	ev := validated(t, set, "probe", map[string]any{"id": "p-1", "s": "abc"}, nil)
	if p, err := typ.Prompt(ev, DefaultRuleID); !errors.Is(err, ErrPrompt) ||
		!strings.Contains(err.Error(), "no sampling: block") || p.User != "" || p.Context != nil {
		t.Errorf("Prompt = %+v, %v; want ErrPrompt and nothing to send", p, err)
	}
}

// TestParseSamplingRequired checks that a type that can be sampled without
// an allow-list fails the file, naming the type and its line.
func TestParseSamplingRequired(t *testing.T) {
	noBlock := samplingFile[:strings.Index(samplingFile, "    sampling:\n")]
	tests := []struct {
		name     string
		file     string
		wantLine int
		want     string
	}{
		{"default samples", noBlock, 2,
			`test.yaml:2: t: its default is "sample", but the type has no sampling: block: ` +
				"add one whose fields: lists what the LLM may see (there is no default allow-list)"},
		{"a rule samples", strings.Replace(noBlock, "default: sample", "default: ok", 1), 2,
			`test.yaml:2: t: rule "r1" (line 13) has action "sample", but the type has no sampling: block`},
		{"a rule can fail", strings.NewReplacer("default: sample", "default: ok", "action: sample", "action: ok").Replace(noBlock), 2,
			`test.yaml:2: t: its events are sampled when a rule's condition fails at run time (rule "r1", line 13), ` +
				"but the type has no sampling: block"},
		{"a block without fields", strings.Replace(samplingFile, "      fields: [id, n, note]\n", "", 1), 16,
			"test.yaml:16: t: sampling.fields: missing: list the fields the LLM may see (there is no default allow-list)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tt.file))
			var pe *ParseError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse = %v, want a *ParseError containing %q", err, tt.want)
			}
			if pe.Line != tt.wantLine || pe.Type != "t" {
				t.Errorf("first ParseError at line %d type %q, want line %d type t", pe.Line, pe.Type, tt.wantLine)
			}
		})
	}
	// Without rules and with a deciding default, nothing is ever sampled.
	file := strings.NewReplacer("default: sample", "default: ok", "    rules:\n", "    rules: []\n",
		"      - {id: r1, when: 'has(event.n) && event.n > 5.0', action: sample}\n", "",
		"      - {id: r2, when: 'false', action: bad}\n", "").Replace(noBlock)
	mustParse(t, "test.yaml", []byte(file))
}

// TestParseSamplingFieldNames checks that the generated default template is
// safe for field names that are not template identifiers.
func TestParseSamplingFieldNames(t *testing.T) {
	file := `types:
  t:
    key: id
    fields:
      id: {type: string, required: true}
      "ip-country": {type: string, required: true}
      "{{.id}}": {type: string}
      "a\"b": {type: integer}
    outcomes: [ok]
    fallback: ok
    default: sample
    sampling:
      fields: [id, ip-country, "{{.id}}", "a\"b"]
`
	set := mustParse(t, "names.yaml", []byte(file))
	typ, _ := set.Type("t")
	ev := validated(t, set, "t", map[string]any{"id": "x", "ip-country": "DE", "{{.id}}": "lit", `a"b`: 3}, nil)
	p, err := typ.Prompt(ev, DefaultRuleID)
	if err != nil {
		t.Fatal(err)
	}
	if want := "id: x\nip-country: DE\n{{.id}}: lit\na\"b: 3"; p.User != want {
		t.Errorf("User = %q, want %q", p.User, want)
	}
}

func TestParseSamplingErrors(t *testing.T) {
	tests := []struct {
		name     string
		old, new string // replaced in samplingFile
		wantLine int
		wantRule string
		wantFld  string
		want     string
	}{
		{"timeout not a duration", "timeout: 1500ms", "timeout: 2", 16, "", "", "sampling.timeout: want a duration such as 2s"},
		{"timeout zero", "timeout: 1500ms", "timeout: 0s", 16, "", "", "sampling.timeout: want more than 0 and at most 5m0s, got 0s"},
		{"timeout too long", "timeout: 1500ms", "timeout: 1h", 16, "", "", "got 1h0m0s"},
		{"empty system", "system: Decide.", `system: " "`, 17, "", "", "sampling.system: empty"},
		{"system not a string", "system: Decide.", "system: [a]", 17, "", "", "sampling.system: want a string, got a list"},
		{"undeclared field", "fields: [id, n, note]", "fields: [id, n, note, amount]", 18, "", "amount",
			`t field "amount": sampling.fields: not declared in fields`},
		{"field twice", "fields: [id, n, note]", "fields: [id, n, note, n]", 18, "", "n", "listed twice"},
		{"no fields", "fields: [id, n, note]", "fields: []", 18, "", "", "sampling.fields: want at least one field"},
		{"mask of a field not allow-listed", "note: pii", "secret: pii", 20, "", "secret",
			"sampling.mask: field is not in sampling.fields"},
		{"unknown mask", "note: pii", "note: scramble", 20, "", "note", `unknown mask "scramble": want hash, redact, pii`},
		{"pii on a number", "note: pii", "n: pii", 20, "", "n", "pii scrubs text, and this is a number field"},
		{"template reads a field not allow-listed", `"n={{.n}} note={{.note}}"`, `"n={{.n}} {{.secret}}"`, 21, "", "",
			`sampling.template: t:1:11: field "secret" is not in sampling.fields`},
		{"not allow-listed in a branch", `"n={{.n}} note={{.note}}"`, `"{{if .n}}{{.secret}}{{end}}"`, 21, "", "",
			`field "secret" is not in sampling.fields`},
		{"not allow-listed through $ in range", `"n={{.n}} note={{.note}}"`, `"{{range .note}}{{$.secret}}{{end}}"`, 21, "", "",
			`field "secret" is not in sampling.fields`},
		{"not allow-listed in a nested pipeline", `"n={{.n}} note={{.note}}"`, `"{{printf \"%s\" (print .secret)}}"`, 21, "", "",
			`field "secret" is not in sampling.fields`},
		{"template syntax", `"n={{.n}} note={{.note}}"`, `"n={{.n"`, 21, "", "", "sampling.template: template: t:1: unclosed action"},
		{"template unknown function", `"n={{.n}} note={{.note}}"`, `"{{upper .note}}"`, 21, "", "", `function "upper" not defined`},
		{"template fails over zero values", `"n={{.n}} note={{.note}}"`, `"{{if gt .n 1}}big{{end}}"`, 21, "", "",
			"dry run over zero values: template: t:1:5: executing \"t\" at <gt .n 1>: error calling gt: incompatible types for comparison"},
		{"template fails with optional fields absent", `"n={{.n}} note={{.note}}"`, `"{{len .note}}"`, 21, "", "",
			"dry run with the optional fields absent"},
		{"template only defines", `"n={{.n}} note={{.note}}"`, `"{{define \"x\"}}{{.n}}{{end}}"`, 21, "", "",
			"sampling.template: the template has no body outside its define blocks"},
		{"empty template", `"n={{.n}} note={{.note}}"`, `""`, 21, "", "", "sampling.template: empty"},
		{"hints not a list", "hints: [small]", "hints: small", 23, "", "", "sampling.model.hints: want a list of strings"},
		{"empty hint", "hints: [small]", `hints: [small, ""]`, 23, "", "", "sampling.model.hints: empty hint"},
		{"priority out of range", "cost_priority: 0.5", "cost_priority: 1.5", 24, "", "", "sampling.model.cost_priority: want 0 to 1, got 1.5"},
		{"unknown model key", "cost_priority: 0.5", "cost: 0.5", 24, "", "", `unknown key "cost"`},
		{"rule_models for no rule", "r1: {intelligence_priority: 0.9}", "r9: {}", 26, "r9", "", "sampling.rule_models: no such rule"},
		{"rule_models for a deciding rule", "r1: {intelligence_priority: 0.9}", "r2: {}", 26, "r2", "",
			`sampling.rule_models: the rule's action is "bad", not "sample"`},
		{"rule_models priority", "r1: {intelligence_priority: 0.9}", "r1: {intelligence_priority: -1}", 26, "r1", "",
			"sampling.rule_models.r1.intelligence_priority: want 0 to 1, got -1"},
		{"temperature too high", "temperature: 0.5", "temperature: 3", 27, "", "", "sampling.temperature: want 0 to 2, got 3"},
		{"max_tokens zero", "max_tokens: 100", "max_tokens: 0", 28, "", "", "sampling.max_tokens: want 1 to 8192, got 0"},
		{"max_tokens too many", "max_tokens: 100", "max_tokens: 9000", 28, "", "", "want 1 to 8192, got 9000"},
		{"whitespace stop", `stop: ["END"]`, `stop: ["END", "\n\n"]`, 29, "", "", `sampling.stop: "\n\n" has no non-space character`},
		{"too many stops", `stop: ["END"]`, `stop: [a, b, c, d, e]`, 29, "", "", "sampling.stop: want at most 4 sequences, got 5"},
		{"unknown sampling key", "max_tokens: 100", "max_token: 100", 28, "", "", `unknown key "max_token"`},
		{"sampling not a mapping", "    sampling:\n", "    sampling: 5\n    x:\n", 15, "", "", "want a mapping, got !!int"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(samplingFile, tt.old) {
				t.Fatalf("samplingFile has no %q", tt.old)
			}
			file := strings.Replace(samplingFile, tt.old, tt.new, 1)
			s, err := Parse("test.yaml", []byte(file))
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
			if pe.File != "test.yaml" || pe.Line != tt.wantLine || pe.Type != "t" || pe.Rule != tt.wantRule || pe.Field != tt.wantFld {
				t.Errorf("first ParseError at %s:%d type %q rule %q field %q, want test.yaml:%d type t rule %q field %q (%v)",
					pe.File, pe.Line, pe.Type, pe.Rule, pe.Field, tt.wantLine, tt.wantRule, tt.wantFld, pe)
			}
		})
	}
}

// TestParseSamplingRuleModelsDefault checks that the default may have a
// model override only when it samples.
func TestParseSamplingRuleModelsDefault(t *testing.T) {
	file := strings.Replace(samplingFile, "r1: {intelligence_priority: 0.9}", "default: {hints: [big]}", 1)
	set := mustParse(t, "test.yaml", []byte(file))
	typ, _ := set.Type("t")
	if got := typ.Sampling.RuleModels[DefaultRuleID].Hints; !reflect.DeepEqual(got, []string{"big"}) {
		t.Errorf("default's hints = %v", got)
	}
	file = strings.Replace(file, "default: sample", "default: ok", 1)
	if _, err := Parse("test.yaml", []byte(file)); err == nil || !strings.Contains(err.Error(),
		`test.yaml:26: t rule "default": sampling.rule_models: the type's default is "ok", not "sample"`) {
		t.Errorf("Parse = %v, want the default's error", err)
	}
}

// TestParseNeedsMaskKey checks that a file using the hash mask fails closed
// without a mask key, naming the type, field and line, and that a file
// without hash needs none.
func TestParseNeedsMaskKey(t *testing.T) {
	_, err := Parse("default.yaml", Default)
	line := 1 + strings.Count(string(Default[:strings.Index(string(Default), "device_id: hash")]), "\n")
	want := fmt.Sprintf(`rules: default.yaml:%d: transaction field "device_id": sampling.mask: `+
		"mask hash needs a mask key (--mask-key-file / TRIAGE_MASK_KEY)", line)
	var pe *ParseError
	if !errors.Is(err, ErrNoMaskKey) || !errors.As(err, &pe) || err.Error() != want {
		t.Fatalf("Parse without a key = %v, want ErrNoMaskKey:\n%s", err, want)
	}
	if pe.Type != "transaction" || pe.Field != "device_id" || pe.Line != line {
		t.Errorf("ParseError = %+v", pe)
	}
	for _, key := range []MaskKey{{}, testKey} {
		if _, err := Parse("test.yaml", []byte(samplingFile), WithMaskKey(key)); err != nil {
			t.Errorf("a file without hash, key %v: %v", key, err)
		}
	}
	if _, err := Parse("default.yaml", Default, WithMaskKey(RandomMaskKey())); err != nil {
		t.Errorf("Parse with a random key: %v", err)
	}
}
