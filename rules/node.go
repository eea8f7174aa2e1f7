package rules

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The parser reads the file as a yaml.Node tree rather than decoding into
// structs, so that every problem carries its line and unknown or duplicate
// keys are errors. These helpers read one node each, reporting through the
// parser and returning ok=false on a problem.

// mapping walks a mapping node's pairs, reporting a node that is not a
// mapping, non-scalar, duplicate and (when known is not nil) unknown keys.
// yaml.v3 only rejects duplicate keys when decoding into Go values, and
// this walk keeps line numbers, so it checks them itself.
func (p *parser) mapping(n *yaml.Node, w where, known []string, fn func(key string, k, v *yaml.Node)) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.fail(n, w, "want a mapping, got %s", describe(n))
		return
	}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			p.fail(k, w, "keys must be strings, got %s", describe(k))
			continue
		}
		if line, dup := seen[k.Value]; dup {
			p.fail(k, w, "duplicate key %q (first at line %d)", k.Value, line)
			continue
		}
		seen[k.Value] = k.Line
		if known != nil && !slices.Contains(known, k.Value) {
			p.fail(k, w, "unknown key %q: want one of %s", k.Value, strings.Join(known, ", "))
			continue
		}
		fn(k.Value, k, v)
	}
}

func (p *parser) str(n *yaml.Node, w where, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		p.fail(n, w, "%s: want a string, got %s", what, describe(n))
		return "", false
	}
	return n.Value, true
}

func (p *parser) strs(n *yaml.Node, w where, what string) ([]string, bool) {
	if n.Kind != yaml.SequenceNode {
		p.fail(n, w, "%s: want a list of strings, got %s", what, describe(n))
		return nil, false
	}
	out := make([]string, 0, len(n.Content))
	ok := true
	for _, e := range n.Content {
		s, sok := p.str(deref(e), w, what)
		ok = ok && sok
		out = append(out, s)
	}
	return out, ok
}

func (p *parser) integer(n *yaml.Node, w where, what string) (int, bool) {
	var i int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
		p.fail(n, w, "%s: want an integer, got %s", what, describe(n))
		return 0, false
	}
	return i, true
}

func (p *parser) number(n *yaml.Node, w where, what string) (float64, bool) {
	var x float64
	tag := n.ShortTag()
	if n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") || n.Decode(&x) != nil {
		p.fail(n, w, "%s: want a number, got %s", what, describe(n))
		return 0, false
	}
	return x, true
}

// lookup returns the string value of key in mapping n, or "".
func lookup(n *yaml.Node, key string) string {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := n.Content[i], deref(n.Content[i+1]); k.Value == key && v.Kind == yaml.ScalarNode {
			return v.Value
		}
	}
	return ""
}

// deref follows an alias to its anchor, so anchors work anywhere.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 8; i++ {
		n = n.Alias
	}
	return n
}

// describe names a node's kind for errors: "a list", "!!int 5000".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%s %s", n.ShortTag(), quoteShort(n.Value))
	}
	return "an alias"
}
