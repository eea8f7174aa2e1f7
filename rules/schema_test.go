package rules

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// probeFile declares one field of each type, with each constraint.
const probeFile = `
types:
  probe:
    key: id
    fields:
      id: {type: string, required: true}
      n: {type: integer, min: 0, max: 10}
      big: {type: integer}
      x: {type: number, min: -1.5, max: 1e9}
      s: {type: string, min_len: 2, max_len: 5}
      code: {type: string, pattern: "^[A-Z]{3}$"}
      kind: {type: string, enum: [a, b]}
      flag: {type: bool}
      at: {type: timestamp}
      tags: {type: list, max_len: 2}
      meta: {type: object}
    outcomes: [ok]
    fallback: ok
    default: ok
`

func TestValidate(t *testing.T) {
	set := mustParse(t, "probe.yaml", []byte(probeFile))
	typ, _ := set.Type("probe")
	base := map[string]any{"id": "p-1"}
	tests := []struct {
		name       string
		over       map[string]any
		wantField  string
		wantReason Reason
		wantDetail string // substring
	}{
		{"minimal", nil, "", "", ""},
		{"all fields", map[string]any{
			"n": 10, "x": -1.5, "s": "ab", "code": "USD", "kind": "b", "flag": false,
			"at": "2026-01-02T15:04:05.123+02:00", "tags": []any{"a", 1}, "meta": map[string]any{"k": 1},
		}, "", "", ""},
		{"multibyte string at max_len", map[string]any{"s": "ééééé"}, "", "", ""},
		{"optional null", map[string]any{"kind": nil}, "", "", ""},

		{"missing event_id", map[string]any{"event_id": nil}, "event_id", ReasonMissing, "required"},
		{"missing occurred_at", map[string]any{"occurred_at": nil}, "occurred_at", ReasonMissing, ""},
		{"missing key field", map[string]any{"id": nil}, "id", ReasonMissing, ""},
		{"null tenant", map[string]any{"tenant_id": json.RawMessage("null")}, "tenant_id", ReasonMissing, ""},

		{"integer as string", map[string]any{"n": "5"}, "n", ReasonWrongType, "want integer, got string"},
		{"fractional integer", map[string]any{"n": 1.5}, "n", ReasonWrongType, "want integer, got 1.5"},
		{"number as bool", map[string]any{"x": true}, "x", ReasonWrongType, "want number, got bool"},
		{"string as number", map[string]any{"s": 42}, "s", ReasonWrongType, "want string, got number"},
		{"bool as string", map[string]any{"flag": "true"}, "flag", ReasonWrongType, "want bool"},
		{"timestamp as number", map[string]any{"at": 1700000000}, "at", ReasonWrongType, ""},
		{"list as object", map[string]any{"tags": map[string]any{}}, "tags", ReasonWrongType, "got object"},
		{"object as list", map[string]any{"meta": []any{}}, "meta", ReasonWrongType, "got list"},
		{"key as number", map[string]any{"id": 7}, "id", ReasonWrongType, ""},

		{"integer below min", map[string]any{"n": -1}, "n", ReasonOutOfRange, "-1 < min 0"},
		{"integer above max", map[string]any{"n": 11}, "n", ReasonOutOfRange, "11 > max 10"},
		{"integer overflows", map[string]any{"big": json.Number("9223372036854775808")}, "big", ReasonOutOfRange, "overflows int64"},
		{"integer as huge float", map[string]any{"big": json.Number("1e20")}, "big", ReasonOutOfRange, "overflows int64"},
		{"number below min", map[string]any{"x": -2}, "x", ReasonOutOfRange, "-2 < min -1.5"},
		{"number overflows", map[string]any{"x": json.Number("1e400")}, "x", ReasonOutOfRange, "overflows float64"},
		{"string too short", map[string]any{"s": "a"}, "s", ReasonOutOfRange, "1 characters < min_len 2"},
		{"string too long", map[string]any{"s": "abcdef"}, "s", ReasonOutOfRange, "6 characters > max_len 5"},
		{"list too long", map[string]any{"tags": []any{1, 2, 3}}, "tags", ReasonOutOfRange, "3 items > max_len 2"},
		{"event_id too long", map[string]any{"event_id": strings.Repeat("e", 129)}, "event_id", ReasonOutOfRange, "129 characters"},
		{"undeclared number overflows", map[string]any{"extra": map[string]any{"l": []any{json.Number("1e999")}}},
			"extra.l[0]", ReasonOutOfRange, ""},

		{"not in enum", map[string]any{"kind": "c"}, "kind", ReasonInvalid, `"c" not in [a b]`},
		{"pattern mismatch", map[string]any{"code": "usd"}, "code", ReasonInvalid, `"usd" does not match ^[A-Z]{3}$`},
		{"empty string with min_len", map[string]any{"s": ""}, "s", ReasonInvalid, "empty"},
		{"empty event_id", map[string]any{"event_id": ""}, "event_id", ReasonInvalid, "empty"},
		{"empty tenant", map[string]any{"tenant_id": ""}, "tenant_id", ReasonInvalid, "empty"},
		{"empty key", map[string]any{"id": ""}, "id", ReasonInvalid, "empty"},
		{"type mismatch", map[string]any{"type": "other"}, "type", ReasonInvalid, `"other" not in [probe]`},
		{"long value cut in detail", map[string]any{"kind": strings.Repeat("z", 500)}, "kind", ReasonInvalid, `zzz"… not in`},

		{"bad occurred_at", map[string]any{"occurred_at": "yesterday"}, "occurred_at", ReasonBadTimestamp, `"yesterday" is not RFC 3339`},
		{"bad month", map[string]any{"at": "2026-13-01T00:00:00Z"}, "at", ReasonBadTimestamp, ""},
		{"date only", map[string]any{"at": "2026-01-02"}, "at", ReasonBadTimestamp, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := event(t, "probe", base, tt.over)
			err := typ.Validate(ev)
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate = %v, want *FieldError %s", err, tt.wantReason)
			}
			if fe.Field != tt.wantField || fe.Reason != tt.wantReason || !strings.Contains(fe.Detail, tt.wantDetail) {
				t.Errorf("Validate = %#v, want field %q reason %s detail containing %q",
					fe, tt.wantField, tt.wantReason, tt.wantDetail)
			}
		})
	}
}

func TestFieldErrorText(t *testing.T) {
	set := mustParse(t, "default.yaml", Default)
	typ, _ := set.Type("transaction")
	err := typ.Validate(event(t, "transaction", cleanTxn, map[string]any{"amount": -5}))
	if got, want := err.Error(), "amount: out_of_range: -5 < min 0"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := (&FieldError{Field: "a", Reason: ReasonMissing}).Error(), "a: missing_field"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestValidateNormalizes(t *testing.T) {
	set := mustParse(t, "probe.yaml", []byte(probeFile))
	typ, _ := set.Type("probe")
	ev := decodeJSON(t, []byte(`{
		"event_id": "e", "type": "probe", "tenant_id": "t", "occurred_at": "2026-01-02T15:04:05.5Z",
		"id": "p", "n": 7, "big": 1e3, "x": 3, "at": "2026-01-02T17:04:05+02:00", "kind": null,
		"tags": [1, [3.5]], "meta": {"deep": {"v": 4}},
		"extra": [{"w": 6}], "note": "kept"
	}`))
	if err := typ.Validate(ev); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"event_id": "e", "type": "probe", "tenant_id": "t",
		"occurred_at": time.Date(2026, 1, 2, 15, 4, 5, 5e8, time.UTC),
		"id":          "p", "n": int64(7), "big": int64(1000), "x": float64(3),
		"at":   time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC),
		"tags": []any{float64(1), []any{3.5}}, "meta": map[string]any{"deep": map[string]any{"v": float64(4)}},
		"extra": []any{map[string]any{"w": float64(6)}}, "note": "kept",
	}
	for k, w := range want {
		got := ev[k]
		if gt, ok := got.(time.Time); ok {
			if !gt.Equal(w.(time.Time)) {
				t.Errorf("%s = %v, want %v", k, gt, w)
			}
			continue
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %#v, want %#v", k, got, w)
		}
	}
	if _, ok := ev["kind"]; ok {
		t.Error("null optional field kind was kept; want it removed so has() is false")
	}
	if len(ev) != len(want) {
		t.Errorf("event has %d fields, want %d: %v", len(ev), len(want), ev)
	}
	// Validate accepts its own output.
	if err := typ.Validate(ev); err != nil {
		t.Errorf("second Validate: %v", err)
	}
	if got := typ.KeyOf(ev); got != "p" {
		t.Errorf("KeyOf = %q, want p", got)
	}
}

// FuzzValidate feeds arbitrary JSON objects to every default type. Validate
// must not panic, and an event it accepts must be fully normalised, accepted
// again, and decided by the default policy without a rule error.
func FuzzValidate(f *testing.F) {
	set := mustParse(f, "default.yaml", Default)
	for _, seed := range []string{
		`{"event_id":"e","type":"transaction","tenant_id":"t","occurred_at":"2026-01-02T15:04:05Z","account_id":"a","user_id":"u","amount":6000,"currency":"USD","country":"NG","ip_country":"NG","merchant":"m","mcc":"5411","channel":"atm","device_id":"d","txn_count_24h":1,"avg_amount_30d":2.5,"account_age_days":3,"chargebacks_90d":0,"extra":[1,{"x":2e5}]}`,
		`{"event_id":"e","type":"document","tenant_id":"t","occurred_at":"2026-01-02T15:04:05Z","doc_id":"d","owner_id":"o","mime":"text/plain","size_bytes":1,"template_id":null,"title":"","text":"mail a@b.io"}`,
		`{"type":"document","amount":"1e999","size_bytes":1.5}`,
		`{"type":"transaction","txn_count_24h":-0,"amount":-1e-300}`,
		`{}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range set.Types() {
			dec := json.NewDecoder(strings.NewReader(string(data)))
			dec.UseNumber()
			var ev map[string]any
			if dec.Decode(&ev) != nil || ev == nil {
				return
			}
			typ, _ := set.Type(name)
			if typ.Validate(ev) != nil {
				continue
			}
			assertNoJSONNumber(t, "", ev)
			if err := typ.Validate(ev); err != nil {
				t.Fatalf("second Validate: %v", err)
			}
			if typ.KeyOf(ev) == "" {
				t.Fatal("accepted an event with an empty key")
			}
			if r := set.Eval(name, ev); r.Err != nil || r.Action == "" {
				t.Fatalf("Eval = %+v on a valid event", r)
			}
		}
	})
}

func assertNoJSONNumber(t *testing.T, path string, v any) {
	t.Helper()
	switch x := v.(type) {
	case json.Number:
		t.Fatalf("%s is still a json.Number", path)
	case []any:
		for _, e := range x {
			assertNoJSONNumber(t, path+"[]", e)
		}
	case map[string]any:
		for k, e := range x {
			assertNoJSONNumber(t, path+"."+k, e)
		}
	}
}
