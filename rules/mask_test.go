package rules

import (
	"reflect"
	"regexp"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/triage-dev/triage/internal/pii"
)

func TestMaskValue(t *testing.T) {
	ts := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	tests := []struct {
		name, kind string
		in, want   any
	}{
		{"hash string", MaskHash, "dev-1", "h:0388fb626ca8"}, // printf dev-1 | sha256sum
		{"hash number", MaskHash, 7200.5, "h:ea583e11fef9"},  // of its JSON, 7200.5
		{"hash int equals hash of float", MaskHash, int64(7), MaskValue(MaskHash, 7.0)},
		{"hash nil", MaskHash, nil, MaskValue(MaskHash, nil)},
		{"redact string", MaskRedact, "secret", "[REDACTED]"},
		{"redact number", MaskRedact, 42.0, "[REDACTED]"},
		{"redact list", MaskRedact, []any{"a"}, "[REDACTED]"},
		{"unknown kind redacts", "scramble", "secret", "[REDACTED]"},
		{"pii string", MaskPII, "to a@b.de", "to [EMAIL]"},
		{"pii number unchanged", MaskPII, 4111111111111111.0, 4111111111111111.0},
		{"pii int unchanged", MaskPII, int64(3), int64(3)},
		{"pii bool unchanged", MaskPII, true, true},
		{"pii timestamp unchanged", MaskPII, ts, ts},
		{"pii nil", MaskPII, nil, nil},
		{"pii list", MaskPII, []any{"a@b.de", 1.0, []any{"+44 20 7946 0958"}}, []any{"[EMAIL]", 1.0, []any{"[PHONE]"}}},
		{"pii object", MaskPII, map[string]any{"to": "a@b.de", "n": 2.0, "in": map[string]any{"card": "4111111111111111"}},
			map[string]any{"to": "[EMAIL]", "n": 2.0, "in": map[string]any{"card": "[CARD]"}}},
		{"pii string list", MaskPII, []string{"a@b.de", "x"}, []string{"[EMAIL]", "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MaskValue(tt.kind, tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("MaskValue(%s, %#v) = %#v, want %#v", tt.kind, tt.in, got, tt.want)
			}
		})
	}

	in := map[string]any{"to": "a@b.de", "l": []any{"b@c.de"}}
	MaskValue(MaskPII, in)
	if want := (map[string]any{"to": "a@b.de", "l": []any{"b@c.de"}}); !reflect.DeepEqual(in, want) {
		t.Errorf("MaskValue modified its input: %v", in)
	}
}

var hashPattern = regexp.MustCompile(`^h:[0-9a-f]{12}$`)

// maskSeeds are FuzzMask's seeds; internal/pii has the patterns' own table.
var maskSeeds = []string{
	"", "Total due: 120.50 EUR within 30 days.", "meet @ noon", "to a@b.de",
	"Pay to DE89 3704 0044 0532 0130 00 by Friday", "Call +44 20 7946 0958 today",
	"card 4111 1111 1111 1111 exp 12/27", "+1000000000 4111111111111111", "\xff a@b.de \xfe",
	"Grüße, Jürgen — jürgen@example.de? 4111111111111111€",
}

// FuzzMask checks that masking never panics and keeps its promises on any
// text: hashes have their form, redact hides everything, and pii output is
// UTF-8 when the input is, leaves no personal data behind (a second Mask
// changes nothing), and is the same inside lists and objects.
func FuzzMask(f *testing.F) {
	for _, s := range maskSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if h, _ := MaskValue(MaskHash, s).(string); !hashPattern.MatchString(h) {
			t.Fatalf("hash(%q) = %q", s, h)
		}
		if got := MaskValue(MaskRedact, s); got != "[REDACTED]" {
			t.Fatalf("redact(%q) = %q", s, got)
		}
		out, _ := MaskValue(MaskPII, s).(string)
		if utf8.ValidString(s) && !utf8.ValidString(out) {
			t.Fatalf("pii(%q) = %q, not UTF-8", s, out)
		}
		if again := pii.Mask(out); again != out {
			t.Fatalf("pii(%q) = %q still holds personal data: masked again %q", s, out, again)
		}
		l, _ := MaskValue(MaskPII, []any{s, map[string]any{"k": s}}).([]any)
		if len(l) != 2 {
			t.Fatalf("pii of a list of two = %#v", l)
		}
		if m, _ := l[1].(map[string]any); l[0] != out || m["k"] != out {
			t.Fatalf("pii of a list holding %q = %#v", s, l)
		}
	})
}
