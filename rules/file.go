package rules

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxFileBytes bounds what Load reads: a rules file is configuration, and
// anything this large is a mistake.
const maxFileBytes = 16 << 20

// maxErrors bounds how many problems one Parse reports, so a file of the
// wrong kind does not produce pages of output.
const maxErrors = 20

// namePattern is what type names, rule ids and outcomes must look like:
// they become metric labels, decision fields and file names.
var namePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,127}$`)

// ParseError is one problem in a rules file. Parse joins them with
// errors.Join, so errors.As finds the first.
type ParseError struct {
	File  string
	Line  int    // 0 when the problem has no line, such as an empty file
	Type  string // the type section, if any
	Rule  string // the rule id, if any
	Field string // the schema field, if any
	Err   error  // the problem itself
}

// Error reads like
// `rules: default.yaml:42: transaction rule "x": compile: 1:7: undeclared reference to 'y'`.
func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString("rules: ")
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Type != "" {
		b.WriteString(e.Type)
		if e.Rule != "" {
			fmt.Fprintf(&b, " rule %q", e.Rule)
		}
		if e.Field != "" {
			fmt.Fprintf(&b, " field %q", e.Field)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the underlying problem, such as a yaml or regexp error.
func (e *ParseError) Unwrap() error { return e.Err }

// Load reads and parses the rules file at path, with Parse's options;
// errors name the file by path.
func Load(path string, opts ...Option) (*Set, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, opts...)
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("rules: read %s: %w", path, err)
	}
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("rules: %s: larger than %d bytes", path, maxFileBytes)
	}
	return data, nil
}

// Parse parses and compiles a rules file; name is used in errors. The whole
// file is checked and every problem reported (up to a limit), each as a
// *ParseError carrying the line, type, rule id and, for conditions, the CEL
// error. A file with any problem yields no Set. A file that uses the hash
// mask needs WithMaskKey.
func Parse(name string, data []byte, opts ...Option) (*Set, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &ParseError{File: name, Err: err}
	}
	p := &parser{file: name, maskKey: newOptions(opts).maskKey}
	s := p.set(&doc)
	if len(p.errs) > 0 {
		// Problems are found section by section; report them in file order.
		slices.SortStableFunc(p.errs, func(a, b error) int {
			return a.(*ParseError).Line - b.(*ParseError).Line
		})
		if n := len(p.errs); n > maxErrors {
			p.errs = append(p.errs[:maxErrors], &ParseError{File: name, Err: fmt.Errorf("%d more problems", n-maxErrors)})
		}
		return nil, errors.Join(p.errs...)
	}
	s.name = name
	s.sum = sha256.Sum256(data)
	return s, nil
}

// where is the context a problem is reported in.
type where struct{ typ, rule, field string }

type parser struct {
	file    string
	maskKey MaskKey
	errs    []error
}

func (p *parser) fail(n *yaml.Node, w where, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &ParseError{File: p.file, Line: line, Type: w.typ, Rule: w.rule, Field: w.field,
		Err: fmt.Errorf(format, args...)})
}

func (p *parser) set(doc *yaml.Node) *Set {
	s := &Set{types: map[string]*Type{}}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		p.fail(nil, where{}, "empty file: want a mapping with a types key")
		return s
	}
	var typesNode, guardsNode *yaml.Node
	p.mapping(doc.Content[0], where{}, []string{"types", "guards"}, func(key string, _, v *yaml.Node) {
		if key == "guards" {
			guardsNode = v
		} else {
			typesNode = v
		}
	})
	if typesNode == nil {
		if len(p.errs) == 0 {
			p.fail(doc.Content[0], where{}, "missing key \"types\"")
		}
		return s
	}
	p.mapping(typesNode, where{}, nil, func(name string, k, v *yaml.Node) {
		if !namePattern.MatchString(name) {
			p.fail(k, where{}, "type name %q: want %s", name, namePattern)
			return
		}
		s.types[name] = p.typ(name, k, v)
		s.names = append(s.names, name)
	})
	if len(s.names) == 0 && len(p.errs) == 0 {
		p.fail(typesNode, where{}, "no types")
	}
	slices.Sort(s.names)
	s.fieldNames = map[string]string{}
	for _, t := range s.types {
		for _, f := range t.Fields {
			s.fieldNames[f.Name] = f.Name
		}
	}
	if guardsNode != nil {
		p.guards(s, guardsNode)
	}
	for _, t := range s.types {
		t.set = s
	}
	return s
}

var typeKeys = []string{"key", "max_bytes", "fields", "outcomes", "fallback", "default", "max_age", "params", "rules", "sampling", "tiers"}

// typ parses one type section. It keeps going after a problem so that one
// Parse reports as many as it can; the Set is discarded if any were found.
func (p *parser) typ(name string, nameNode, n *yaml.Node) *Type {
	t := &Type{Name: name, MaxBytes: DefaultMaxBytes, Fields: envelope(name), defaults: &counters{}}
	w := where{typ: name}
	nodes := map[string]*yaml.Node{}
	p.mapping(n, w, typeKeys, func(key string, _, v *yaml.Node) {
		nodes[key] = v
		switch key {
		case "key":
			t.Key, _ = p.str(v, w, key)
		case "max_bytes":
			if mb, ok := p.integer(v, w, key); ok && mb <= 0 {
				p.fail(v, w, "max_bytes: want > 0, got %d", mb)
			} else if ok {
				t.MaxBytes = mb
			}
		case "fields":
			p.fields(t, v)
		case "outcomes":
			t.Outcomes = p.outcomes(v, w)
		case "fallback":
			t.Fallback, _ = p.str(v, w, key)
		case "default":
			t.Default, _ = p.str(v, w, key)
		case "max_age":
			if d, ok := p.duration(v, w, key); ok && d <= 0 {
				p.fail(v, w, "max_age: want more than 0, got %s", v.Value)
			} else if ok {
				t.MaxAge = d
			}
		case "params":
			t.Params = p.params(v, w)
		}
	})
	for _, key := range []string{"key", "fields", "outcomes", "fallback", "default"} {
		if nodes[key] == nil {
			p.fail(nameNode, w, "missing key %q", key)
		}
	}
	t.fieldIndex = make(map[string]int, len(t.Fields))
	for i, f := range t.Fields {
		t.fieldIndex[f.Name] = i
	}
	if t.Key != "" {
		if i, ok := t.fieldIndex[t.Key]; !ok {
			p.fail(nodes["key"], w, "key field %q is not declared in fields", t.Key)
		} else if f := &t.Fields[i]; f.Type != FieldString || !f.Required {
			p.fail(nodes["key"], w, "key field %q must be a required string", t.Key)
		} else {
			f.MinLen = max(f.MinLen, 1) // an empty key would put every event on one partition
		}
	}
	if t.Fallback != "" && !slices.Contains(t.Outcomes, t.Fallback) {
		p.fail(nodes["fallback"], w, "fallback %q is not an outcome (%s)", t.Fallback, strings.Join(t.Outcomes, ", "))
	}
	if t.Default != "" && t.Default != ActionSample && !slices.Contains(t.Outcomes, t.Default) {
		p.fail(nodes["default"], w, "default %q is not an outcome (%s) or %q", t.Default, strings.Join(t.Outcomes, ", "), ActionSample)
	}
	if t.Params == nil {
		t.Params = map[string]any{}
	}
	t.params = celAdapter.NativeToValue(t.Params)
	if v := nodes["rules"]; v != nil {
		p.rules(t, v)
	}
	p.sampling(t, nameNode, nodes["sampling"])
	if v := nodes["tiers"]; v != nil {
		p.tiers(t, v)
	}
	return t
}

func (p *parser) outcomes(n *yaml.Node, w where) []string {
	list, ok := p.strs(n, w, "outcomes")
	if !ok {
		return nil
	}
	if len(list) == 0 {
		p.fail(n, w, "outcomes: want at least one")
	}
	for i, o := range list {
		switch {
		case o == ActionSample:
			p.fail(n.Content[i], w, "outcome %q is reserved for the sample action", o)
		case !namePattern.MatchString(o):
			p.fail(n.Content[i], w, "outcome %q: want %s", o, namePattern)
		case slices.Contains(list[:i], o):
			p.fail(n.Content[i], w, "duplicate outcome %q", o)
		}
	}
	return list
}

var ruleKeys = []string{"id", "when", "action", "reason"}

func (p *parser) rules(t *Type, n *yaml.Node) {
	w := where{typ: t.Name}
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		p.fail(n, w, "rules: want a list, got %s", describe(n))
		return
	}
	seen := map[string]int{}
	for _, rn := range n.Content {
		r := Rule{Line: rn.Line, stats: &counters{}}
		// Problems inside the rule name it, so find the id before the walk.
		rw := where{typ: t.Name, rule: lookup(rn, "id")}
		var whenNode, actionNode *yaml.Node
		whenOK := false
		p.mapping(rn, rw, ruleKeys, func(key string, _, v *yaml.Node) {
			switch key {
			case "id":
				r.ID, _ = p.str(v, rw, key)
			case "when":
				// Any scalar is CEL source: `when: true` is a catch-all
				// rule, not a YAML bool.
				r.When, whenOK = v.Value, v.Kind == yaml.ScalarNode && v.ShortTag() != "!!null"
				if !whenOK {
					p.fail(v, rw, "when: want a CEL expression, got %s", describe(v))
				}
				whenNode = v
			case "action":
				r.Action, _ = p.str(v, rw, key)
				actionNode = v
			case "reason":
				r.Reason, _ = p.str(v, rw, key)
			}
		})
		switch {
		case r.ID == "":
			p.fail(rn, rw, "rule without an id")
		case r.ID == DefaultRuleID:
			p.fail(rn, rw, "rule id %q is reserved for the default", r.ID)
		case !namePattern.MatchString(r.ID):
			p.fail(rn, rw, "rule id: want %s", namePattern)
		}
		if line, dup := seen[r.ID]; dup && r.ID != "" {
			p.fail(rn, rw, "duplicate rule id (first at line %d)", line)
		}
		seen[r.ID] = rn.Line
		if actionNode == nil {
			p.fail(rn, rw, "missing action")
		} else if r.Action != "" && r.Action != ActionSample && !slices.Contains(t.Outcomes, r.Action) {
			p.fail(actionNode, rw, "unknown action %q: want an outcome (%s) or %q",
				r.Action, strings.Join(t.Outcomes, ", "), ActionSample)
		}
		if r.Reason == "" {
			r.Reason = r.ID
		}
		switch {
		case whenNode == nil:
			p.fail(rn, rw, "missing when")
		case !whenOK:
		case strings.TrimSpace(r.When) == "":
			p.fail(whenNode, rw, "empty when")
		default:
			if err := compile(t, &r); err != nil {
				p.fail(whenNode, rw, "%w", err)
			}
		}
		t.Rules = append(t.Rules, r)
	}
}
