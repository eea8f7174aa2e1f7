package rules

import (
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"go.yaml.in/yaml/v3"
)

// DefaultTier is the tier of a sampled event that no tier's condition
// matches, in a type that has tiers; it uses the type's model.
const DefaultTier = "standard"

// Tier is one entry of a type's tiers: list: a risk tier whose sampled
// events ask for other model preferences than the type's (cheap and fast
// for low risk, capable for high risk). Tiers are tried in file order and
// the first whose condition holds is the event's.
type Tier struct {
	// Name names the tier in requests, decisions and audit records.
	Name string
	// When is the CEL condition, over `event` and `params` as a rule's.
	When string
	// Model is the tier's model preferences, merged over the type's.
	Model ModelPrefs
	// Line is the tier's line in the rules file.
	Line int

	prg cel.Program
}

var tierKeys = []string{"name", "when", "model"}

// tiers parses a type's tiers: list. It runs after sampling, whose model
// the tiers' are merged over.
func (p *parser) tiers(t *Type, n *yaml.Node) {
	w := where{typ: t.Name}
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		p.fail(n, w, "tiers: want a list, got %s", describe(n))
		return
	}
	if t.Sampling.tmpl == nil && len(t.Sampling.Fields) == 0 {
		p.fail(n, w, "tiers: the type is never sampled (it has no sampling: block)")
		return
	}
	seen := map[string]int{}
	for _, tn := range n.Content {
		tier := Tier{Line: tn.Line, Model: t.Sampling.Model}
		var whenNode *yaml.Node
		p.mapping(tn, w, tierKeys, func(key string, _, v *yaml.Node) {
			switch key {
			case "name":
				tier.Name, _ = p.str(v, w, "tiers.name")
			case "when":
				tier.When, whenNode = v.Value, v
			case "model":
				tier.Model = p.modelPrefs(v, w, "tiers.model", t.Sampling.Model)
			}
		})
		switch {
		case tier.Name == "":
			p.fail(tn, w, "tiers: a tier without a name")
		case !namePattern.MatchString(tier.Name):
			p.fail(tn, w, "tiers: name %q: want %s", tier.Name, namePattern)
		case tier.Name == DefaultTier:
			p.fail(tn, w, "tiers: name %q is the tier of events no tier matches", tier.Name)
		}
		if line, dup := seen[tier.Name]; dup && tier.Name != "" {
			p.fail(tn, w, "tiers: duplicate tier %q (first at line %d)", tier.Name, line)
		}
		seen[tier.Name] = tn.Line
		if whenNode == nil || whenNode.Kind != yaml.ScalarNode || strings.TrimSpace(tier.When) == "" {
			p.fail(tn, w, "tiers: tier %q: want a CEL condition in when", tier.Name)
			continue
		}
		// A tier's condition compiles and is checked as a rule's is.
		r := Rule{ID: tier.Name, When: tier.When}
		if err := compile(t, &r); err != nil {
			p.fail(whenNode, w, "tiers: tier %q: %w", tier.Name, err)
			continue
		}
		tier.prg = r.prg
		t.Tiers = append(t.Tiers, tier)
	}
}

// tierOf returns the tier of ev, an event Validate has normalised: the
// first tier whose condition holds, DefaultTier when none does, or "" when
// the type has no tiers. A condition that fails at run time (a missing
// optional field read without has()) does not hold.
func (t *Type) tierOf(ev map[string]any) *Tier {
	if len(t.Tiers) == 0 {
		return nil
	}
	act := &activation{event: types.NewStringInterfaceMap(celAdapter, ev), params: t.params}
	for i := range t.Tiers {
		out, _, err := t.Tiers[i].prg.Eval(act)
		if b, ok := out.(types.Bool); err == nil && ok && bool(b) {
			return &t.Tiers[i]
		}
	}
	return &Tier{Name: DefaultTier, Model: t.Sampling.Model}
}

// TierOf returns the risk tier an event sampled now would be put in (see
// Tier): "" when the type has no tiers.
func (t *Type) TierOf(ev map[string]any) string {
	if tier := t.tierOf(ev); tier != nil {
		return tier.Name
	}
	return ""
}
