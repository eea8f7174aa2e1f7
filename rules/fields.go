package rules

import (
	"regexp"
	"slices"

	"go.yaml.in/yaml/v3"
)

var fieldKeys = []string{"type", "required", "min", "max", "min_len", "max_len", "pattern", "enum"}

// fields parses a type's fields: section, appending to t.Fields after the
// envelope. Each constraint must suit the field's type, so a misplaced one
// (a pattern on a number) is an error rather than silently ignored.
func (p *parser) fields(t *Type, n *yaml.Node) {
	p.mapping(n, where{typ: t.Name}, nil, func(name string, k, v *yaml.Node) {
		w := where{typ: t.Name, field: name}
		if slices.Contains(envelopeNames, name) {
			p.fail(k, w, "envelope fields are implicit; remove it")
			return
		}
		if name == "" {
			p.fail(k, w, "empty field name")
			return
		}
		f := Field{Name: name, Line: k.Line}
		nodes := map[string]*yaml.Node{}
		p.mapping(v, w, fieldKeys, func(key string, _, v *yaml.Node) {
			nodes[key] = v
			switch key {
			case "type":
				s, _ := p.str(v, w, key)
				f.Type = FieldType(s)
			case "required":
				if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" || v.Decode(&f.Required) != nil {
					p.fail(v, w, "required: want true or false, got %s", describe(v))
				}
			case "min", "max":
				if x, ok := p.number(v, w, key); ok && key == "min" {
					f.Min = &x
				} else if ok {
					f.Max = &x
				}
			case "min_len", "max_len":
				if i, ok := p.integer(v, w, key); ok && i < 0 {
					p.fail(v, w, "%s: want >= 0, got %d", key, i)
				} else if ok && key == "min_len" {
					f.MinLen = i
				} else if ok {
					f.MaxLen = i
				}
			case "pattern":
				f.Pattern, _ = p.str(v, w, key)
				re, err := regexp.Compile(f.Pattern)
				if err != nil {
					p.fail(v, w, "pattern: %w", err)
				}
				f.re = re
			case "enum":
				f.Enum, _ = p.strs(v, w, key)
				if len(f.Enum) == 0 {
					p.fail(v, w, "enum: want at least one value")
				}
			}
		})
		p.fieldConstraints(&f, w, k, nodes)
		t.Fields = append(t.Fields, f)
	})
}

// fieldConstraints checks that the constraints given suit the field's type
// and each other.
func (p *parser) fieldConstraints(f *Field, w where, k *yaml.Node, nodes map[string]*yaml.Node) {
	var allowed []string
	switch f.Type {
	case FieldString:
		allowed = []string{"min_len", "max_len", "pattern", "enum"}
	case FieldNumber, FieldInteger:
		allowed = []string{"min", "max"}
	case FieldList:
		allowed = []string{"min_len", "max_len"}
	case FieldBool, FieldTimestamp, FieldObject:
	case "":
		if nodes["type"] == nil {
			p.fail(k, w, "missing type")
		}
		return
	default:
		p.fail(nodes["type"], w, "unknown type %q: want string, number, integer, bool, timestamp, list or object", f.Type)
		return
	}
	for _, key := range []string{"min", "max", "min_len", "max_len", "pattern", "enum"} {
		if nodes[key] != nil && !slices.Contains(allowed, key) {
			p.fail(nodes[key], w, "%s does not apply to a %s field", key, f.Type)
		}
	}
	if f.Min != nil && f.Max != nil && *f.Min > *f.Max {
		p.fail(nodes["max"], w, "max %g < min %g", *f.Max, *f.Min)
	}
	if f.MaxLen > 0 && f.MinLen > f.MaxLen {
		p.fail(nodes["max_len"], w, "max_len %d < min_len %d", f.MaxLen, f.MinLen)
	}
}
