package sampling

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseAnswer(t *testing.T) {
	outcomes := []string{"allow", "review", "block"}
	cases := []struct {
		name, text string
		outcome    string
		err        string
	}{
		{"plain", `{"outcome":"block","reason":"card testing","score":0.9}`, "block", ""},
		{"fenced", "Here you go:\n```json\n{\"outcome\": \"review\"}\n```", "review", ""},
		{"spaces in outcome", `{"outcome":" allow "}`, "allow", ""},
		{"no json", "I think it is fine.", "", "no JSON object"},
		{"broken json", `{"outcome": "allow"`, "", "does not parse"},
		{"unknown outcome", `{"outcome":"approve"}`, "", `"approve" is not one of allow, review, block`},
		{"empty outcome", `{"reason":"unsure"}`, "", "is not one of"},
		{"score out of range", `{"outcome":"allow","score":7}`, "", "outside 0..1"},
		{"wrong type", `{"outcome":3}`, "", "does not parse"},
		// A verdict quoted from the document comes before the model's own.
		{"quoted verdict first", `The document says {"outcome":"allow"}; my answer: {"outcome":"block","reason":"mule"}`, "block", ""},
		{"last one that validates", `{"outcome":"review"} or maybe {"outcome":"approve"}`, "review", ""},
		{"nested object is not an answer", `{"outcome":"allow","detail":{"outcome":"block"}}`, "allow", ""},
		{"brace in prose before the answer", `Use {curly} braces? {"outcome":"review"}`, "review", ""},
		// What Gemma 3 270M wrote under llama-cpp-python's JSON grammar.
		{"raw line break in a string", "{\"outcome\": \"allow\", \"reason\": \"fits the account;\n\" ,\"score\": 0.15}", "allow", ""},
		{"raw tab and a quoted verdict after", "{\"outcome\":\"block\",\"reason\":\"a\tb \\\"}\\\" c\"} then {\"outcome\":\"allow\"", "block", ""},
		{"raw line break in an unfinished object", "{\"outcome\": \"allow\", \"reason\": \"x\n", "", "does not parse"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := ParseAnswer(c.text, outcomes)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want it to mention %q", err, c.err)
				}
				return
			}
			if err != nil || a.Outcome != c.outcome {
				t.Fatalf("got %+v, %v; want outcome %q", a, err, c.outcome)
			}
		})
	}
}

func FuzzParseAnswer(f *testing.F) {
	f.Add(`{"outcome":"allow","reason":"x","score":0.5}`)
	f.Add("```{\"outcome\":\"block\"}```")
	f.Fuzz(func(t *testing.T, text string) {
		a, err := ParseAnswer(text, []string{"allow", "block"})
		if err == nil && a.Outcome != "allow" && a.Outcome != "block" {
			t.Fatalf("accepted outcome %q", a.Outcome)
		}
	})
}

// TestParseAnswerCutsLongReasonsOnRuneBoundaries: a model's reason longer
// than the bound is cut between characters; a cut inside one would turn
// into U+FFFD on the way through JSON, and the audit hash, computed before,
// would no longer match the stored row.
func TestParseAnswerCutsLongReasonsOnRuneBoundaries(t *testing.T) {
	long := strings.Repeat("€", 300) // 900 bytes of 3-byte characters: byte 500 is inside one
	a, err := ParseAnswer(`{"outcome":"review","reason":"`+long+`"}`, []string{"review"})
	if err != nil {
		t.Fatal(err)
	}
	if !utf8.ValidString(a.Reason) || len(a.Reason) > maxReason || !strings.HasPrefix(long, strings.TrimSuffix(a.Reason, "…")) {
		t.Fatalf("reason cut to %d bytes, valid UTF-8 %v: %q", len(a.Reason), utf8.ValidString(a.Reason), a.Reason)
	}
}
