package sampling_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
	"github.com/triage-dev/triage/sampling"
	"github.com/triage-dev/triage/sampling/work"
)

func ExampleParseAnswer() {
	a, err := sampling.ParseAnswer("Sure:\n```json\n{\"outcome\": \"review\", \"reason\": \"new device\", \"score\": 0.7}\n```",
		[]string{"allow", "review", "block"})
	fmt.Println(a.Outcome, a.Reason, *a.Score, err)

	_, err = sampling.ParseAnswer(`{"outcome": "approve"}`, []string{"allow", "review", "block"})
	fmt.Println(err)
	// Output:
	// review new device 0.7 <nil>
	// outcome "approve" is not one of allow, review, block
}

// Example_pull connects a sampler (a go-sdk client whose sampling handler
// stands in for a model) to the pool over the SDK's in-memory transport; the
// sampler pulls the item through the work tool and the pool's Decide
// returns its answer.
func Example_pull() {
	ctx := context.Background()
	set, err := rules.Load("testdata/rules.yaml")
	if err != nil {
		panic(err)
	}
	typ, _ := set.Type("payment")
	fields := map[string]any{"event_id": "ev-1", "type": "payment", "tenant_id": "t", "occurred_at": "2026-11-26T10:00:00Z",
		"account_id": "a-1", "amount": 5000.0, "country": "NG"}
	if err := typ.Validate(fields); err != nil {
		panic(err)
	}

	pool := sampling.NewPool(sampling.Options{Logger: slog.New(slog.DiscardHandler)})
	defer pool.Close()
	ct, st := mcp.NewInMemoryTransports()
	if _, err := pool.Server().Connect(ctx, st, nil); err != nil {
		panic(err)
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "example-sampler"}, &mcp.ClientOptions{
		CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Model: "stand-in", Role: "assistant",
				Content: &mcp.TextContent{Text: `{"outcome":"review","reason":"large amount, high-risk country"}`}}, nil
		},
	})
	cs, err := client.Connect(ctx, ct, nil)
	if err != nil {
		panic(err)
	}
	defer cs.Close()
	go func() { // one pull: take the item, answer it
		_, _ = cs.CallTool(ctx, &mcp.CallToolParams{Name: work.ToolName})
	}()

	v, err := pool.Decide(ctx, pipeline.Item{
		Event: pipeline.Event{ID: "ev-1", Type: "payment", Fields: fields},
		Type:  typ,
		Rule:  rules.Result{Type: "payment", RuleID: "default", Action: rules.ActionSample},
	})
	fmt.Println(v.Outcome, v.Path, v.Model, v.Attempts[0].Mode, err)
	// Output: review sampled stand-in pull <nil>
}
