package rules

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
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
		// printf dev-1 | openssl dgst -sha256 -hmac 'triage rules test key, not secret'
		{"hash string", MaskHash, "dev-1", "h:b1d14ef641a72bd17781fc0568d2493e"},
		{"hash number", MaskHash, 7200.5, "h:617f14fe01c01a3e01c4abe52d0d2739"}, // of its JSON, 7200.5
		{"hash int equals hash of float", MaskHash, int64(7), MaskValue(MaskHash, 7.0, testKey)},
		{"hash nil", MaskHash, nil, MaskValue(MaskHash, nil, testKey)},
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
		// An object's keys are the sender's text as much as its values.
		{"pii object keys", MaskPII, map[string]any{"a@b.de": 1.0, "c@d.de": 2.0, "[EMAIL]": 3.0, "ok": 4.0},
			map[string]any{"[EMAIL]": 3.0, "[EMAIL] (2)": 1.0, "[EMAIL] (3)": 2.0, "ok": 4.0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MaskValue(tt.kind, tt.in, testKey); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("MaskValue(%s, %#v) = %#v, want %#v", tt.kind, tt.in, got, tt.want)
			}
		})
	}

	in := map[string]any{"to": "a@b.de", "l": []any{"b@c.de"}}
	MaskValue(MaskPII, in, testKey)
	if want := (map[string]any{"to": "a@b.de", "l": []any{"b@c.de"}}); !reflect.DeepEqual(in, want) {
		t.Errorf("MaskValue modified its input: %v", in)
	}
}

func TestNewMaskKey(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	if _, err := NewMaskKey(secret[:31]); err == nil || err.Error() != "rules: mask key: want at least 32 bytes, got 31" {
		t.Errorf("NewMaskKey(31 bytes) = %v, want an error", err)
	}
	k, err := NewMaskKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	before := MaskValue(MaskHash, "acct-1", k)
	secret[0] = 'X' // the key is a copy
	if got := MaskValue(MaskHash, "acct-1", k); got != before {
		t.Errorf("changing the secret after NewMaskKey changed the pseudonym: %v, then %v", before, got)
	}
	// Printed as it is, or inside a struct (where fmt does not call String).
	for _, v := range []any{k, Sampling{key: k}} {
		for _, format := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
			if got := fmt.Sprintf(format, v); strings.Contains(got, "456789") || strings.Contains(got, "343536") ||
				strings.Contains(got, "52 53 54") {
				t.Errorf("Sprintf(%s, %T) = %s, shows the secret", format, v, got)
			}
		}
	}
}

// TestMaskKeyPseudonyms checks what a pseudonym depends on: the value and
// the key, nothing else.
func TestMaskKeyPseudonyms(t *testing.T) {
	other := newMaskKey([]byte("another key of thirty-two bytes!"))
	r1, r2 := RandomMaskKey(), RandomMaskKey()
	tests := []struct {
		name       string
		a, b       any
		same       bool
		keyA, keyB MaskKey
	}{
		{"same value, same key", "dev-1", "dev-1", true, testKey, testKey},
		{"same value, same random key", "dev-1", "dev-1", true, r1, r1},
		{"other value", "dev-1", "dev-2", false, testKey, testKey},
		{"other key", "dev-1", "dev-1", false, testKey, other},
		{"two random keys", "dev-1", "dev-1", false, r1, r2},
	}
	for _, tt := range tests {
		a, b := MaskValue(MaskHash, tt.a, tt.keyA), MaskValue(MaskHash, tt.b, tt.keyB)
		if (a == b) != tt.same {
			t.Errorf("%s: %v and %v, want same = %v", tt.name, a, b, tt.same)
		}
	}
}

var hashPattern = regexp.MustCompile(`^h:[0-9a-f]{32}$`)

// maskSeeds are FuzzMask's seeds; internal/pii has the patterns' own table.
var maskSeeds = []string{
	"", "Total due: 120.50 EUR within 30 days.", "meet @ noon", "to a@b.de",
	"Pay to DE89 3704 0044 0532 0130 00 by Friday", "Call +44 20 7946 0958 today",
	"card 4111 1111 1111 1111 exp 12/27", "+1000000000 4111111111111111", "\xff a@b.de \xfe",
	"Grüße, Jürgen — jürgen@example.de? 4111111111111111€",
}

// FuzzMask checks that masking never panics and keeps its promises on any
// text: hashes have their form (and redact without a key), redact hides
// everything, and pii output is
// UTF-8 when the input is, leaves no personal data behind (a second Mask
// changes nothing), and is the same inside lists and objects.
func FuzzMask(f *testing.F) {
	for _, s := range maskSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if h, _ := MaskValue(MaskHash, s, testKey).(string); !hashPattern.MatchString(h) {
			t.Fatalf("hash(%q) = %q", s, h)
		}
		if got := MaskValue(MaskHash, s, MaskKey{}); got != "[REDACTED]" {
			t.Fatalf("hash(%q) without a key = %q, want it redacted", s, got)
		}
		if got := MaskValue(MaskRedact, s, testKey); got != "[REDACTED]" {
			t.Fatalf("redact(%q) = %q", s, got)
		}
		out, _ := MaskValue(MaskPII, s, testKey).(string)
		if utf8.ValidString(s) && !utf8.ValidString(out) {
			t.Fatalf("pii(%q) = %q, not UTF-8", s, out)
		}
		if again := pii.Mask(out); again != out {
			t.Fatalf("pii(%q) = %q still holds personal data: masked again %q", s, out, again)
		}
		l, _ := MaskValue(MaskPII, []any{s, map[string]any{"k": s}}, testKey).([]any)
		if len(l) != 2 {
			t.Fatalf("pii of a list of two = %#v", l)
		}
		if m, _ := l[1].(map[string]any); l[0] != out || m["k"] != out {
			t.Fatalf("pii of a list holding %q = %#v", s, l)
		}
	})
}
