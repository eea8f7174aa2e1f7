package pipeline_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Hand-built events in the shapes the default policy expects; the load
// generator has its own tests, and these keep the pipeline tests readable.

func txn(id string, amount float64, country, ipCountry string) map[string]any {
	return map[string]any{
		"event_id": id, "type": "transaction", "tenant_id": "t1",
		"occurred_at": time.Now().UTC().Format(time.RFC3339Nano),
		"account_id":  "acct-" + id, "user_id": "user-1",
		"amount": amount, "currency": "EUR", "country": country, "ip_country": ipCountry,
		"merchant": "Bakery", "mcc": "5462", "channel": "card_present", "device_id": "dev-1",
		"txn_count_24h": 2, "avg_amount_30d": 40.5, "account_age_days": 400, "chargebacks_90d": 0,
	}
}

func doc(id, template, text string) map[string]any {
	ev := map[string]any{
		"event_id": id, "type": "document", "tenant_id": "t2",
		"occurred_at": time.Now().UTC().Format(time.RFC3339Nano),
		"doc_id":      "doc-" + id, "owner_id": "owner-1", "mime": "text/plain",
		"size_bytes": len(text), "title": "A document", "text": text,
	}
	if template != "" {
		ev["template_id"] = template
	}
	return ev
}

func record(topic string, ev map[string]any) *kgo.Record {
	v, err := json.Marshal(ev)
	if err != nil {
		panic(err) // test data only
	}
	key := ""
	for _, k := range []string{"account_id", "doc_id", "ticket_id"} {
		if s, ok := ev[k].(string); ok {
			key = s
			break
		}
	}
	return &kgo.Record{Topic: topic, Key: []byte(key), Value: v}
}

// with returns a copy of ev with fields set (a nil value deletes the field).
func with(ev map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(ev))
	for k, v := range ev {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// malformed is one bad record and the DLQ reason it must get.
type malformed struct {
	name   string
	value  []byte
	reason string
}

func malformedRecords() []malformed {
	enc := func(ev map[string]any) []byte { v, _ := json.Marshal(ev); return v }
	base := txn("bad", 10, "DE", "DE")
	return []malformed{
		{"truncated JSON", []byte(`{"event_id": "bad-1", "type": "transac`), "invalid_json"},
		{"garbage bytes", []byte{0xff, 0xfe, 0x00, 0x01}, "invalid_utf8"},
		{"invalid UTF-8 in a string", bytes.Replace(enc(base), []byte(`"bad"`), []byte("\"b\xffd\""), 1), "invalid_utf8"},
		{"duplicate type key", append(bytes.TrimSuffix(enc(base), []byte("}")), []byte(`,"type":"document"}`)...), "duplicate_key"},
		{"type as a number", enc(with(base, "type", 7)), "wrong_type"},
		{"two values", []byte(`{"a":1} {"b":2}`), "invalid_json"},
		{"JSON array", []byte(`[1, 2, 3]`), "not_object"},
		{"object then garbage", []byte(`{"a":1}x`), "invalid_json"},
		{"duplicate key, then broken JSON", []byte(`{"type":"x","type":"y","a":}`), "invalid_json"},
		{"duplicate key deep in the object", []byte(`{"a":{"b":1,"b":2},"type":"transaction","type":"document"}`), "duplicate_key"},
		{"JSON number", []byte(` 42 `), "not_object"},
		{"broken after a brace", []byte(`{"a" 1}`), "invalid_json"},
		{"JSON string", []byte(`"transaction"`), "not_object"},
		{"no type", enc(with(base, "type", nil)), "missing_field"},
		{"no amount", enc(with(base, "amount", nil)), "missing_field"},
		{"no event_id", enc(with(base, "event_id", nil)), "missing_field"},
		{"amount as string", enc(with(base, "amount", "12.50")), "wrong_type"},
		{"fractional integer", enc(with(base, "txn_count_24h", 2.5)), "wrong_type"},
		{"negative amount", enc(with(base, "amount", -5)), "out_of_range"},
		{"bad currency", enc(with(base, "currency", "usd!")), "invalid_value"},
		{"bad channel", enc(with(base, "channel", "pigeon")), "invalid_value"},
		{"bad timestamp", enc(with(base, "occurred_at", "yesterday")), "bad_timestamp"},
		{"unknown type", enc(with(base, "type", "wire_v9")), "unknown_type"},
		{"too large", enc(doc("big", "invoice_v2", strings.Repeat("x", 1<<20+1000))), "too_large"},
	}
}

func eventID(i int, prefix string) string { return fmt.Sprintf("%s-%06d", prefix, i) }
