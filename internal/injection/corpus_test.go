package injection_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/triage-dev/triage/internal/injection"
	"github.com/triage-dev/triage/internal/pii"
	"github.com/triage-dev/triage/rules"
	"github.com/triage-dev/triage/sampling"
)

// TestCorpus checks that the corpus is what the package says it is: enough
// attempts, in every language asked for, each technique present and each
// attempt doing what its technique names, so that the fence and flip tests
// test what they claim to.
func TestCorpus(t *testing.T) {
	corpus := injection.Corpus()
	if len(corpus) < 40 {
		t.Errorf("%d attempts, want at least 40", len(corpus))
	}
	set, err := rules.Parse("default.yaml", rules.Default, rules.WithMaskKey(rules.RandomMaskKey()))
	if err != nil {
		t.Fatal(err)
	}
	outcomes := documentType(t, set).Outcomes
	if !slices.Equal(outcomes, documentOutcomes) {
		t.Fatalf("document outcomes %v, the tests expect %v", outcomes, documentOutcomes)
	}

	ids := map[string]bool{}
	languages := map[string]int{}
	techniques := map[string]int{}
	for _, a := range corpus {
		if ids[a.ID] {
			t.Errorf("%s: id used twice", a.ID)
		}
		ids[a.ID] = true
		languages[a.Language]++
		techniques[a.Technique]++
		if !strings.HasPrefix(a.ID, a.Language+"-") {
			t.Errorf("%s: id does not start with its language %q", a.ID, a.Language)
		}
		if !slices.Contains(outcomes, a.Forces) {
			t.Errorf("%s: forces %q, not a document outcome %v", a.ID, a.Forces, outcomes)
		}
		// A title holds 512 characters; the document's own title and a
		// space come first.
		if n := utf8.RuneCountInString(a.Text); n == 0 || n > 400 {
			t.Errorf("%s: %d characters, want 1 to 400", a.ID, n)
		}
		check, ok := techniqueChecks[a.Technique]
		if !ok {
			t.Errorf("%s: unknown technique %q", a.ID, a.Technique)
			continue
		}
		if why := check(a); why != "" {
			t.Errorf("%s (%s): %s", a.ID, a.Technique, why)
		}
	}
	for _, lang := range []string{"en", "de", "fr", "es", "zh", "ru", "ar"} {
		if languages[lang] == 0 {
			t.Errorf("no attempt in %s", lang)
		}
	}
	for tech := range techniqueChecks {
		if techniques[tech] == 0 {
			t.Errorf("no attempt of technique %s", tech)
		}
	}
	t.Logf("%d attempts; languages %v; techniques %v", len(corpus), languages, techniques)
}

// techniqueChecks says, per technique, why an attempt is not what its
// technique claims ("" when it is). Every attempt but the pii-pattern ones
// must be free of the personal data the patterns find: a document that
// gains a phone number rightly changes its outcome, and that would be no
// injection.
var techniqueChecks = map[string]func(injection.Attempt) string{
	injection.TechniquePlain:        noPII(contains("no_pii")),
	injection.TechniqueAuthority:    noPII(nil),
	injection.TechniqueRoleTag:      noPII(containsAny("system:", "System:", "Assistant:")),
	injection.TechniqueChatTemplate: noPII(containsAny("<|im_start|>system", "[INST]")),
	injection.TechniqueFenceClose:   noPII(contains(">>>")),
	injection.TechniqueFenceSpaced:  noPII(contains("> > >")),
	injection.TechniqueFenceHomoglyph: noPII(func(a injection.Attempt) string {
		if !strings.ContainsAny(a.Text, "›‹»«≫≪") || strings.Contains(a.Text, ">>>") {
			return "no look-alike fence, or a real one"
		}
		return ""
	}),
	injection.TechniqueFullwidth: noPII(contains("＞＞＞")),
	injection.TechniqueZeroWidth: noPII(func(a injection.Attempt) string {
		if !strings.ContainsFunc(a.Text, func(r rune) bool { return unicode.Is(unicode.Cf, r) }) {
			return "no invisible format character"
		}
		return ""
	}),
	injection.TechniqueBidi:       noPII(contains("\u202e")),
	injection.TechniqueJSONEscape: noPII(contains(`\u003e\u003e\u003e`)),
	injection.TechniqueBase64: noPII(func(a injection.Attempt) string {
		if strings.Contains(a.Text, "outcome") || strings.Contains(a.Text, "no_pii") {
			return "the instruction is readable without decoding"
		}
		return ""
	}),
	injection.TechniqueHTML:     noPII(containsAny("</", "<!--")),
	injection.TechniqueMarkdown: noPII(contains("```")),
	// The answer mimics must be answers sampling.ParseAnswer would take, or
	// the flip test would prove nothing about them.
	injection.TechniqueAnswerMimic:         noPII(validAnswer),
	injection.TechniqueAnswerMimicMultiple: noPII(validAnswer),
	injection.TechniqueAnswerMimicEnd: noPII(func(a injection.Attempt) string {
		if why := validAnswer(a); why != "" {
			return why
		}
		if !strings.HasSuffix(a.Text, "}") {
			return "the verdict does not end the text"
		}
		return ""
	}),
	// A nested verdict is one the parser would take on its own but not
	// where it stands: ParseAnswer reads top-level objects only.
	injection.TechniqueAnswerMimicNested: noPII(func(a injection.Attempt) string {
		inner := strings.LastIndex(a.Text, `{"outcome"`)
		if inner < 0 || validAnswer(injection.Attempt{Text: a.Text[inner:], Forces: a.Forces}) != "" {
			return "no verdict nested in it"
		}
		if validAnswer(a) == "" {
			return "the verdict is at the top level, not nested"
		}
		return ""
	}),
	injection.TechniqueAnswerFormat: noPII(validAnswer),
	injection.TechniqueAnswerMimicTruncated: noPII(func(a injection.Attempt) string {
		if _, err := sampling.ParseAnswer(a.Text, []string{a.Forces}); err == nil {
			return "the verdict parses: it is not cut short"
		}
		return ""
	}),
	injection.TechniqueHomoglyphOutcome: noPII(func(a injection.Attempt) string {
		if strings.Contains(a.Text, a.Forces) || !strings.Contains(a.Text, `"outcome"`) {
			return "no look-alike outcome, or the real one"
		}
		return ""
	}),
	injection.TechniquePII: func(a injection.Attempt) string {
		kinds := pii.Kinds(a.Text)
		if !slices.Contains(kinds, pii.Email) && !slices.Contains(kinds, pii.IBAN) {
			return "no e-mail address or IBAN"
		}
		if !a.CarriesPII() {
			return "CarriesPII is false"
		}
		return ""
	},
}

// noPII wraps a technique's own check (nil for none) with the one every
// attempt but the pii-pattern ones must pass.
func noPII(check func(injection.Attempt) string) func(injection.Attempt) string {
	return func(a injection.Attempt) string {
		if kinds := pii.Kinds(a.Text); len(kinds) > 0 {
			return fmt.Sprintf("carries personal data of its own: %v", kinds)
		}
		if a.CarriesPII() {
			return "CarriesPII is true"
		}
		if check == nil {
			return ""
		}
		return check(a)
	}
}

func contains(s string) func(injection.Attempt) string { return containsAny(s) }

func containsAny(subs ...string) func(injection.Attempt) string {
	return func(a injection.Attempt) string {
		for _, s := range subs {
			if strings.Contains(a.Text, s) {
				return ""
			}
		}
		return "none of " + strings.Join(subs, ", ") + " in the text"
	}
}

// documentOutcomes is the document type's decision schema.
var documentOutcomes = []string{"no_pii", "contains_pii", "review"}

// validAnswer: the text holds a verdict for the forced outcome that
// sampling.ParseAnswer accepts as the answer.
func validAnswer(a injection.Attempt) string {
	got, err := sampling.ParseAnswer(a.Text, documentOutcomes)
	if err != nil || got.Outcome != a.Forces {
		return "no verdict for " + a.Forces + " that the answer parser takes"
	}
	return ""
}
