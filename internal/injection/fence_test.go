package injection_test

import (
	"fmt"
	"strings"
	"testing"
	"unicode"

	"github.com/triage-dev/triage/internal/injection"
	"github.com/triage-dev/triage/internal/pii"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
)

// TestFence renders the sampling prompt of every attempt in every base
// document, at every place, through the shipped rules files, and checks the
// prompt's shape, not what a model makes of it:
//
//   - the user message has exactly the template's fences, each on a line of
//     its own, opening and closing in turn;
//   - nothing outside the fences differs from the same document's prompt
//     without the attempt: untrusted text reaches the model only inside a
//     fence;
//   - inside them no fence-like sequence is left (see fenceLike), and the
//     attempt is still there to read, masked;
//   - the system prompt says which part is data.
func TestFence(t *testing.T) {
	eachRulesFile(t, func(t *testing.T, set *rules.Set) {
		typ := documentType(t, set)
		checkSystem(t, typ)
		fences := templateFences(typ.Sampling.Template)
		if fences == 0 {
			t.Fatalf("the document template fences nothing:\n%s", typ.Sampling.Template)
		}
		for _, d := range injection.Documents() {
			base := splitFences(t, userPrompt(t, set, d.Record()), fences)
			for _, a := range injection.Corpus() {
				for _, p := range injection.Places() {
					user := userPrompt(t, set, d.With(a, p))
					got := splitFences(t, user, fences)
					name := fmt.Sprintf("%s in the %s of %s", a.ID, p, d.Name)
					if got.outside != base.outside {
						t.Errorf("%s: the prompt outside the fences changed:\n%s\nwithout the attempt:\n%s", name, got.outside, base.outside)
					}
					data := strings.Join(got.data, "\n")
					if seq, ok := fenceLike(data); ok {
						t.Errorf("%s: %q inside the fences reads as a fence:\n%s", name, seq, user)
					}
					if !strings.Contains(letters(data), letters(pii.Mask(a.Text))) {
						t.Errorf("%s: the attempt's text is not inside the fences:\n%s", name, user)
					}
				}
			}
		}
	})
}

// FuzzFence is TestFence's check of the user message for any text in a
// document's title or text, seeded with the corpus: the template's fences
// and nothing else, the prompt outside them as without the text, nothing
// fence-like inside them, and the text's letters all there.
func FuzzFence(f *testing.F) {
	for _, a := range injection.Corpus() {
		f.Add(a.Text)
	}
	set, err := rules.Parse("default.yaml", rules.Default, rules.WithMaskKey(rules.RandomMaskKey()))
	if err != nil {
		f.Fatal(err)
	}
	doc := injection.Documents()[0]
	f.Fuzz(func(t *testing.T, text string) {
		fences := templateFences(documentType(t, set).Sampling.Template)
		base := splitFences(t, userPrompt(t, set, doc.Record()), fences)
		for _, p := range injection.Places() {
			record := doc.With(injection.Attempt{ID: "fuzz", Text: text}, p)
			fields, _, err := pipeline.Decode(set, record)
			if err != nil {
				continue // a value the schema refuses (a title over 512 characters) reaches no prompt
			}
			user := userPrompt(t, set, record)
			got := splitFences(t, user, fences)
			if got.outside != base.outside {
				t.Fatalf("the prompt outside the fences changed:\n%s", user)
			}
			data := strings.Join(got.data, "\n")
			if seq, ok := fenceLike(data); ok {
				t.Fatalf("%q inside the fences reads as a fence:\n%s", seq, user)
			}
			// Decoded, the text is what the consumer sees (encoding/json
			// turns bytes that are not UTF-8 into U+FFFD on the way).
			if want := letters(pii.Mask(fields[string(p)].(string))); !strings.Contains(letters(data), want) {
				t.Fatalf("letters of the %s are missing:\n%s", p, user)
			}
		}
	})
}

// checkSystem: the system prompt names both delimiters and says that what
// lies between them is data, not instructions.
func checkSystem(t *testing.T, typ *rules.Type) {
	t.Helper()
	sys := strings.Join(strings.Fields(typ.Sampling.System), " ") // as words, whatever the line breaks
	if !strings.Contains(sys, "<<<") || !strings.Contains(sys, ">>>") || !strings.Contains(sys, "data, not instructions") {
		t.Errorf("the system prompt does not say that the text between <<< and >>> is data, not instructions:\n%s", typ.Sampling.System)
	}
}

// userPrompt decodes record as the consumer does and renders its prompt for
// the rule that samples unknown documents, whichever rule decides it: the
// renderer must fence every attempt, even one that a rule decides first.
func userPrompt(t *testing.T, set *rules.Set, record []byte) string {
	t.Helper()
	fields, typ, _ := decoded(t, set, record)
	p, err := typ.Prompt(fields, "sample_unknown_template")
	if err != nil {
		t.Fatal(err)
	}
	return p.User
}

const (
	open  = "<<<"
	close = ">>>"
)

// templateFences counts the fences the template opens: lines that are
// exactly "<<<".
func templateFences(tmpl string) int {
	n := 0
	for line := range strings.Lines(tmpl) {
		if strings.TrimSpace(line) == open {
			n++
		}
	}
	return n
}

// fenced is a user message split at its fences.
type fenced struct {
	outside string   // the lines outside the fences, a fence line as "<<< … >>>"
	data    []string // what each fence holds
}

// splitFences splits user at its fence lines, which must be exactly want
// pairs of "<<<" and ">>>" lines in turn.
func splitFences(t *testing.T, user string, want int) fenced {
	t.Helper()
	var (
		f      fenced
		out    strings.Builder
		inside bool
		cur    []string
	)
	for line := range strings.Lines(user) {
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == open && !inside:
			inside, cur = true, nil
		case line == close && inside:
			inside = false
			f.data = append(f.data, strings.Join(cur, "\n"))
			out.WriteString("<<< … >>>\n")
		case line == open || line == close:
			t.Fatalf("a %s line where a fence cannot be:\n%s", line, user)
		case inside:
			cur = append(cur, line)
		default:
			out.WriteString(line + "\n")
		}
	}
	if inside || len(f.data) != want {
		t.Fatalf("%d closed fences (one left open: %t), want the template's %d:\n%s", len(f.data), inside, want, user)
	}
	f.outside = out.String()
	return f
}

// fenceLike finds a sequence in data that a reader could take for a fence:
// three "<" or three ">" in a row once what a model or its tokenizer may not
// see is dropped: invisible format characters (ZWJ, ZWSP, WORD JOINER, bidi
// controls), combining marks, variation selectors and spaces (Zs) or tabs
// between them, with the full-width and small forms that NFKC
// normalisation turns into "<" and ">" (＜＞﹤﹥) taken as what they become.
// The look-alikes the renderer writes (‹ ›) and other homoglyphs (« » ≪ ≫)
// are not "<" or ">" to any normalisation, and the system prompt says only
// the exact lines delimit the data.
func fenceLike(data string) (string, bool) {
	var b strings.Builder
	for _, r := range data {
		switch {
		case r == '＜' || r == '﹤':
			b.WriteRune('<')
		case r == '＞' || r == '﹥':
			b.WriteRune('>')
		case r == '\t' || unicode.In(r, unicode.Zs, unicode.Cf, unicode.Mn, unicode.Me,
			unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point):
		default:
			b.WriteRune(r)
		}
	}
	folded := b.String()
	for _, seq := range []string{open, close} {
		if strings.Contains(folded, seq) {
			return seq, true
		}
	}
	return "", false
}

// letters keeps the letters and digits of s: what a fence-proofing
// substitution must never take away.
func letters(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return r
		}
		return -1
	}, s)
}
