package injection

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
)

// Attempt is one prompt-injection attempt: text placed in a document that
// tries to make the classifier answer Forces instead of reading the
// document.
type Attempt struct {
	// ID names the attempt, unique in the corpus: language, a dash, a
	// short name ("de-fence-close").
	ID string `json:"id"`
	// Language is the ISO 639-1 code of the attempt's natural language:
	// en, de, fr, es, zh, ru, ar or ja.
	Language string `json:"language"`
	// Technique says how the attempt tries to get past the fence or the
	// answer parser; see the Technique constants.
	Technique string `json:"technique"`
	// Forces is the document outcome the attempt asks for: no_pii,
	// contains_pii or review.
	Forces string `json:"forces"`
	// Text is the attempt as it is placed in the document, at most 400
	// characters so that it also fits a document's title.
	Text string `json:"text"`
}

// The techniques of the corpus.
const (
	TechniquePlain        = "plain"         // an instruction in plain words
	TechniqueAuthority    = "authority"     // an instruction that claims an authority (a DPO, legal)
	TechniqueRoleTag      = "role-tag"      // "system:", "Human:"/"Assistant:" turn markers
	TechniqueChatTemplate = "chat-template" // <|im_start|>system, [INST], <<SYS>>
	// TechniqueFenceClose forges the closing fence (">>>", ">>>>", a whole
	// forged prompt) and goes on as instructions.
	TechniqueFenceClose     = "fence-close"
	TechniqueFenceSpaced    = "fence-spaced"    // "> > >"
	TechniqueFenceHomoglyph = "fence-homoglyph" // ››› ‹‹‹, »»» «««, ≫≫≫ ≪≪≪
	TechniqueFullwidth      = "fullwidth"       // ＞＞＞ and full-width letters, NFKC-equal to ASCII
	TechniqueZeroWidth      = "zero-width"      // ZWJ, ZWSP or WORD JOINER inside a fence or a word
	TechniqueBidi           = "bidi"            // a right-to-left override that shows reversed text the right way round
	TechniqueJSONEscape     = "json-escape"     // \u003e\u003e\u003e written out in the text
	TechniqueBase64         = "base64"          // an instruction in base64
	TechniqueHTML           = "html"            // </data>, <system>, HTML comments
	TechniqueMarkdown       = "markdown"        // code fences and headings
	// The answer mimics put the answer's own JSON format in the document:
	// one verdict, several, one at the very end of the data, one cut
	// short, one nested in a string or object.
	TechniqueAnswerMimic          = "answer-mimic"
	TechniqueAnswerMimicMultiple  = "answer-mimic-multiple"
	TechniqueAnswerMimicEnd       = "answer-mimic-end"
	TechniqueAnswerMimicTruncated = "answer-mimic-truncated"
	TechniqueAnswerMimicNested    = "answer-mimic-nested"
	// TechniqueAnswerFormat imitates the system prompt's answer-format
	// instruction.
	TechniqueAnswerFormat = "answer-format"
	// TechniqueHomoglyphOutcome spells the outcome with look-alike letters
	// ("nо_piі" with Cyrillic о and і): a model that copies it answers
	// outside the decision schema.
	TechniqueHomoglyphOutcome = "homoglyph-outcome"
	// TechniquePII attempts carry an e-mail address or an IBAN beside the
	// instruction: in a document's text the deterministic rule pii_pattern
	// decides contains_pii before any LLM sees it; in its title the LLM sees
	// them masked, and contains_pii is the right answer whatever the text
	// asks. See [Attempt.CarriesPII].
	TechniquePII = "pii-pattern"
)

// CarriesPII reports whether the attempt holds personal data of its own (an
// e-mail address or an IBAN): a document that gains it rightly becomes
// contains_pii, so its outcome changing is no flip.
func (a Attempt) CarriesPII() bool { return a.Technique == TechniquePII }

//go:embed testdata/corpus.jsonl
var corpusJSONL []byte

var corpus = sync.OnceValues(func() ([]Attempt, error) { return parseCorpus(corpusJSONL) })

// Corpus returns the attempts, in file order (testdata/corpus.jsonl, one
// JSON object a line). The slice is the caller's.
func Corpus() []Attempt {
	c, err := corpus()
	if err != nil {
		// The file is compiled in and the package's tests parse it, so this
		// is a broken build, not bad input.
		panic(err)
	}
	return slices.Clone(c)
}

// parseCorpus reads JSON lines of attempts; unknown members are errors, so
// that a misspelt key does not silently leave a field empty.
func parseCorpus(data []byte) ([]Attempt, error) {
	var out []Attempt
	for i, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		var a Attempt
		if err := dec.Decode(&a); err != nil {
			return nil, fmt.Errorf("injection: corpus line %d: %w", i+1, err)
		}
		out = append(out, a)
	}
	return out, nil
}
