package rules

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

// TestMayHaveIBAN: the pre-check never says no where the shipped IBAN
// pattern matches (it may say yes where it does not), over chosen cases
// and random texts built from the characters that matter.
func TestMayHaveIBAN(t *testing.T) {
	iban := regexp.MustCompile(`\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b`)
	for s, want := range map[string]bool{
		"": false, "DE89": true, "pay to DE89 3704 0044 0532 0130 00": true, "ABC12": true, "AB1C12": false,
		"AB1CD12": true, "A1B2": false, "ab12": false, "Ab12": false, "AB 12": false, "xxAB12": true,
	} {
		if got := MayHaveIBAN(s); got != want {
			t.Errorf("MayHaveIBAN(%q) = %v, want %v", s, got, want)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := "AB01AB01 é"
	matched := 0
	for range 200000 {
		b := make([]byte, 0, 40)
		for range 14 + rng.IntN(26) {
			b = append(b, alphabet[rng.IntN(len(alphabet))])
		}
		s := string(b)
		if !iban.MatchString(s) {
			continue
		}
		matched++
		if !MayHaveIBAN(s) {
			t.Fatalf("the IBAN pattern matches %q, MayHaveIBAN says no", s)
		}
	}
	if matched < 100 {
		t.Fatalf("only %d random texts match the pattern: the property is barely tested", matched)
	}
}
