package audit

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ErrMissingParam is returned by Render when a parameter without a default
// has no value.
var ErrMissingParam = errors.New("missing parameter")

// Render returns the query's SQL with each placeholder replaced by the
// literal of its value (from values, else its default). A value that is not
// of the parameter's type is an error; strings are quoted and escaped, so a
// value can never leave its literal.
func (q Query) Render(values map[string]string) (string, error) {
	lits := map[string]string{}
	for _, p := range q.Params {
		v, ok := values[p.Name]
		if !ok {
			if !p.HasDefault {
				return "", fmt.Errorf("audit: query %s: %w %s (%s)", q.Name, ErrMissingParam, p.Name, p.Type)
			}
			v = p.Default
		}
		lit, err := literal(p.Type, v)
		if err != nil {
			return "", fmt.Errorf("audit: query %s: parameter %s: %w", q.Name, p.Name, err)
		}
		lits[p.Name] = lit
	}
	return placeholder.ReplaceAllStringFunc(q.SQL, func(m string) string {
		return lits[placeholder.FindStringSubmatch(m)[1]]
	}), nil
}

// literals render a parameter value of a type as a ClickHouse literal.
var literals = map[string]func(string) (string, error){
	"String":   func(v string) (string, error) { return "'" + escapeString(v, '\'') + "'", nil },
	"UInt8":    uintLiteral(8),
	"UInt16":   uintLiteral(16),
	"UInt32":   uintLiteral(32),
	"UInt64":   uintLiteral(64),
	"Int32":    intLiteral(32),
	"Int64":    intLiteral(64),
	"Float64":  floatLiteral,
	"DateTime": dateTimeLiteral,
}

func literal(typ, v string) (string, error) {
	f, ok := literals[typ]
	if !ok {
		return "", fmt.Errorf("unsupported type %s", typ)
	}
	return f(v)
}

func uintLiteral(bits int) func(string) (string, error) {
	return func(v string) (string, error) {
		n, err := strconv.ParseUint(v, 10, bits)
		if err != nil {
			return "", fmt.Errorf("%q is not a UInt%d", v, bits)
		}
		return strconv.FormatUint(n, 10), nil
	}
}

func intLiteral(bits int) func(string) (string, error) {
	return func(v string) (string, error) {
		n, err := strconv.ParseInt(v, 10, bits)
		if err != nil {
			return "", fmt.Errorf("%q is not an Int%d", v, bits)
		}
		// Parenthesised: a negative literal after an operator stays one.
		return "(" + strconv.FormatInt(n, 10) + ")", nil
	}
}

func floatLiteral(v string) (string, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return "", fmt.Errorf("%q is not a finite Float64", v)
	}
	return "(" + strconv.FormatFloat(f, 'g', -1, 64) + ")", nil
}

// dateTimeLiteral takes RFC 3339 or Unix seconds.
func dateTimeLiteral(v string) (string, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		v = strconv.FormatInt(t.Unix(), 10)
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return "", fmt.Errorf("%q is not an RFC 3339 time or Unix seconds", v)
	}
	return "toDateTime(" + strconv.FormatUint(n, 10) + ")", nil
}

// escapeString escapes s for a ClickHouse literal delimited by quote:
// backslashes, the quote itself, and control characters, so that nothing in
// s can end the literal.
func escapeString(s string, quote byte) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' || c == quote:
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\x%02X`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// describe lists the parameter values a run with values uses.
func (q Query) describe(values map[string]string) string {
	var b strings.Builder
	for _, p := range q.Params {
		v, ok := values[p.Name]
		if !ok && !p.HasDefault {
			continue
		}
		if !ok {
			v = p.Default
		}
		if b.Len() == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%s", p.Name, v)
	}
	return b.String()
}
