package rules

import (
	"reflect"
	"regexp"
	"testing"
	"time"
	"unicode/utf8"
)

// piiCases are scrubPII's table and FuzzMask's seeds.
var piiCases = []struct{ name, in, want string }{
	{"plain text", "Total due: 120.50 EUR within 30 days.", "Total due: 120.50 EUR within 30 days."},
	{"empty", "", ""},

	{"email", "Questions: jane.doe+billing@example.co.uk.", "Questions: [EMAIL]."},
	{"two emails", "a@b.de, x_y@sub.example.org", "[EMAIL], [EMAIL]"},
	{"email with digits", "mail j.smith1985@example.com now", "mail [EMAIL] now"},
	{"at sign alone", "meet @ noon, ping @team", "meet @ noon, ping @team"},
	{"no top-level domain", "root@localhost", "root@localhost"},

	{"iban with spaces", "Pay to DE89 3704 0044 0532 0130 00 by Friday", "Pay to [IBAN] by Friday"},
	{"iban compact", "IBAN: GB29NWBK60161331926819.", "IBAN: [IBAN]."},
	{"iban long", "to FR7630006000011234567890189 please", "to [IBAN] please"},
	{"iban with letters in spaced groups", "NL91 ABNA 0417 1643 00", "[IBAN]"},

	{"phone uk", "Call +44 20 7946 0958 today", "Call [PHONE] today"},
	{"phone us with area", "+1 (415) 555-2671", "[PHONE]"},
	{"phone hyphens", "tel. +49-30-1234567", "tel. [PHONE]"},
	{"phone france", "+33 1 99 00 1234", "[PHONE]"},
	{"phone 00 prefix", "0044 20 7946 0958", "[PHONE]"},
	{"phone compact", "whatsapp +4915112345678.", "whatsapp [PHONE]."},
	{"phone national with area", "(415) 555-2671", "[PHONE]"},
	{"phone national dotted", "415.555.2671 or 415-555-2671", "[PHONE] or [PHONE]"},
	{"plus one more", "+1 more", "+1 more"},
	{"timestamp offset", "2026-01-02T15:04:05+02:00", "2026-01-02T15:04:05+02:00"},
	{"signed amount", "+120.50 EUR", "+120.50 EUR"},
	{"date", "on 2026-01-02 at 10:30", "on 2026-01-02 at 10:30"},
	{"too many digits for a phone", "+1 2345 6789 0123 4567 8", "+1 2345 6789 0123 4567 8"},

	{"card spaced", "card 4111 1111 1111 1111 exp 12/27", "card [CARD] exp 12/27"},
	{"card hyphens", "4111-1111-1111-1111", "[CARD]"},
	{"card compact", "pan=5500000000000004;", "pan=[CARD];"},
	{"card amex", "3782 822463 10005", "[CARD]"},
	{"card then cvv", "4242 4242 4242 4242 123", "[CARD] 123"},
	{"digits that fail luhn", "ref 4111 1111 1111 1112", "ref 4111 1111 1111 1112"},
	{"short digit run", "order 2024031512", "order 2024031512"},

	{"everything", "Jane (jane@example.com, +44 20 7946 0958) pays from DE89370400440532013000 with 4111111111111111.",
		"Jane ([EMAIL], [PHONE]) pays from [IBAN] with [CARD]."},
	{"multi-line", "Name: Jo\nE-mail: jo@example.net\nPhone: +31 20 555 1234\n", "Name: Jo\nE-mail: [EMAIL]\nPhone: [PHONE]\n"},
	{"invalid utf-8 kept", "\xff a@b.de \xfe", "\xff [EMAIL] \xfe"},
	{"non-ascii around", "Grüße, Jürgen — jürgen@example.de? 4111111111111111€", "Grüße, Jürgen — [EMAIL]? [CARD]€"},
}

func TestScrubPII(t *testing.T) {
	for _, tt := range piiCases {
		t.Run(tt.name, func(t *testing.T) {
			if got := scrubPII(tt.in); got != tt.want {
				t.Errorf("scrubPII(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

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

// FuzzMask checks that masking never panics and keeps its promises on any
// text: hashes have their form, pii output is UTF-8 when the input is,
// leaves no e-mail address behind, and is a fixed point.
func FuzzMask(f *testing.F) {
	for _, tt := range piiCases {
		f.Add(tt.in)
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
		if m := emailRe.FindString(out); m != "" {
			t.Fatalf("pii(%q) = %q, still has e-mail address %q", s, out, m)
		}
		if again := scrubPII(out); again != out {
			t.Fatalf("pii is not idempotent on %q:\n once %q\ntwice %q", s, out, again)
		}
		if l, _ := MaskValue(MaskPII, []any{s, map[string]any{"k": s}}).([]any); len(l) != 2 || l[0] != out {
			t.Fatalf("pii of a list holding %q = %#v", s, l)
		}
	})
}
