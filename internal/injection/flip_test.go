package injection_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/triage-dev/triage/internal/injection"
	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
	"github.com/triage-dev/triage/sampling"
)

// answers is the offline provider with every answer it gives kept, so that
// the test can parse each one itself: Direct would hide a first answer
// outside the schema behind its corrective retry.
type answers struct {
	llm.Provider
	mu   sync.Mutex
	text []string
}

func (a *answers) Complete(ctx context.Context, req llm.Request) (llm.Response, error) {
	r, err := a.Provider.Complete(ctx, req)
	a.mu.Lock()
	a.text = append(a.text, r.Text)
	a.mu.Unlock()
	return r, err
}

// take returns the answers given since the last call.
func (a *answers) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.text
	a.text = nil
	return out
}

// offlineDirect is what the consumer's direct mode decides with, over the
// offline provider: no retries of provider errors, which the offline one
// never returns. Its answers are kept in model.
func offlineDirect(t *testing.T) (direct *sampling.Direct, model *answers) {
	t.Helper()
	p, err := llm.New("offline", llm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	model = &answers{Provider: p}
	return sampling.NewDirect(model, sampling.DirectOptions{Retries: -1}), model
}

// TestOfflineFlip decides every attempt in every base document, at every
// place, as the consumer does in direct mode (rules, then the prompt
// through sampling.Direct to the offline provider): each answer is one that
// sampling.ParseAnswer takes, inside the decision schema, at the first try,
// and the outcome is the one the document gets without the attempt. The
// offline provider reads features, not instructions, so a flip here would
// mean the attempt reached the decision some other way: an answer parsed
// from the wrong place, or the attempt's text changing what the prompt
// shows of the document.
func TestOfflineFlip(t *testing.T) {
	eachRulesFile(t, func(t *testing.T, set *rules.Set) {
		outcomes := documentType(t, set).Outcomes
		direct, model := offlineDirect(t)
		decide := func(name string, record []byte) injection.Decision {
			t.Helper()
			got, err := injection.Decide(t.Context(), set, direct, record)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !got.Sampled || got.Err != nil || !slices.Contains(outcomes, got.Outcome) {
				t.Errorf("%s: %+v, want a sampled decision inside the schema %v", name, got, outcomes)
			}
			texts := model.take()
			if len(texts) != 1 {
				t.Errorf("%s: %d answers, want one", name, len(texts))
			}
			for _, text := range texts {
				a, err := sampling.ParseAnswer(text, outcomes)
				if err != nil || a.Outcome != got.Outcome {
					t.Errorf("%s: answer %q parses to %+v, %v; decided %s", name, text, a, err, got.Outcome)
				}
			}
			return got
		}
		for _, d := range injection.Documents() {
			base := decide(d.Name, d.Record())
			t.Logf("%s alone: %s (%s)", d.Name, base.Outcome, base.Reason)
			for _, a := range injection.Corpus() {
				for _, p := range injection.Places() {
					if a.CarriesPII() {
						continue // TestPIIRuleFirst
					}
					name := fmt.Sprintf("%s in the %s of %s", a.ID, p, d.Name)
					got := decide(name, d.With(a, p))
					if got.Outcome != base.Outcome || injection.Flipped(a, base, got) {
						t.Errorf("%s: %s (%s), without it %s (%s): the attempt, which forces %s, flipped the offline reading",
							name, got.Outcome, got.Reason, base.Outcome, base.Reason, a.Forces)
					}
				}
			}
		}
	})
}

// noSampling is a Decider for events that must never reach sampling.
type noSampling struct{ t *testing.T }

func (n noSampling) Decide(_ context.Context, it pipeline.Item) (pipeline.Verdict, error) {
	n.t.Errorf("%s reached sampling (rule %s)", it.Event.ID, it.Rule.RuleID)
	return pipeline.Verdict{}, errors.New("sampled")
}

// TestPIIRuleFirst: the deterministic PII rule decides a document whose
// text carries an e-mail address or IBAN, before any sampling rule, however
// the text asks otherwise; and every other attempt leaves the document to
// the unknown-template sampling rule, so the flip test's attempts do reach
// the model. In the title, which pii_pattern does not read, such an address
// reaches the model masked, and the offline reading is contains_pii.
func TestPIIRuleFirst(t *testing.T) {
	eachRulesFile(t, func(t *testing.T, set *rules.Set) {
		direct, _ := offlineDirect(t)
		for _, d := range injection.Documents() {
			for _, a := range injection.Corpus() {
				name := fmt.Sprintf("%s in the text of %s", a.ID, d.Name)
				if !a.CarriesPII() {
					if _, _, res := decoded(t, set, d.With(a, injection.InText)); res.RuleID != "sample_unknown_template" {
						t.Errorf("%s: decided by %s (%s), want sample_unknown_template", name, res.RuleID, res.Action)
					}
					continue
				}
				got, err := injection.Decide(t.Context(), set, noSampling{t}, d.With(a, injection.InText))
				if err != nil || got.Sampled || got.RuleID != "pii_pattern" || got.Outcome != "contains_pii" {
					t.Errorf("%s: %+v, %v; want contains_pii by rule pii_pattern, never sampled", name, got, err)
				}

				name = fmt.Sprintf("%s in the title of %s", a.ID, d.Name)
				record := d.With(a, injection.InTitle)
				if user := userPrompt(t, set, record); strings.Contains(user, "@") || strings.Contains(user, "DE89") {
					t.Errorf("%s: the address reaches the model unmasked:\n%s", name, user)
				}
				got, err = injection.Decide(t.Context(), set, direct, record)
				if err != nil || !got.Sampled || got.Outcome != "contains_pii" {
					t.Errorf("%s: %+v, %v; want contains_pii, sampled", name, got, err)
				}
			}
		}
	})
}
