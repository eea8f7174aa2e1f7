package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/triage-dev/triage/rules"
)

// Event is a decoded, validated event together with where it was read from.
type Event struct {
	ID       string
	Type     string
	TenantID string
	Key      string
	// Fields is the whole event object, normalized by the type's schema
	// (integers as int64, numbers as float64, timestamps as time.Time).
	Fields map[string]any

	Topic     string
	Partition int32
	Offset    int64
	// Produced is the record's timestamp: when the upstream producer wrote it.
	Produced time.Time
}

// newEvent is the event of a record that Decode found valid as typ,
// produced at produced; the caller sets where it was read from.
func newEvent(typ *rules.Type, fields map[string]any, produced time.Time) Event {
	return Event{ID: str(fields["event_id"]), Type: typ.Name, TenantID: str(fields["tenant_id"]),
		Key: typ.KeyOf(fields), Fields: fields, Produced: produced}
}

// evaluate runs the rules on ev. A rule that fails to evaluate sends the
// event to sampling (rules.Set.Eval); that is logged here.
func evaluate(set *rules.Set, typ *rules.Type, ev Event, log *slog.Logger) rules.Result {
	res := set.Eval(typ.Name, ev.Fields)
	if res.Err != nil {
		log.Warn("rule error; event goes to sampling", "type", typ.Name, "rule", res.RuleID, "event_id", ev.ID, "err", res.Err)
	}
	return res
}

// DLQ reasons for records that are not valid events. Field-level reasons
// come from rules.Reason.
const (
	ReasonInvalidJSON = "invalid_json"
	ReasonNotObject   = "not_object"
	ReasonTooLarge    = "too_large"
	ReasonUnknownType = "unknown_type"
	// ReasonInvalidUTF8: JSON text must be UTF-8; a decoder would quietly
	// turn the bad bytes into U+FFFD, so the event would be decided on
	// text other than what was sent.
	ReasonInvalidUTF8 = "invalid_utf8"
	// ReasonDuplicateKey: a member of the event object appears twice;
	// decoders disagree on which one wins (the last, here), so the event
	// is ambiguous.
	ReasonDuplicateKey = "duplicate_key"
	// ReasonWrongTopic: a valid event of a type its topic is not
	// configured to carry (Config.TopicTypes).
	ReasonWrongTopic = "wrong_topic"
)

// DefaultMaxBytes bounds a record before its type is known; each type may set
// a tighter bound of its own.
const DefaultMaxBytes = 1 << 20

// DecodeError says why a record is not a valid event. Reason is a stable
// machine-readable code (it becomes the DLQ record's reason header); Detail
// is for humans.
type DecodeError struct {
	Reason string
	Detail string
}

func (e *DecodeError) Error() string { return e.Reason + ": " + e.Detail }

// Decode parses and validates one record value against the rules set's event
// types. The error, when not nil, is always a *DecodeError.
func Decode(set *rules.Set, value []byte) (map[string]any, *rules.Type, error) {
	if len(value) > DefaultMaxBytes {
		return nil, nil, &DecodeError{ReasonTooLarge, fmt.Sprintf("%d bytes > limit %d", len(value), DefaultMaxBytes)}
	}
	if !utf8.Valid(value) {
		return nil, nil, &DecodeError{ReasonInvalidUTF8, "the value is not valid UTF-8"}
	}
	obj, derr := decodeObject(set, value)
	if derr != nil {
		return nil, nil, derr
	}
	raw, present := obj["type"]
	name, isString := raw.(string)
	switch {
	case !present || raw == nil:
		return nil, nil, &DecodeError{string(rules.ReasonMissing), "type: missing"}
	case !isString:
		return nil, nil, &DecodeError{string(rules.ReasonWrongType), fmt.Sprintf("type: want string, got %s", jsonKind(raw))}
	case name == "":
		return nil, nil, &DecodeError{string(rules.ReasonMissing), "type: empty"}
	}
	typ, ok := set.Type(name)
	if !ok {
		return nil, nil, &DecodeError{ReasonUnknownType, fmt.Sprintf("type %q is not configured", name)}
	}
	if typ.MaxBytes > 0 && len(value) > typ.MaxBytes {
		return nil, nil, &DecodeError{ReasonTooLarge, fmt.Sprintf("%d bytes > %s limit %d", len(value), name, typ.MaxBytes)}
	}
	if err := typ.Validate(obj); err != nil {
		var fe *rules.FieldError
		if errors.As(err, &fe) {
			return nil, nil, &DecodeError{string(fe.Reason), fe.Error()}
		}
		return nil, nil, &DecodeError{string(rules.ReasonInvalid), err.Error()}
	}
	return obj, typ, nil
}

// decodeObject parses value, which must be one JSON object, in one pass:
// its members are decoded as they come, and a member name that appears
// twice is caught on the way (the envelope fields decide how an event is
// read, so an event may not carry two). The checks keep their order of
// precedence: invalid JSON anywhere, then a value that is not an object,
// then a repeated name.
//
// It runs for every record, so it reads tokens with jsontext (no
// reflection) from a pooled decoder over the value itself (a bytes.Buffer
// is parsed in place, not copied), and builds error strings only for
// records that fail.
func decodeObject(set *rules.Set, value []byte) (map[string]any, *DecodeError) {
	d := objectDecoders.Get().(*objectDecoder)
	defer d.release()
	d.buf = *bytes.NewBuffer(value)
	d.dec.Reset(&d.buf, decodeOptions...)
	tok, err := d.dec.ReadToken()
	if err != nil {
		return nil, &DecodeError{ReasonInvalidJSON, err.Error()}
	}
	if tok.Kind() != '{' {
		return nil, notObject(value)
	}
	obj := make(map[string]any, 16)
	dup := ""
	for d.dec.PeekKind() != '}' {
		key, err := readName(set, &d.dec)
		if err != nil {
			return nil, &DecodeError{ReasonInvalidJSON, err.Error()}
		}
		v, err := readAny(&d.dec)
		if err != nil {
			return nil, &DecodeError{ReasonInvalidJSON, err.Error()}
		}
		if _, seen := obj[key]; seen && dup == "" {
			dup = key
		}
		obj[key] = v
	}
	if _, err := d.dec.ReadToken(); err != nil { // }
		return nil, &DecodeError{ReasonInvalidJSON, err.Error()}
	}
	if _, err := d.dec.ReadToken(); err != io.EOF {
		return nil, &DecodeError{ReasonInvalidJSON, "trailing data after the JSON value"}
	}
	if dup != "" {
		return nil, &DecodeError{ReasonDuplicateKey, fmt.Sprintf("member %q appears more than once", dup)}
	}
	return obj, nil
}

// readName reads a member's name: a field the rules declare, spelled
// without escapes, is the set's own string (no allocation); any other
// name is read as a token.
func readName(set *rules.Set, dec *jsontext.Decoder) (string, error) {
	raw, err := dec.ReadValue()
	if err != nil {
		return "", err
	}
	if unquoted := raw[1 : len(raw)-1]; bytes.IndexByte(unquoted, '\\') < 0 {
		if name, ok := set.FieldName(unquoted); ok {
			return name, nil
		}
		return string(unquoted), nil
	}
	var s string
	return s, json.Unmarshal(raw, &s)
}

// decodeOptions: Decode checks UTF-8 before parsing, and finds repeated
// names itself, after the syntax (see decodeObject's precedence).
var decodeOptions = []jsontext.Options{jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true)}

type objectDecoder struct {
	buf bytes.Buffer
	dec jsontext.Decoder
}

var objectDecoders = sync.Pool{New: func() any {
	d := new(objectDecoder)
	d.dec.Reset(&d.buf)
	return d
}}

// release returns d to the pool without a reference to the record.
func (d *objectDecoder) release() {
	d.buf = bytes.Buffer{}
	d.dec.Reset(&d.buf)
	objectDecoders.Put(d)
}

// readAny reads the next value as the schema expects it: numbers as
// json.Number (their text, so that integers stay exact), nested arrays and
// objects as encoding/json builds them (rare in events, so not worth a
// second reader).
func readAny(dec *jsontext.Decoder) (any, error) {
	switch dec.PeekKind() {
	case '0':
		raw, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		return json.Number(raw), nil
	case '{', '[':
		raw, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		nested := json.NewDecoder(bytes.NewReader(raw))
		nested.UseNumber()
		var v any
		err = nested.Decode(&v)
		return v, err
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, err
	}
	switch tok.Kind() {
	case '"':
		return tok.String(), nil
	case 't', 'f':
		return tok.Bool(), nil
	}
	return nil, nil // null: every other kind is an error ReadToken returned
}

// notObject is the error of a value that does not start an object: invalid
// JSON, or JSON of another kind. It is the rare path, and parses again.
func notObject(value []byte) *DecodeError {
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return &DecodeError{ReasonInvalidJSON, err.Error()}
	}
	if dec.More() {
		return &DecodeError{ReasonInvalidJSON, "trailing data after the JSON value"}
	}
	return &DecodeError{ReasonNotObject, fmt.Sprintf("value is a JSON %s, want an object", jsonKind(v))}
}

func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "array"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// str reads a string field that validation guarantees, without trusting it
// enough to panic.
func str(v any) string {
	s, _ := v.(string)
	return s
}
