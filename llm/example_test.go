package llm_test

import (
	"context"
	"fmt"
	"log"

	"github.com/triage-dev/triage/llm"
)

// The offline provider decides without any model: demos, tests and
// benchmarks get a deterministic, explained answer in the same JSON shape a
// model is asked for.
func Example_offline() {
	p, err := llm.New("offline", llm.Options{})
	if err != nil {
		log.Fatal(err)
	}
	resp, err := p.Complete(context.Background(), llm.Request{
		System: "Decide whether the document contains personal data.",
		Messages: []llm.Message{{
			Role: llm.RoleUser,
			Text: "title: Onboarding\ntext: Welcome aboard! Questions? Write to jane.doe@example.com",
		}},
		Metadata: map[string]any{
			"event_id": "doc-42",
			"type":     "document",
			"outcomes": []string{"no_pii", "contains_pii", "review"},
			"fallback": "review",
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Model)
	fmt.Println(resp.Text)
	fmt.Println(resp.StopReason)
	// Output:
	// offline-scorer (deterministic, not an LLM)
	// {"outcome":"contains_pii","reason":"features: email","score":0.7}
	// endTurn
}
