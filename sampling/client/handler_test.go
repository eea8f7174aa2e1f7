package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/sampling/client"
	"github.com/triage-dev/triage/sampling/work"
)

// TestHandlerOffline runs the handler against the offline scorer: the answer
// is one JSON object naming one of the request's outcomes, from a model that
// says it is not an LLM, with usage in _meta.
func TestHandlerOffline(t *testing.T) {
	p, err := llm.New("offline", llm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := client.Handler(p, nil)
	outcomes := []string{"contains_pii", "no_pii"}
	req := &mcp.CreateMessageRequest{Params: &mcp.CreateMessageParams{
		SystemPrompt: "Does the document contain personal data?",
		Messages:     []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: "Contact: jane.doe@example.com, IBAN DE89370400440532013000"}}},
		MaxTokens:    64,
		Metadata:     map[string]any{"event_id": "d1", "outcomes": outcomes},
	}}
	res, err := h(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Role != "assistant" || !strings.Contains(res.Model, "not an LLM") || res.StopReason == "" {
		t.Fatalf("result %+v", res)
	}
	var answer struct{ Outcome string }
	if err := json.Unmarshal([]byte(res.Content.(*mcp.TextContent).Text), &answer); err != nil {
		t.Fatal(err)
	}
	if answer.Outcome != "contains_pii" {
		t.Fatalf("outcome %q, want contains_pii", answer.Outcome)
	}
	if in, out, ok := work.UsageFromMeta(res.Meta); !ok || in <= 0 || out <= 0 {
		t.Fatalf("usage %d, %d, %v", in, out, ok)
	}

	again, err := h(context.Background(), req)
	if err != nil || !reflect.DeepEqual(again, res) {
		t.Fatalf("same request, different answer: %+v, %v", again, err)
	}

	req.Params.Messages = append(req.Params.Messages, &mcp.SamplingMessage{Role: "user", Content: &mcp.ImageContent{MIMEType: "image/png"}})
	if _, err := h(context.Background(), req); !errors.Is(err, work.ErrUnsupported) {
		t.Fatalf("image: err = %v, want ErrUnsupported", err)
	}
}
