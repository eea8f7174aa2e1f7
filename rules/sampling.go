package rules

import (
	"fmt"
	"slices"
	"strings"
	"text/template"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// The defaults and bounds of a type's sampling: block.
const (
	// DefaultSamplingTimeout bounds one sampling attempt when the block does
	// not set timeout.
	DefaultSamplingTimeout = 2 * time.Second
	// DefaultMaxTokens is the answer's token limit when the block does not
	// set max_tokens. The answer is one short JSON object, so 256 leaves
	// room for a long reason without paying for rambling.
	DefaultMaxTokens = 256
	// MaxMaxTokens is the largest max_tokens a file may set.
	MaxMaxTokens = 8192
	// maxTimeout is the largest timeout a file may set: a sampling attempt
	// holds an event's commit back, so minutes are already a mistake.
	maxTimeout = 5 * time.Minute
	// maxStop is how many stop sequences a file may set: OpenAI-compatible
	// APIs accept at most four.
	maxStop = 4
)

// ModelPrefs are the MCP modelPreferences of a sampling request: hints the
// sampler matches against its models' names, in order of preference, and
// priorities from 0 to 1. A nil priority is not sent, leaving the choice to
// the sampler.
type ModelPrefs struct {
	Hints                     []string
	Cost, Speed, Intelligence *float64
}

// Sampling is how an event type asks an LLM to decide an ambiguous event:
// the request's fixed parts, and the template its user message is rendered
// from. A type's section sets it with a sampling: block, which every type
// that can be sampled must have (see Fields); what the block leaves out has
// the defaults below. Build a request with [Type.Prompt].
type Sampling struct {
	// Timeout bounds one sampling attempt (DefaultSamplingTimeout unless
	// the file sets timeout, at most 5m).
	Timeout time.Duration
	// System is the type's system prompt as written, "Decide the <type>
	// event." by default. Prompt appends the answer-format instruction.
	System string
	// Fields is the allow-list: the only fields that reach the template,
	// the LLM, and Prompt.Context, as the block's fields: lists them. There
	// is no default: a type that can be sampled must list at least one, and
	// a type that cannot has none (its Prompt always fails).
	Fields []string
	// Mask maps an allow-listed field to how it is masked before it reaches
	// the template: MaskHash (keyed by the mask key Parse was given),
	// MaskRedact or MaskPII. Fields not in the map are passed as they are.
	Mask map[string]string
	// Model is the type's model preferences.
	Model ModelPrefs
	// RuleModels are the model preferences for events sampled by the named
	// rules (or DefaultRuleID, when the type's default is sample): each
	// entry of the file's rule_models merged over Model, so a priority or
	// the hints the entry leaves out are Model's.
	RuleModels map[string]ModelPrefs
	// Temperature is the sampling temperature, 0 to 2; nil leaves it to the
	// sampler.
	Temperature *float64
	// MaxTokens limits the answer's length (DefaultMaxTokens unless the
	// file sets max_tokens, 1 to MaxMaxTokens).
	MaxTokens int
	// Stop are stop sequences, at most four, each with a non-space
	// character (Anthropic rejects whitespace-only ones).
	Stop []string
	// Tools are the tools (registry names, see [Tools]) the LLM may call
	// while it decides an event of the type, as the block's tools: lists
	// them; none by default.
	Tools []string
	// MaxToolRounds bounds the rounds of tool calls one decision may take
	// (DefaultMaxToolRounds unless the file sets max_tool_rounds, 1 to
	// MaxMaxToolRounds); 0 when the block offers no tools.
	MaxToolRounds int
	// Template is the source of the user message's text/template, as
	// written or, by default, generated: one "name: value" line per
	// allow-listed field, in order, skipping absent optional fields.
	Template string

	tmpl   *template.Template // Template, compiled with missingkey=error
	system string             // System and the answer-format instruction
	key    MaskKey            // keys MaskHash
}

var samplingKeys = []string{"timeout", "system", "fields", "mask", "template", "model", "rule_models",
	"temperature", "max_tokens", "stop", "tools", "max_tool_rounds"}

// sampling parses a type's sampling: block, n, which may be nil. It runs
// after fields and rules, which the allow-list and rule_models refer to.
// There is no default allow-list: a type that can be sampled must have the
// block and the block must list its fields, so that a field reaches an LLM
// only because the file says so.
func (p *parser) sampling(t *Type, nameNode, n *yaml.Node) {
	s := &t.Sampling
	*s = Sampling{Timeout: DefaultSamplingTimeout, MaxTokens: DefaultMaxTokens, key: p.maskKey}
	w := where{typ: t.Name}
	if n == nil {
		if why := t.sampledBy(); why != "" {
			p.fail(nameNode, w, "%s, but the type has no sampling: block: add one whose fields: "+
				"lists what the LLM may see (there is no default allow-list)", why)
		}
		return // never sampled: Prompt refuses, and nothing is compiled
	}
	nodes := map[string]*yaml.Node{}
	p.mapping(n, w, samplingKeys, func(key string, _, v *yaml.Node) {
		nodes[key] = v
		p.samplingKey(t, key, v)
	})
	if deref(n).Kind == yaml.MappingNode && nodes["fields"] == nil {
		p.fail(n, w, "sampling.fields: missing: list the fields the LLM may see (there is no default allow-list)")
	}
	if s.System == "" {
		s.System = "Decide the " + t.Name + " event."
	}
	s.system = strings.TrimRight(s.System, " \t\r\n") + "\n\n" + t.answerFormat()
	if v := nodes["mask"]; v != nil {
		p.mask(t, v)
	}
	if v := nodes["rule_models"]; v != nil {
		p.ruleModels(t, v)
	}
	p.checkTools(t, nodes)
	if len(s.Tools) > 0 && s.MaxToolRounds == 0 {
		s.MaxToolRounds = DefaultMaxToolRounds
	}
	switch {
	case len(s.Fields) == 0:
		return // reported above; a template over nothing proves nothing
	case nodes["template"] == nil:
		s.Template = defaultTemplate(t)
	case s.Template == "":
		return // reported above
	}
	if err := t.compileTemplate(); err != nil {
		at := nodes["template"]
		if at == nil {
			at = n // a generated template only fails through a bad allow-list or mask
		}
		p.fail(at, w, "sampling.template: %w", err)
	}
}

// sampledBy says why events of the type can reach sampling, or "" if none
// can: the type's default samples, a rule's action is sample, or the type
// has a rule at all, since Eval samples the event when a condition fails at
// run time (a missing optional field, the cost limit) and whether one can
// fail is not decidable from the file.
func (t *Type) sampledBy() string {
	if t.Default == ActionSample {
		return fmt.Sprintf("its default is %q", ActionSample)
	}
	for _, r := range t.Rules {
		if r.Action == ActionSample {
			return fmt.Sprintf("rule %q (line %d) has action %q", r.ID, r.Line, ActionSample)
		}
	}
	if len(t.Rules) > 0 {
		r := t.Rules[0]
		return fmt.Sprintf("its events are sampled when a rule's condition fails at run time (rule %q, line %d)", r.ID, r.Line)
	}
	return ""
}

// samplingKey parses one key of a sampling: block; mask, rule_models and
// template wait until the allow-list is known.
func (p *parser) samplingKey(t *Type, key string, v *yaml.Node) {
	s, w := &t.Sampling, where{typ: t.Name}
	switch key {
	case "timeout":
		d, err := time.ParseDuration(v.Value)
		switch {
		case v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" || err != nil:
			p.fail(v, w, "sampling.timeout: want a duration such as 2s or 500ms, got %s", describe(v))
		case d <= 0 || d > maxTimeout:
			p.fail(v, w, "sampling.timeout: want more than 0 and at most %s, got %s", maxTimeout, d)
		default:
			s.Timeout = d
		}
	case "system":
		if str, ok := p.str(v, w, "sampling.system"); ok && strings.TrimSpace(str) == "" {
			p.fail(v, w, "sampling.system: empty")
		} else {
			s.System = str
		}
	case "fields":
		p.allowList(t, v)
	case "template":
		if str, ok := p.str(v, w, "sampling.template"); ok && strings.TrimSpace(str) == "" {
			p.fail(v, w, "sampling.template: empty")
		} else if ok {
			s.Template = str
		}
	case "model":
		s.Model = p.modelPrefs(v, w, "sampling.model", ModelPrefs{})
	case "temperature":
		if x, ok := p.number(v, w, "sampling.temperature"); ok && (x < 0 || x > 2) {
			p.fail(v, w, "sampling.temperature: want 0 to 2, got %g", x)
		} else if ok {
			s.Temperature = &x
		}
	case "max_tokens":
		if i, ok := p.integer(v, w, "sampling.max_tokens"); ok && (i < 1 || i > MaxMaxTokens) {
			p.fail(v, w, "sampling.max_tokens: want 1 to %d, got %d", MaxMaxTokens, i)
		} else if ok {
			s.MaxTokens = i
		}
	case "stop":
		p.stop(s, v, w)
	case "tools":
		p.toolList(t, v)
	case "max_tool_rounds":
		p.maxToolRounds(t, v)
	}
}

// allowList parses sampling.fields: declared or envelope fields, each once.
func (p *parser) allowList(t *Type, n *yaml.Node) {
	w := where{typ: t.Name}
	list, ok := p.strs(n, w, "sampling.fields")
	if !ok {
		return
	}
	if len(list) == 0 {
		p.fail(n, w, "sampling.fields: want at least one field")
	}
	for i, name := range list {
		fw := where{typ: t.Name, field: name}
		switch _, declared := t.fieldIndex[name]; {
		case !declared:
			p.fail(n.Content[i], fw, "sampling.fields: not declared in fields")
		case slices.Contains(list[:i], name):
			p.fail(n.Content[i], fw, "sampling.fields: listed twice")
		default:
			t.Sampling.Fields = append(t.Sampling.Fields, name)
		}
	}
}

// mask parses sampling.mask: allow-listed field -> hash, redact or pii.
func (p *parser) mask(t *Type, n *yaml.Node) {
	s := &t.Sampling
	s.Mask = map[string]string{}
	p.mapping(n, where{typ: t.Name}, nil, func(name string, k, v *yaml.Node) {
		w := where{typ: t.Name, field: name}
		kind, ok := p.str(v, w, "sampling.mask")
		if !ok {
			return
		}
		f, declared := t.Field(name)
		switch {
		case !slices.Contains(s.Fields, name):
			p.fail(k, w, "sampling.mask: field is not in sampling.fields")
		case !slices.Contains(maskKinds, kind):
			p.fail(v, w, "sampling.mask: unknown mask %q: want %s", kind, strings.Join(maskKinds, ", "))
		case kind == MaskPII && declared && f.Type != FieldString && f.Type != FieldList && f.Type != FieldObject:
			p.fail(v, w, "sampling.mask: pii scrubs text, and this is a %s field: use hash or redact", f.Type)
		case kind == MaskHash && p.maskKey.s == nil:
			p.fail(v, w, "sampling.mask: %w", ErrNoMaskKey)
		default:
			s.Mask[name] = kind
		}
	})
}

var modelKeys = []string{"hints", "cost_priority", "speed_priority", "intelligence_priority"}

// modelPrefs parses a model: mapping; what it leaves out is taken from base.
func (p *parser) modelPrefs(n *yaml.Node, w where, what string, base ModelPrefs) ModelPrefs {
	m := base
	p.mapping(n, w, modelKeys, func(key string, _, v *yaml.Node) {
		switch key {
		case "hints":
			hints, ok := p.strs(v, w, what+".hints")
			for i, h := range hints {
				if strings.TrimSpace(h) == "" {
					p.fail(v.Content[i], w, "%s.hints: empty hint", what)
					ok = false
				}
			}
			if ok {
				m.Hints = hints
			}
		default:
			x, ok := p.number(v, w, what+"."+key)
			if ok && (x < 0 || x > 1) {
				p.fail(v, w, "%s.%s: want 0 to 1, got %g", what, key, x)
				return
			} else if !ok {
				return
			}
			switch key {
			case "cost_priority":
				m.Cost = &x
			case "speed_priority":
				m.Speed = &x
			case "intelligence_priority":
				m.Intelligence = &x
			}
		}
	})
	return m
}

// ruleModels parses sampling.rule_models: overrides of model for events
// that a rule with action sample (or a sampling default) sends to sampling.
func (p *parser) ruleModels(t *Type, n *yaml.Node) {
	s := &t.Sampling
	s.RuleModels = map[string]ModelPrefs{}
	p.mapping(n, where{typ: t.Name}, nil, func(id string, k, v *yaml.Node) {
		w := where{typ: t.Name, rule: id}
		i := slices.IndexFunc(t.Rules, func(r Rule) bool { return r.ID == id })
		switch {
		case id == DefaultRuleID && t.Default != ActionSample:
			p.fail(k, w, "sampling.rule_models: the type's default is %q, not %q", t.Default, ActionSample)
			return
		case id != DefaultRuleID && i < 0:
			p.fail(k, w, "sampling.rule_models: no such rule")
			return
		case id != DefaultRuleID && t.Rules[i].Action != ActionSample:
			p.fail(k, w, "sampling.rule_models: the rule's action is %q, not %q", t.Rules[i].Action, ActionSample)
			return
		}
		s.RuleModels[id] = p.modelPrefs(v, w, "sampling.rule_models."+id, s.Model)
	})
}

func (p *parser) stop(s *Sampling, n *yaml.Node, w where) {
	list, ok := p.strs(n, w, "sampling.stop")
	if !ok {
		return
	}
	if len(list) > maxStop {
		p.fail(n, w, "sampling.stop: want at most %d sequences, got %d", maxStop, len(list))
		return
	}
	for i, seq := range list {
		if strings.IndexFunc(seq, func(r rune) bool { return !unicode.IsSpace(r) }) < 0 {
			p.fail(n.Content[i], w, "sampling.stop: %s has no non-space character, which Anthropic rejects", quoteShort(seq))
			ok = false
		}
	}
	if ok {
		s.Stop = list
	}
}

// modelFor returns the model preferences for an event that rule ruleID sent
// to sampling: the rule's override, or the type's.
func (s *Sampling) modelFor(ruleID string) ModelPrefs {
	m, ok := s.RuleModels[ruleID]
	if !ok {
		m = s.Model
	}
	return m.clone()
}

// clone returns a copy that shares nothing with m.
func (m ModelPrefs) clone() ModelPrefs {
	return ModelPrefs{Hints: slices.Clone(m.Hints), Cost: clonePtr(m.Cost), Speed: clonePtr(m.Speed),
		Intelligence: clonePtr(m.Intelligence)}
}

// answerFormat is the instruction, appended to every system prompt, that
// says how to answer: the decision schema of the type.
func (t *Type) answerFormat() string {
	return "Answer with exactly one JSON object and nothing else, no code fence, with these keys:\n" + t.answerSchema()
}

// answerSchema describes the keys without a template to fill in: small
// models copy a placeholder such as "<one sentence>" into their answer.
func (t *Type) answerSchema() string {
	quoted := make([]string, len(t.Outcomes))
	for i, o := range t.Outcomes {
		quoted[i] = fmt.Sprintf("%q", o)
	}
	return `"outcome": one of ` + strings.Join(quoted, ", ") + ";\n" +
		`"reason": why, in one sentence of your own;` + "\n" +
		`"score": your confidence in the outcome, a number from 0 to 1.`
}
