package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// FieldType is the type of a schema field, as written in the rules file.
type FieldType string

// The field types. Validate normalises each to the Go type in parentheses,
// which is also what CEL conditions see.
const (
	FieldString    FieldType = "string"    // string
	FieldNumber    FieldType = "number"    // float64
	FieldInteger   FieldType = "integer"   // int64; a fractional number is wrong_type
	FieldBool      FieldType = "bool"      // bool
	FieldTimestamp FieldType = "timestamp" // time.Time, from an RFC 3339 string
	FieldList      FieldType = "list"      // []any
	FieldObject    FieldType = "object"    // map[string]any
)

// Field is one field of a type's schema.
type Field struct {
	// Name is the JSON member name.
	Name string
	// Type is the value's type.
	Type FieldType
	// Required fields must be present and not null; an absent or null
	// optional field is removed from the event, so `has(event.x)` is the
	// test for it.
	Required bool
	// Min and Max bound a number or integer, inclusive; nil means unbounded.
	// Integers are compared as float64, exact up to 2^53.
	Min, Max *float64
	// MinLen and MaxLen bound a string's length in characters (runes) or a
	// list's length in items; 0 means unbounded. An empty string that
	// MinLen forbids is invalid_value, any other length is out_of_range.
	MinLen, MaxLen int
	// Pattern is an RE2 expression a string must match (unanchored unless
	// it anchors itself with ^ and $).
	Pattern string
	// Enum lists the values a string may take; empty means any.
	Enum []string
	// Line is the field's line in the rules file (0 for envelope fields).
	Line int

	re *regexp.Regexp
}

// Reason is the kind of a FieldError. Its values are the DLQ reasons
// (the triage.dlq.reason header), so they are stable strings.
type Reason string

// The reasons an event fails Validate.
const (
	ReasonMissing      Reason = "missing_field" // a required field is absent or null
	ReasonWrongType    Reason = "wrong_type"    // the value's JSON type does not match
	ReasonOutOfRange   Reason = "out_of_range"  // a number or length is outside its bounds
	ReasonInvalid      Reason = "invalid_value" // not in the enum, no pattern match, or empty
	ReasonBadTimestamp Reason = "bad_timestamp" // a timestamp string is not RFC 3339
)

// FieldError says why an event failed Validate. The event cannot be decided
// and belongs in the DLQ with Reason as the reason and the error's text as
// the detail; retrying will not help.
type FieldError struct {
	// Field is the field's name; for a value nested in an undeclared field
	// it is a path such as "meta.items[2]".
	Field  string
	Reason Reason
	// Detail says what was wrong, without echoing long values.
	Detail string
}

// Error reads like "amount: out_of_range: -5 < min 0".
func (e *FieldError) Error() string {
	if e.Detail == "" {
		return e.Field + ": " + string(e.Reason)
	}
	return e.Field + ": " + string(e.Reason) + ": " + e.Detail
}

// envelopeNames are the fields every event carries, whatever its type.
var envelopeNames = []string{"event_id", "type", "tenant_id", "occurred_at"}

// envelope returns the schema of the envelope fields for type typ.
func envelope(typ string) []Field {
	return []Field{
		{Name: "event_id", Type: FieldString, Required: true, MinLen: 1, MaxLen: 128},
		{Name: "type", Type: FieldString, Required: true, Enum: []string{typ}},
		{Name: "tenant_id", Type: FieldString, Required: true, MinLen: 1},
		{Name: "occurred_at", Type: FieldTimestamp, Required: true},
	}
}

// Validate checks ev, an event decoded with json.Decoder.UseNumber, against
// the type's schema (envelope and declared fields, in that order) and
// normalises it in place so CEL and later stages see typed values: integers
// become int64, numbers float64, timestamps time.Time, and every json.Number
// in undeclared fields (recursively, in lists and objects) float64.
// Undeclared fields are otherwise kept as they are. Values that already have
// their normalised type are accepted, so Validate may run twice.
//
// The error, if any, is a *FieldError for the first field found wrong.
func (t *Type) Validate(ev map[string]any) error {
	present := 0 // declared fields in ev after the first pass
	for i := range t.Fields {
		f := &t.Fields[i]
		v, ok := ev[f.Name]
		if !ok || v == nil {
			if f.Required {
				return &FieldError{Field: f.Name, Reason: ReasonMissing, Detail: "required"}
			}
			if ok {
				delete(ev, f.Name) // null means absent, so has() stays the one test
			}
			continue
		}
		nv, err := f.check(v)
		if err != nil {
			return err
		}
		if f.Type != FieldString && f.Type != FieldBool {
			ev[f.Name] = nv // strings and bools stay as decoded
		}
		present++
	}
	if len(ev) == present {
		return nil // no member the schema does not declare
	}
	for name, v := range ev {
		if _, declared := t.fieldIndex[name]; declared {
			continue
		}
		nv, err := normalize(name, v)
		if err != nil {
			return err
		}
		ev[name] = nv // assigning an existing key while ranging is allowed
	}
	return nil
}

// check validates and normalises one present, non-null value.
func (f *Field) check(v any) (any, error) {
	switch f.Type {
	case FieldString:
		s, ok := v.(string)
		if !ok {
			return nil, f.wrongType(v)
		}
		// v itself, not s: boxing s again would allocate.
		return v, f.checkString(s)
	case FieldNumber:
		x, err := toFloat(f.Name, v)
		if err != nil {
			return nil, err
		}
		return x, f.checkRange(x, 0, false)
	case FieldInteger:
		n, err := toInt(f.Name, v)
		if err != nil {
			return nil, err
		}
		return n, f.checkRange(float64(n), n, true)
	case FieldBool:
		if _, ok := v.(bool); !ok {
			return nil, f.wrongType(v)
		}
		return v, nil
	case FieldTimestamp:
		return toTime(f.Name, v)
	case FieldList:
		l, ok := v.([]any)
		if !ok {
			return nil, f.wrongType(v)
		}
		if err := f.checkLen(len(l), "items"); err != nil {
			return nil, err
		}
		return normalize(f.Name, l)
	case FieldObject:
		if _, ok := v.(map[string]any); !ok {
			return nil, f.wrongType(v)
		}
		return normalize(f.Name, v)
	}
	return nil, &FieldError{Field: f.Name, Reason: ReasonWrongType, Detail: "unknown field type " + string(f.Type)}
}

func (f *Field) wrongType(v any) error {
	return &FieldError{Field: f.Name, Reason: ReasonWrongType,
		Detail: fmt.Sprintf("want %s, got %s", f.Type, jsonKind(v))}
}

func (f *Field) checkString(s string) error {
	if s == "" && f.MinLen > 0 {
		return &FieldError{Field: f.Name, Reason: ReasonInvalid, Detail: "empty"}
	}
	// Counting runes is O(n). The byte length bounds the count from above,
	// so most values skip it: only a long one, or a MinLen above 1, needs it.
	if (f.MaxLen > 0 && len(s) > f.MaxLen) || f.MinLen > 1 {
		if err := f.checkLen(utf8.RuneCountInString(s), "characters"); err != nil {
			return err
		}
	}
	if len(f.Enum) > 0 && !slices.Contains(f.Enum, s) {
		return &FieldError{Field: f.Name, Reason: ReasonInvalid,
			Detail: fmt.Sprintf("%s not in %v", quoteShort(s), f.Enum)}
	}
	if f.re != nil && !f.re.MatchString(s) {
		return &FieldError{Field: f.Name, Reason: ReasonInvalid,
			Detail: fmt.Sprintf("%s does not match %s", quoteShort(s), f.Pattern)}
	}
	return nil
}

func (f *Field) checkLen(n int, unit string) error {
	if f.MinLen > 0 && n < f.MinLen {
		return &FieldError{Field: f.Name, Reason: ReasonOutOfRange,
			Detail: fmt.Sprintf("%d %s < min_len %d", n, unit, f.MinLen)}
	}
	if f.MaxLen > 0 && n > f.MaxLen {
		return &FieldError{Field: f.Name, Reason: ReasonOutOfRange,
			Detail: fmt.Sprintf("%d %s > max_len %d", n, unit, f.MaxLen)}
	}
	return nil
}

// checkRange checks x against the bounds; an integer field passes its
// exact value n too, which the error's text shows. The text is built only
// for a value out of range: every event's numbers pass through here.
func (f *Field) checkRange(x float64, n int64, isInt bool) error {
	text := func() string {
		if isInt {
			return strconv.FormatInt(n, 10)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	if f.Min != nil && x < *f.Min {
		return &FieldError{Field: f.Name, Reason: ReasonOutOfRange,
			Detail: text() + " < min " + strconv.FormatFloat(*f.Min, 'g', -1, 64)}
	}
	if f.Max != nil && x > *f.Max {
		return &FieldError{Field: f.Name, Reason: ReasonOutOfRange,
			Detail: text() + " > max " + strconv.FormatFloat(*f.Max, 'g', -1, 64)}
	}
	return nil
}

// toFloat converts a JSON number to float64. Besides json.Number it accepts
// the types a plain json.Unmarshal or an earlier Validate produce.
func toFloat(name string, v any) (float64, error) {
	var x float64
	switch n := v.(type) {
	case json.Number:
		var err error
		x, err = strconv.ParseFloat(string(n), 64)
		if errors.Is(err, strconv.ErrRange) {
			return 0, &FieldError{Field: name, Reason: ReasonOutOfRange, Detail: quoteShort(string(n)) + " overflows float64"}
		}
		if err != nil {
			return 0, &FieldError{Field: name, Reason: ReasonWrongType, Detail: "want number, got " + quoteShort(string(n))}
		}
	case float64:
		x = n
	case int64:
		x = float64(n)
	case int:
		x = float64(n)
	default:
		return 0, &FieldError{Field: name, Reason: ReasonWrongType, Detail: "want number, got " + jsonKind(v)}
	}
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, &FieldError{Field: name, Reason: ReasonOutOfRange, Detail: "not finite"}
	}
	return x, nil
}

// toInt converts a JSON number to int64. Integral values written as
// floats ("5.0", "1e3") are integers; fractional values are wrong_type.
func toInt(name string, v any) (int64, error) {
	var x float64
	switch n := v.(type) {
	case int64:
		return n, nil
	case int:
		return int64(n), nil
	case json.Number:
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err == nil {
			return i, nil
		}
		if errors.Is(err, strconv.ErrRange) {
			return 0, &FieldError{Field: name, Reason: ReasonOutOfRange, Detail: quoteShort(string(n)) + " overflows int64"}
		}
		if x, err = toFloat(name, n); err != nil {
			return 0, err
		}
	case float64:
		x = n
	default:
		return 0, &FieldError{Field: name, Reason: ReasonWrongType, Detail: "want integer, got " + jsonKind(v)}
	}
	if x != math.Trunc(x) || math.IsInf(x, 0) {
		return 0, &FieldError{Field: name, Reason: ReasonWrongType,
			Detail: "want integer, got " + strconv.FormatFloat(x, 'g', -1, 64)}
	}
	// float64(math.MaxInt64) rounds up to 2^63, which overflows, as does
	// anything at or above it.
	if x >= math.MaxInt64 || x < math.MinInt64 {
		return 0, &FieldError{Field: name, Reason: ReasonOutOfRange,
			Detail: strconv.FormatFloat(x, 'g', -1, 64) + " overflows int64"}
	}
	return int64(x), nil
}

func toTime(name string, v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case string:
		ts, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return time.Time{}, &FieldError{Field: name, Reason: ReasonBadTimestamp,
				Detail: quoteShort(x) + " is not RFC 3339"}
		}
		return ts, nil
	}
	return time.Time{}, &FieldError{Field: name, Reason: ReasonWrongType, Detail: "want RFC 3339 string, got " + jsonKind(v)}
}

// normalize turns every json.Number under v into float64, in place for
// lists and objects. path names v in errors.
func normalize(path string, v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		return toFloat(path, x)
	case []any:
		for i, e := range x {
			ne, err := normalize(path+"["+strconv.Itoa(i)+"]", e)
			if err != nil {
				return nil, err
			}
			x[i] = ne
		}
	case map[string]any:
		for k, e := range x {
			ne, err := normalize(path+"."+k, e)
			if err != nil {
				return nil, err
			}
			x[k] = ne
		}
	}
	return v, nil
}

// jsonKind names v's JSON type for error details.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "bool"
	case json.Number, float64, int64, int:
		return "number"
	case []any:
		return "list"
	case map[string]any:
		return "object"
	case time.Time:
		return "timestamp"
	}
	return fmt.Sprintf("%T", v)
}

// quoteShort quotes s for an error detail, cut to 64 bytes: details travel
// in DLQ headers and logs, which should not carry whole documents.
func quoteShort(s string) string { return quoteCut(s, 64) }

// quoteCut quotes s cut to at most n bytes at a character boundary, marking
// a cut with "…".
func quoteCut(s string, n int) string {
	if len(s) <= n {
		return strconv.Quote(s)
	}
	return strconv.Quote(cutString(s, n)) + "…"
}

// JSONSchema describes an event of the type as a JSON Schema object (draft
// 2020-12): what the synchronous APIs publish as their input (the decide
// tool's input schema, the OpenAPI document). Validate stays the judge:
// the schema is its documentation, and patterns are RE2, which JSON Schema
// readers take as ECMA-262 (the same for the usual expressions).
func (t *Type) JSONSchema() map[string]any {
	props := map[string]any{}
	var required []string
	for _, f := range t.Fields {
		props[f.Name] = f.jsonSchema()
		if f.Required {
			required = append(required, f.Name)
		}
	}
	props["type"] = map[string]any{"const": t.Name}
	return map[string]any{"type": "object", "title": t.Name, "properties": props, "required": required}
}

func (f *Field) jsonSchema() map[string]any {
	s := map[string]any{}
	switch f.Type {
	case FieldString:
		s["type"] = "string"
	case FieldNumber:
		s["type"] = "number"
	case FieldInteger:
		s["type"] = "integer"
	case FieldBool:
		s["type"] = "boolean"
	case FieldTimestamp:
		s["type"], s["format"] = "string", "date-time"
	case FieldList:
		s["type"] = "array"
	case FieldObject:
		s["type"] = "object"
	}
	if f.Min != nil {
		s["minimum"] = *f.Min
	}
	if f.Max != nil {
		s["maximum"] = *f.Max
	}
	switch {
	case f.Type == FieldList && f.MinLen > 0:
		s["minItems"] = f.MinLen
	case f.MinLen > 0:
		s["minLength"] = f.MinLen
	}
	switch {
	case f.Type == FieldList && f.MaxLen > 0:
		s["maxItems"] = f.MaxLen
	case f.MaxLen > 0:
		s["maxLength"] = f.MaxLen
	}
	if f.Pattern != "" {
		s["pattern"] = f.Pattern
	}
	if len(f.Enum) > 0 {
		s["enum"] = f.Enum
	}
	return s
}

// EventSchema describes an event of any of the set's types: one of the
// types' schemas (JSONSchema), told apart by their "type" member.
func (s *Set) EventSchema() map[string]any {
	var one []any
	for _, name := range s.Types() {
		t, _ := s.Type(name)
		one = append(one, t.JSONSchema())
	}
	return map[string]any{"type": "object", "oneOf": one}
}
