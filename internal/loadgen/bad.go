package loadgen

import (
	"slices"
	"strconv"
	"strings"
)

// Malformed kinds. Each is the DLQ reason (header triage.dlq.reason) the
// contract requires the consumer to give the record, so Measure can compare
// intent with outcome.
const (
	BadInvalidJSON  = "invalid_json"  // truncated JSON or a plain-text log line
	BadNotObject    = "not_object"    // the event wrapped in a JSON array, or as a JSON string
	BadMissingField = "missing_field" // a required field dropped
	BadWrongType    = "wrong_type"    // amount or size_bytes as a string, a fractional count
	BadOutOfRange   = "out_of_range"  // negative amount or size_bytes, amount above 1e9
	BadInvalidValue = "invalid_value" // currency "usd!", channel outside the enum, empty tenant_id
	BadTimestamp    = "bad_timestamp" // occurred_at "yesterday"
	BadUnknownType  = "unknown_type"  // type "wire_v9"
	BadTooLarge     = "too_large"     // a record of TooLargeBytes or more
)

// TooLargeBytes is the minimum size of a BadTooLarge record: 1.1 MiB, above
// the contract's default max_bytes of 1 MiB (and any smaller per-type limit).
// Producing such records needs a client that allows them; see
// ProducerClientOpts.
const TooLargeBytes = 11 << 20 / 10

var badKinds = []string{
	BadInvalidJSON, BadNotObject, BadMissingField, BadWrongType, BadOutOfRange,
	BadInvalidValue, BadTimestamp, BadUnknownType, BadTooLarge,
}

// BadKinds returns every malformed kind the generator produces; with
// Config.Bad > 0 each is drawn with equal probability.
func BadKinds() []string { return slices.Clone(badKinds) }

// missingFields are dropped by BadMissingField: fields the contract requires
// for the type (the envelope's tenant_id for every type).
var missingFields = map[string][]string{
	TypeTransaction: {"amount", "currency", "tenant_id"},
	TypeDocument:    {"doc_id", "size_bytes", "tenant_id"},
}

// malformed turns the valid event in g.obj into a record of the given kind.
// event_id stays in the bytes for every kind, so a DLQ record can still be
// traced to its event by eye.
func (g *Generator) malformed(kind, typ string) []byte {
	r, o := g.rng, &g.obj
	variant := r.IntN(2)
	switch kind {
	case BadInvalidJSON:
		valid := o.encode()
		if variant == 0 { // cut in the middle: the object never closes
			return valid[:len(valid)/3+r.IntN(len(valid)/3)]
		}
		var b strings.Builder // a log line sent to the wrong topic
		for i, m := range o.members {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(m.key + "=" + valueText(m.val))
		}
		return []byte(b.String())
	case BadNotObject:
		valid := o.encode()
		if variant == 0 {
			return append(append([]byte{'['}, valid...), ']')
		}
		return appendString(nil, string(valid))
	case BadMissingField:
		o.del(pick(r, missingFields[typ]))
	case BadWrongType:
		if typ == TypeDocument {
			v, _ := o.get("size_bytes")
			o.set("size_bytes", str(valueText(v)))
		} else if variant == 0 {
			v, _ := o.get("amount")
			o.set("amount", str(valueText(v)))
		} else { // an integer field with a fraction
			o.set("txn_count_24h", number(2.5, 1))
		}
	case BadOutOfRange:
		switch {
		case typ == TypeDocument:
			o.set("size_bytes", integer(-1-r.Int64N(4096)))
		case variant == 0:
			o.set("amount", number(-round2(between(r, 0.01, 500)), 2))
		default:
			o.set("amount", number(2e9, 2))
		}
	case BadInvalidValue:
		switch {
		case typ == TypeDocument:
			o.set("tenant_id", str(""))
		case variant == 0:
			o.set("currency", str("usd!"))
		default:
			o.set("channel", str("telepathy"))
		}
	case BadTimestamp:
		o.set("occurred_at", str("yesterday"))
	case BadUnknownType:
		o.set("type", str("wire_v9"))
	case BadTooLarge:
		if typ == TypeDocument {
			o.set("size_bytes", integer(int64(len(g.padding()))))
			o.set("text", str(g.padding()))
		} else {
			o.add("memo", str(g.padding()))
		}
	}
	return o.encode()
}

// padding returns TooLargeBytes of repetitive text, built once. Repetition
// keeps the record highly compressible, so it fits a broker's default
// message.max.bytes once compressed although it is too large for the
// consumer uncompressed.
func (g *Generator) padding() string {
	if g.pad == "" {
		const line = "This page intentionally repeats to make the record too large. "
		g.pad = strings.Repeat(line, TooLargeBytes/len(line)+1)
	}
	return g.pad
}

func valueText(v value) string {
	switch v.kind {
	case kindInt:
		return strconv.FormatInt(v.i, 10)
	case kindFloat:
		return strconv.FormatFloat(v.f, 'f', v.prec, 64)
	default:
		return v.s
	}
}
