package rules

import (
	"bytes"
	"encoding/json"
	"maps"
	"testing"
)

// testKey is the fixed mask key of the tests and the golden prompts, so
// that pseudonyms are the same on every run.
var testKey = newMaskKey([]byte("triage rules test key, not secret"))

// mustParse parses a rules file with testKey or fails the test.
func mustParse(tb testing.TB, name string, data []byte) *Set {
	tb.Helper()
	s, err := Parse(name, data, WithMaskKey(testKey))
	if err != nil {
		tb.Fatalf("Parse(%s): %v", name, err)
	}
	return s
}

// decode turns v into the event the pipeline would see: marshalled to JSON
// and decoded with UseNumber, so numbers arrive as json.Number.
func decode(tb testing.TB, v any) map[string]any {
	tb.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return decodeJSON(tb, data)
}

func decodeJSON(tb testing.TB, data []byte) map[string]any {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var ev map[string]any
	if err := dec.Decode(&ev); err != nil {
		tb.Fatalf("decode %s: %v", data, err)
	}
	return ev
}

// event returns a decoded event of type typ: the envelope, then base, then
// over (a nil value in over deletes the field).
func event(tb testing.TB, typ string, base, over map[string]any) map[string]any {
	tb.Helper()
	ev := map[string]any{
		"event_id":    "ev-1",
		"type":        typ,
		"tenant_id":   "tenant-a",
		"occurred_at": "2026-01-02T15:04:05Z",
	}
	maps.Copy(ev, base)
	for k, v := range over {
		if v == nil {
			delete(ev, k)
			continue
		}
		ev[k] = v
	}
	return decode(tb, ev)
}

// cleanTxn is a transaction no default rule matches.
var cleanTxn = map[string]any{
	"account_id": "acct-1", "user_id": "user-1", "amount": 120.5, "currency": "USD",
	"country": "US", "ip_country": "US", "merchant": "Corner Shop", "mcc": "5411",
	"channel": "card_present", "device_id": "dev-1", "txn_count_24h": 3,
	"avg_amount_30d": 100, "account_age_days": 400, "chargebacks_90d": 0,
}

// cleanDoc is a document no default rule matches.
var cleanDoc = map[string]any{
	"doc_id": "doc-1", "owner_id": "owner-1", "mime": "application/pdf", "size_bytes": 2048,
	"template_id": "invoice_v2", "title": "Invoice 2026-01", "text": "Total due: 120.50 EUR. Thank you.",
}

// validated returns an event of typ that passed s's Validate.
func validated(tb testing.TB, s *Set, typ string, base, over map[string]any) map[string]any {
	tb.Helper()
	ev := event(tb, typ, base, over)
	tt, ok := s.Type(typ)
	if !ok {
		tb.Fatalf("no type %q", typ)
	}
	if err := tt.Validate(ev); err != nil {
		tb.Fatalf("Validate: %v", err)
	}
	return ev
}
