package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
	"unicode"
	"unicode/utf8"
)

// compileTemplate compiles the type's sampling template and proves it at
// load rather than on the first ambiguous event: every field it reads from
// the top-level data must be allow-listed (in any branch), and it must
// render, with missingkey=error, over the zero value of every allow-listed
// field and again with the optional ones absent.
func (t *Type) compileTemplate() error {
	s := &t.Sampling
	tmpl, err := template.New(t.Name).Option("missingkey=error").Parse(s.Template)
	if err != nil {
		return err
	}
	if tmpl.Tree == nil || len(tmpl.Tree.Root.Nodes) == 0 {
		return errors.New("the template has no body outside its define blocks")
	}
	if err := checkTemplateFields(tmpl.Tree, s.Fields); err != nil {
		return err
	}
	s.tmpl = tmpl
	zero := make(map[string]any, len(s.Fields))
	absent := make(map[string]any, len(s.Fields))
	for _, name := range s.Fields {
		f, _ := t.Field(name)
		v := zeroValue(f.Type)
		if kind, ok := s.Mask[name]; ok {
			v = MaskValue(kind, v, s.key)
		}
		zero[name] = display(v)
		absent[name] = zero[name]
		if !f.Required {
			absent[name] = nil
		}
	}
	if _, err := s.render(zero); err != nil {
		s.tmpl = nil
		return fmt.Errorf("dry run over zero values: %w", err)
	}
	if _, err := s.render(absent); err != nil {
		s.tmpl = nil
		return fmt.Errorf("dry run with the optional fields absent: %w", err)
	}
	return nil
}

// defaultTemplate is the template of a type whose sampling: block has none:
// one "name: value" line per allow-listed field, in order, skipping an
// optional field the event lacks. Names are written as quoted constants, so
// any field name is safe in it.
func defaultTemplate(t *Type) string {
	var b strings.Builder
	for _, name := range t.Sampling.Fields {
		q := strconv.Quote(name)
		if f, _ := t.Field(name); f.Required {
			fmt.Fprintf(&b, "{{%[1]s}}: {{index . %[1]s}}\n", q)
		} else {
			fmt.Fprintf(&b, "{{if ne (index . %[1]s) nil}}{{%[1]s}}: {{index . %[1]s}}\n{{end}}", q)
		}
	}
	return b.String()
}

// checkTemplateFields reports the first top-level field the template reads
// that is not allow-listed: `.x` where dot is still the data (outside range
// and with bodies) and `$.x` anywhere. The data holds only allow-listed
// fields, so such a read could never leak a field, but it would fail every
// event that reaches its branch; reporting it at load fails start-up instead.
// Define blocks are not checked: their dot is whatever the caller passes.
func checkTemplateFields(tree *parse.Tree, allowed []string) error {
	c := &fieldCheck{tree: tree, allowed: allowed}
	c.node(tree.Root, true)
	return c.err
}

type fieldCheck struct {
	tree    *parse.Tree
	allowed []string
	err     error
}

// node walks a node; rooted says whether dot is the template's data.
func (c *fieldCheck) node(n parse.Node, rooted bool) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, e := range n.Nodes {
			c.node(e, rooted)
		}
	case *parse.ActionNode:
		c.pipe(n.Pipe, rooted)
	case *parse.IfNode:
		c.branch(&n.BranchNode, rooted, rooted)
	case *parse.RangeNode: // range and with set dot in their body only
		c.branch(&n.BranchNode, rooted, false)
	case *parse.WithNode:
		c.branch(&n.BranchNode, rooted, false)
	case *parse.TemplateNode:
		c.pipe(n.Pipe, rooted)
	}
}

func (c *fieldCheck) branch(b *parse.BranchNode, rooted, bodyRooted bool) {
	c.pipe(b.Pipe, rooted)
	c.node(b.List, bodyRooted)
	c.node(b.ElseList, rooted)
}

func (c *fieldCheck) pipe(p *parse.PipeNode, rooted bool) {
	if p == nil {
		return
	}
	for _, cmd := range p.Cmds {
		for _, arg := range cmd.Args {
			switch a := arg.(type) {
			case *parse.FieldNode:
				if rooted {
					c.field(a, a.Ident[0])
				}
			case *parse.VariableNode:
				if len(a.Ident) > 1 && a.Ident[0] == "$" {
					c.field(a, a.Ident[1])
				}
			case *parse.ChainNode: // (pipeline).x: the base is what reads the data
				if p, ok := a.Node.(*parse.PipeNode); ok {
					c.pipe(p, rooted)
				} else if f, ok := a.Node.(*parse.FieldNode); ok && rooted {
					c.field(f, f.Ident[0])
				}
			case *parse.PipeNode:
				c.pipe(a, rooted)
			}
		}
	}
}

func (c *fieldCheck) field(n parse.Node, name string) {
	if c.err == nil && !slices.Contains(c.allowed, name) {
		loc, _ := c.tree.ErrorContext(n)
		c.err = fmt.Errorf("%s: field %q is not in sampling.fields", loc, name)
	}
}

// zeroValue is the normalised zero value of a field type, for the dry run.
func zeroValue(ft FieldType) any {
	switch ft {
	case FieldNumber:
		return float64(0)
	case FieldInteger:
		return int64(0)
	case FieldBool:
		return false
	case FieldTimestamp:
		return time.Time{}
	case FieldList:
		return []any{}
	case FieldObject:
		return map[string]any{}
	}
	return ""
}

// unfenced returns v with every fence-like run in its strings replaced by
// look-alikes (see unfence): templates fence untrusted text between lines
// of "<<<" and ">>>" (the shipped ones do, and their system prompts say
// what lies between them is data), and a value must not be able to close
// its fence and go on as instructions. Values the template shows go through
// it; the prompt's context, which no model sees, keeps them as they are.
func unfenced(v any) any { return mapStrings(v, unfence) }

// unfence replaces each run of three or more "<" (or ">") in s with as many
// "‹" (or "›"), so that no fence can be forged from inside a value. A run
// is what a model, or a tokenizer that normalises its input, may read as
// one: the brackets may be the full-width and small forms that NFKC turns
// into "<" and ">" (＜＞﹤﹥), and may have spaces, tabs or invisible
// characters between them (zero-width joiners and spaces, word joiners,
// bidi controls, combining marks, variation selectors), which the
// look-alikes do not keep. ">>\u200d>" and "> > >" are runs; "»»»" and
// "≫≫≫" are look-alikes already, as the replacements are, and the system
// prompt says only the exact lines delimit the data. Everything else in s,
// bytes that are not UTF-8 included, is kept.
func unfence(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return fenceSide(r) != 0 }) < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		side := fenceSide(r)
		if side == 0 {
			b.WriteString(s[i : i+n])
			i += n
			continue
		}
		// The run ends after its last bracket: ignorable characters after
		// it are not part of it.
		count, end := 0, i
		for j := i; j < len(s); {
			r, n := utf8.DecodeRuneInString(s[j:])
			if fenceSide(r) == side {
				count++
				j += n
				end = j
			} else if fenceIgnorable(r) {
				j += n
			} else {
				break
			}
		}
		if count < 3 {
			b.WriteString(s[i:end])
		} else if side == '<' {
			b.WriteString(strings.Repeat("‹", count))
		} else {
			b.WriteString(strings.Repeat("›", count))
		}
		i = end
	}
	return b.String()
}

// fenceSide is '<' or '>' for a character NFKC makes "<" or ">", else 0.
// U+FE64, U+FE65, U+FF1C and U+FF1E are the only ones (Unicode 15.0).
func fenceSide(r rune) rune {
	switch r {
	case '<', '﹤', '＜':
		return '<'
	case '>', '﹥', '＞':
		return '>'
	}
	return 0
}

// fenceIgnorable reports a character that may stand between a fence's
// brackets without a reader seeing it as anything: a space or tab, a
// format character (Cf: ZWJ, ZWSP, WORD JOINER, bidi controls, soft
// hyphen), a combining mark, a variation selector, or another default
// ignorable code point.
func fenceIgnorable(r rune) bool {
	return r == '\t' || unicode.In(r, unicode.Zs, unicode.Cf, unicode.Mn, unicode.Me,
		unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point)
}

// display prepares a normalised value for a template: numbers print in
// plain decimal (1000000, not fmt's 1e+06), timestamps in RFC 3339, and
// lists and objects as JSON, while comparisons, range and index still work
// on them as numbers, lists and maps.
func display(v any) any {
	switch x := v.(type) {
	case float64:
		return number(x)
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case []any:
		out := make(list, len(x))
		for i, e := range x {
			out[i] = display(e)
		}
		return out
	case map[string]any:
		out := make(object, len(x))
		for k, e := range x {
			out[k] = display(e)
		}
		return out
	}
	return v
}

type (
	number float64
	list   []any
	object map[string]any
)

func (n number) String() string { return strconv.FormatFloat(float64(n), 'f', -1, 64) }
func (l list) String() string   { return jsonText(l, []any(l)) }
func (o object) String() string { return jsonText(o, map[string]any(o)) }

// jsonText is v as compact JSON without HTML escaping (an LLM should read
// "<", not "\u003c"), or fmt's rendering of plain, v without its String
// method, if v cannot be encoded.
func jsonText(v, plain any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(plain)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
