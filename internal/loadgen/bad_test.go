package loadgen

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
)

func TestMalformedKinds(t *testing.T) {
	g := mustGenerator(t, Config{Seed: 3, Bad: 1, Mix: map[string]float64{TypeTransaction: 1, TypeDocument: 1}})
	seen := map[string]map[string]int{} // kind -> type -> count
	for range 450 {
		ev := g.Next()
		if ev.Bad == "" || ev.Ambiguous {
			t.Fatalf("Bad=%q Ambiguous=%v with Config.Bad 1", ev.Bad, ev.Ambiguous)
		}
		if ev.EventID == "" || len(ev.Key) == 0 || ev.Topic == "" || !bytes.Contains(ev.Value, []byte(ev.EventID)) {
			t.Fatalf("malformed %s lost its id, key or topic: %+v", ev.Bad, ev)
		}
		if seen[ev.Bad] == nil {
			seen[ev.Bad] = map[string]int{}
		}
		seen[ev.Bad][ev.Type]++
		checkMalformed(t, ev)
	}
	for _, k := range BadKinds() {
		if seen[k][TypeTransaction] == 0 || seen[k][TypeDocument] == 0 {
			t.Errorf("kind %s not produced for both types: %v", k, seen[k])
		}
	}
	if len(seen) != len(BadKinds()) {
		t.Errorf("produced kinds %v, want exactly %v", seen, BadKinds())
	}
}

// checkMalformed asserts ev is malformed in the way its kind names, and
// that the contract's validation would give exactly that DLQ reason.
func checkMalformed(t *testing.T, ev Event) {
	t.Helper()
	fail := func(why string) {
		t.Helper()
		t.Fatalf("%s %s: %s\n%.400s", ev.Type, ev.Bad, why, ev.Value)
	}
	switch ev.Bad {
	case BadInvalidJSON:
		if json.Valid(ev.Value) {
			fail("is valid JSON")
		}
		if _, err := decode(ev.Value); err == nil {
			fail("decodes")
		}
		return
	case BadNotObject:
		var v any
		if err := json.Unmarshal(ev.Value, &v); err != nil {
			fail("is not JSON: " + err.Error())
		}
		if _, isObj := v.(map[string]any); isObj {
			fail("is an object")
		}
		return
	case BadTooLarge:
		if len(ev.Value) < TooLargeBytes || len(ev.Value) <= 1<<20 {
			fail("is not larger than 1 MiB")
		}
		if !json.Valid(ev.Value) {
			fail("too_large must be otherwise valid JSON")
		}
		return
	}
	obj, err := decode(ev.Value)
	if err != nil {
		fail("does not decode: " + err.Error())
	}
	if got := validate(obj); got != ev.Bad {
		fail("contract validation says " + got)
	}
	if text(obj, "event_id") != ev.EventID {
		fail("event_id lost")
	}
	if ev.Bad == BadUnknownType && text(obj, "type") != "wire_v9" {
		fail("type is not wire_v9")
	}
}

func TestBadShare(t *testing.T) {
	g := mustGenerator(t, Config{Seed: 5, Bad: 0.1})
	const n = 20_000
	bad := 0
	for range n {
		if ev := g.Next(); ev.Bad != "" {
			bad++
			if !slices.Contains(BadKinds(), ev.Bad) {
				t.Fatalf("unknown kind %q", ev.Bad)
			}
		}
	}
	assertShare(t, "bad", float64(bad)/n, 0.1, 0.01)
}
