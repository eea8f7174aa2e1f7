package pipeline_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage/pipeline"
)

func TestDecodeMalformed(t *testing.T) {
	set := defaultRules(t).Current()
	for _, m := range malformedRecords() {
		t.Run(m.name, func(t *testing.T) {
			_, _, err := pipeline.Decode(set, m.value)
			var de *pipeline.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode error = %v, want a *DecodeError", err)
			}
			if de.Reason != m.reason {
				t.Fatalf("reason = %q (%s), want %q", de.Reason, de.Detail, m.reason)
			}
			if de.Detail == "" {
				t.Fatal("empty detail: a DLQ record must say what is wrong")
			}
		})
	}
}

func TestDecodeValidNormalizes(t *testing.T) {
	set := defaultRules(t).Current()
	v, _ := json.Marshal(txn("ok-1", 120.5, "DE", "DE"))
	fields, typ, err := pipeline.Decode(set, v)
	if err != nil {
		t.Fatal(err)
	}
	if typ.Name != "transaction" || typ.KeyOf(fields) != "acct-ok-1" {
		t.Fatalf("type %q key %q", typ.Name, typ.KeyOf(fields))
	}
	if _, ok := fields["amount"].(float64); !ok {
		t.Errorf("amount is %T, want float64", fields["amount"])
	}
	if _, ok := fields["txn_count_24h"].(int64); !ok {
		t.Errorf("txn_count_24h is %T, want int64", fields["txn_count_24h"])
	}
	if _, ok := fields["occurred_at"].(time.Time); !ok {
		t.Errorf("occurred_at is %T, want time.Time", fields["occurred_at"])
	}
}

func FuzzDecode(f *testing.F) {
	for _, m := range malformedRecords() {
		if len(m.value) < 4096 {
			f.Add(m.value)
		}
	}
	v, _ := json.Marshal(txn("fuzz", 1, "DE", "DE"))
	f.Add(v)
	set, err := loadDefault()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fields, typ, err := pipeline.Decode(set, data)
		if err == nil && (typ == nil || fields == nil) {
			t.Fatal("nil type or fields without an error")
		}
		var de *pipeline.DecodeError
		if err != nil && !errors.As(err, &de) {
			t.Fatalf("error %v is not a *DecodeError", err)
		}
	})
}

// TestDecodeEscapedNames: a member name spelled with escapes is the name
// it spells, whether or not the rules declare it: the same field, and a
// repeat of one written plainly.
func TestDecodeEscapedNames(t *testing.T) {
	set := defaultRules(t).Current()
	v, _ := json.Marshal(txn("esc-1", 120.5, "DE", "DE"))
	escaped := []byte(strings.Replace(string(v), `"amount":`, `"\u0061mount":`, 1))
	fields, _, err := pipeline.Decode(set, escaped)
	if err != nil {
		t.Fatalf("escaped name of a declared field: %v", err)
	}
	if fields["amount"] != 120.5 {
		t.Fatalf("amount = %v, want 120.5", fields["amount"])
	}
	extra := []byte(strings.Replace(string(v), `{`, `{"n\u00f6te":"x",`, 1))
	if fields, _, err = pipeline.Decode(set, extra); err != nil || fields["nöte"] != "x" {
		t.Fatalf("escaped undeclared name: %v, %v", fields["nöte"], err)
	}
	twice := []byte(strings.Replace(string(v), `{`, `{"\u0061mount":1,`, 1))
	var de *pipeline.DecodeError
	if _, _, err := pipeline.Decode(set, twice); !errors.As(err, &de) || de.Reason != pipeline.ReasonDuplicateKey {
		t.Fatalf("a name written plainly and escaped: %v, want %s", err, pipeline.ReasonDuplicateKey)
	}
}
