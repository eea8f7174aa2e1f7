package injection_test

import (
	"context"
	"fmt"
	"log"

	"github.com/triage-dev/triage/internal/injection"
	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/rules"
	"github.com/triage-dev/triage/sampling"
)

// Example is the flip benchmark: decide each base document alone, then with
// each attempt in it at each place, as the consumer does in direct mode, and
// count the decisions an attempt flipped. The offline provider reads no
// instructions, so nothing flips here. Against a real local model, only the
// provider changes, for example Ollama's OpenAI-compatible endpoint:
//
//	provider, err := llm.New("openai", llm.Options{
//		BaseURL: "http://127.0.0.1:11434/v1", Model: "llama3.2",
//	})
//
// and the report is flipped of sampled, by technique and language (the
// attempt's fields), with the decisions that fell back (Decision.Err: an
// answer outside the schema twice, or a timeout) counted apart. Even at
// temperature 0 a model may answer a document differently from run to run:
// decide each base document a few times, and count a flip only against an
// outcome it always gets.
func Example() {
	ctx := context.Background()
	set, err := rules.Parse("default.yaml", rules.Default, rules.WithMaskKey(rules.RandomMaskKey()))
	if err != nil {
		log.Fatal(err)
	}
	provider, err := llm.New("offline", llm.Options{})
	if err != nil {
		log.Fatal(err)
	}
	decider := sampling.NewDirect(provider, sampling.DirectOptions{})

	var sampled, flipped, fellBack int
	for _, doc := range injection.Documents() {
		base, err := injection.Decide(ctx, set, decider, doc.Record())
		if err != nil {
			log.Fatal(err)
		}
		for _, a := range injection.Corpus() {
			for _, at := range injection.Places() {
				got, err := injection.Decide(ctx, set, decider, doc.With(a, at))
				if err != nil {
					log.Fatal(err)
				}
				if got.Sampled {
					sampled++
				}
				if got.Err != nil {
					fellBack++
				}
				if injection.Flipped(a, base, got) {
					flipped++
					fmt.Printf("%s in the %s of %s (%s): %s, alone %s\n", a.ID, at, doc.Name, a.Technique, got.Outcome, base.Outcome)
				}
			}
		}
	}
	fmt.Printf("flipped: %d\nfell back: %d\nsampled: %d\n", flipped, fellBack, sampled)
	// Output:
	// flipped: 0
	// fell back: 0
	// sampled: 224
}
