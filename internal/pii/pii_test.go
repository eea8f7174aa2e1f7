package pii

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// maskCases are Mask's table and FuzzMask's seeds.
var maskCases = []struct{ name, in, want string }{
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
	{"phone run into a card", "+1000000000 4111111111111111", "[PHONE] [CARD]"},
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
	{"placeholders kept", "write to [EMAIL] or call [PHONE]", "write to [EMAIL] or call [PHONE]"},
}

func TestMask(t *testing.T) {
	for _, tt := range maskCases {
		t.Run(tt.name, func(t *testing.T) {
			if got := Mask(tt.in); got != tt.want {
				t.Errorf("Mask(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestKinds(t *testing.T) {
	tests := []struct {
		name, in string
		want     []Kind
	}{
		{"none", "Total due: 120.50 EUR within 30 days.", nil},
		{"email", "Contact: jane.doe@example.com", []Kind{Email}},
		{"iban, not also a phone or card", "Pay to DE89 3704 0044 0532 0130 00 by Friday", []Kind{IBAN}},
		{"phone", "Call me on +49 30 1234567 after six", []Kind{Phone}},
		{"card", "card 4111 1111 1111 1111 exp 12/27", []Kind{Card}},
		{"not luhn, not a card", "ref 4111 1111 1111 1112", nil},
		{"in the kinds' order", "4111111111111111, +44 20 7946 0958, a@b.de", []Kind{Email, Phone, Card}},
		{"placeholders", "Call [PHONE] or write to [EMAIL]; card [CARD]", []Kind{Email, Phone, Card}},
		{"placeholder and raw", "[IBAN] and GB29NWBK60161331926819", []Kind{IBAN}},
		{"a lower-case marker is text", "[email] [iban]", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Kinds(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Kinds(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestPlaceholder(t *testing.T) {
	want := map[Kind]string{Email: "[EMAIL]", IBAN: "[IBAN]", Phone: "[PHONE]", Card: "[CARD]"}
	for _, k := range kinds {
		if got := k.Placeholder(); got != want[k] {
			t.Errorf("%s.Placeholder() = %q, want %q", k, got, want[k])
		}
	}
}

// FuzzMask checks that Mask never panics and keeps its promises on any
// text: its output is UTF-8 when the input is, holds no e-mail address, is
// a fixed point, and Kinds finds in the output what it found in the input.
func FuzzMask(f *testing.F) {
	for _, tt := range maskCases {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Mask(s)
		if utf8.ValidString(s) && !utf8.ValidString(out) {
			t.Fatalf("Mask(%q) = %q, not UTF-8", s, out)
		}
		if m := emailRe.FindString(out); m != "" {
			t.Fatalf("Mask(%q) = %q, still has e-mail address %q", s, out, m)
		}
		if again := Mask(out); again != out {
			t.Fatalf("Mask is not idempotent on %q:\n once %q\ntwice %q", s, out, again)
		}
		in, masked := Kinds(s), Kinds(out)
		for _, k := range in {
			if !strings.Contains(out, k.Placeholder()) {
				t.Fatalf("Kinds(%q) has %s, but Mask's output %q has no %s", s, k, out, k.Placeholder())
			}
		}
		if !reflect.DeepEqual(in, masked) {
			t.Fatalf("Kinds(%q) = %v, but Kinds of its masked form %q = %v", s, in, out, masked)
		}
	})
}
