package loadgen

import (
	"encoding/json"
	"testing"
)

// FuzzAppendString checks the hand-written JSON string encoder against
// encoding/json: the output is always valid JSON and decodes to what
// encoding/json would have encoded.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "line\nbreak\ttab\r\x00\x1f",
		"Müller, Chloé, 日本", "bad \xff utf-8 \xe2\x82", "\u2028 separators \u2029", "</script>&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := appendString(nil, s)
		if !json.Valid(got) {
			t.Fatalf("appendString(%q) = %s: invalid JSON", s, got)
		}
		var back, want string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatal(err)
		}
		ref, _ := json.Marshal(s)
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatal(err)
		}
		if back != want {
			t.Fatalf("appendString(%q) decodes to %q, encoding/json round-trips to %q", s, back, want)
		}
	})
}

func TestObjectEdits(t *testing.T) {
	var o object
	o.add("a", str("x"))
	o.add("n", integer(-3))
	o.add("f", number(2.5, 2))
	o.set("a", integer(1))
	o.set("new", str("y"))
	if !o.del("n") || o.del("missing") {
		t.Fatal("del reports presence wrongly")
	}
	if got, want := string(o.encode()), `{"a":1,"f":2.50,"new":"y"}`; got != want {
		t.Fatalf("encode = %s, want %s", got, want)
	}
}
