package llm_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/triage-dev/triage/llm"
)

// The offline scorer's tools, as triage's server offers them.
var (
	historyOffer  = llm.Tool{Name: llm.HistoryTool, InputSchema: map[string]any{"type": "object"}}
	metadataOffer = llm.Tool{Name: llm.MetadataTool, InputSchema: map[string]any{"type": "object"}}
)

// borderline is a rendered transaction with 45 transactions in the day:
// without more evidence it is allowed (45 > 40 alone scores 0.2).
var borderline = renderedTransaction("120.00", "DE", "DE", 400, 0, 45, "100.00")

// toolRequest is a request as triage sends it, offering tools.
func toolRequest(text string, outcomes []string, tools ...llm.Tool) llm.Request {
	return llm.Request{
		System:   "Decide.",
		Messages: []llm.Message{{Role: llm.RoleUser, Text: text}},
		Metadata: map[string]any{"event_id": "e1", "type": "t", "outcomes": outcomes, "fallback": "review"},
		Tools:    tools,
	}
}

// withResult continues req's conversation with call and its result.
func withResult(req llm.Request, call llm.ToolCall, content string, isError bool) llm.Request {
	req.Messages = append(slices.Clone(req.Messages),
		llm.Message{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{call}},
		llm.Message{Role: llm.RoleUser, ToolResults: []llm.ToolResult{{CallID: call.ID, Content: content, IsError: isError}}})
	return req
}

func offlineComplete(t *testing.T, req llm.Request) llm.Response {
	t.Helper()
	p, err := llm.New("offline", llm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.Complete(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestOfflineToolCall(t *testing.T) {
	tests := []struct {
		name string
		req  llm.Request
		want string // the tool called; "" = an answer, the same as without tools
	}{
		{"borderline velocity, history offered", toolRequest(borderline, transactionOutcomes, metadataOffer, historyOffer), llm.HistoryTool},
		{"velocity at the band's low end", toolRequest(renderedTransaction("120.00", "DE", "DE", 400, 0, 30, "100.00"), transactionOutcomes, historyOffer), llm.HistoryTool},
		{"velocity at the band's high end", toolRequest(renderedTransaction("120.00", "DE", "DE", 400, 0, 60, "100.00"), transactionOutcomes, historyOffer), llm.HistoryTool},
		{"velocity below the band", toolRequest(renderedTransaction("120.00", "DE", "DE", 400, 0, 29, "100.00"), transactionOutcomes, historyOffer), ""},
		{"velocity above the band", toolRequest(renderedTransaction("120.00", "DE", "DE", 400, 0, 61, "100.00"), transactionOutcomes, historyOffer), ""},
		{"history not offered", toolRequest(borderline, transactionOutcomes, metadataOffer), ""},
		{"tool choice none", func() llm.Request {
			r := toolRequest(borderline, transactionOutcomes, historyOffer)
			r.ToolChoice = llm.ToolChoiceNone
			return r
		}(), ""},
		{"tool choice required, not borderline", func() llm.Request {
			r := toolRequest(renderedTransaction("120.00", "DE", "DE", 400, 0, 3, "100.00"), transactionOutcomes, historyOffer)
			r.ToolChoice = llm.ToolChoiceRequired
			return r
		}(), llm.HistoryTool},
		{"unknown template, metadata offered", toolRequest("Document of 10 bytes.\nMetadata:\n<<<\nTitle: x\nType: text/plain\nTemplate: unknown\n>>>",
			documentOutcomes, historyOffer, metadataOffer), llm.MetadataTool},
		{"known template", toolRequest("Document of 10 bytes.\nMetadata:\n<<<\nTemplate: invoice_v2\n>>>", documentOutcomes, metadataOffer), ""},
		{"ticket schema has no tool", toolRequest("urgent: Transactions in the last 24 hours: 45", ticketOutcomes, historyOffer, metadataOffer), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := offlineComplete(t, tt.req)
			if tt.want == "" {
				plain := tt.req
				plain.Tools, plain.ToolChoice = nil, ""
				if want := offlineComplete(t, plain); !reflect.DeepEqual(got, want) {
					t.Errorf("response = %+v\nwant the one without tools %+v", got, want)
				}
				return
			}
			if got.StopReason != llm.StopToolUse || got.Text != "" || len(got.ToolCalls) != 1 || got.ToolCalls[0].Name != tt.want {
				t.Fatalf("response = %+v, want one call of %s", got, tt.want)
			}
			if got.InputTokens <= 0 || got.OutputTokens <= 0 {
				t.Errorf("tokens %d in, %d out", got.InputTokens, got.OutputTokens)
			}
			// The same event gets the same call id; another event another.
			if again := offlineComplete(t, tt.req); !reflect.DeepEqual(again, got) {
				t.Errorf("same request, different call: %+v, %+v", again, got)
			}
			other := tt.req
			other.Metadata = map[string]any{"event_id": "e2", "outcomes": tt.req.Metadata["outcomes"]}
			if id := offlineComplete(t, other).ToolCalls[0].ID; id == got.ToolCalls[0].ID {
				t.Errorf("events e1 and e2 share the call id %s", id)
			}
		})
	}
	call := offlineComplete(t, toolRequest(borderline, transactionOutcomes, historyOffer)).ToolCalls[0]
	if want := map[string]any{"limit": 10}; !reflect.DeepEqual(call.Input, want) {
		t.Errorf("history input = %v, want %v", call.Input, want)
	}
	// A smaller maximum in the tool's schema (as JSON decodes it) bounds
	// the limit: the server would refuse more.
	small := llm.Tool{Name: llm.HistoryTool, InputSchema: map[string]any{"type": "object",
		"properties": map[string]any{"limit": map[string]any{"type": "integer", "maximum": 5.0}}}}
	call = offlineComplete(t, toolRequest(borderline, transactionOutcomes, small)).ToolCalls[0]
	if want := map[string]any{"limit": 5}; !reflect.DeepEqual(call.Input, want) {
		t.Errorf("history input with maximum 5 = %v, want %v", call.Input, want)
	}
}

func TestOfflineToolResults(t *testing.T) {
	call := llm.ToolCall{ID: "call_1", Name: llm.HistoryTool, Input: map[string]any{"limit": 10.0}}
	doc := "Document of 10 bytes.\nMetadata:\n<<<\nTemplate: unknown\n>>>\nText:\n<<<\nMinutes of the meeting\n>>>"
	docCall := llm.ToolCall{ID: "call_2", Name: llm.MetadataTool}
	tests := []struct {
		name    string
		req     llm.Request
		outcome string
		reason  string // a substring of the reason
	}{
		{"several amounts above the average lean to review",
			withResult(toolRequest(borderline, transactionOutcomes, historyOffer), call,
				`{"transactions":[{"amount":150},{"amount":99},{"amount":400.5},{"amount":101},{"amount":20}]}`, false),
			"review", "features: 45 transactions in 24h, history above the average; used transaction_history: 3 of 5 past amounts above the average"},
		{"a history within the average decides as before",
			withResult(toolRequest(borderline, transactionOutcomes, historyOffer), call,
				`{"transactions":[{"amount":150},{"amount":99},{"amount":80}]}`, false),
			"allow", "features: 45 transactions in 24h; used transaction_history: 1 of 3 past amounts above the average"},
		{"a failed call decides as before",
			withResult(toolRequest(borderline, transactionOutcomes, historyOffer), call, "account not in scope", true),
			"allow", "transaction_history failed: account not in scope"},
		{"the consumer's events, newest first",
			withResult(toolRequest(borderline, transactionOutcomes, historyOffer), call,
				`{"events":[{"amount":150,"currency":"EUR"},{"amount":101},{"amount":400.5},{"merchant":"x"}],"count":4}`, false),
			"review", "used transaction_history: 3 of 4 past amounts above the average"},
		{"an empty history decides as before",
			withResult(toolRequest(borderline, transactionOutcomes, historyOffer), call, `{"events":[],"count":0}`, false),
			"allow", "used transaction_history: 0 of 0 past amounts above the average"},
		{"a JSON result of another shape decides as before",
			withResult(toolRequest(borderline, transactionOutcomes, historyOffer), call, `{"rows":[{"amount":500}]}`, false),
			"allow", "transaction_history result unreadable"},
		{"an unreadable result decides as before",
			withResult(toolRequest(borderline, transactionOutcomes, historyOffer), call, "<html>", false),
			"allow", "transaction_history result unreadable"},
		{"document metadata with personal data",
			withResult(toolRequest(doc, documentOutcomes, metadataOffer), docCall, `{"author":"[EMAIL]","pages":2}`, false),
			"contains_pii", "features: email; used document_metadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := offlineComplete(t, tt.req)
			if resp.StopReason != llm.StopEndTurn || len(resp.ToolCalls) != 0 {
				t.Fatalf("response = %+v, want an answer and no second call", resp)
			}
			var a offlineAnswer
			decode(t, resp.Text, &a)
			if a.Outcome != tt.outcome || !strings.Contains(a.Reason, tt.reason) {
				t.Errorf("answer %s, want outcome %q, reason containing %q", resp.Text, tt.outcome, tt.reason)
			}
			// The tool parts count towards the input tokens.
			in := len("Decide.") + len(tt.req.Messages[0].Text) + len(tt.req.Messages[2].ToolResults[0].Content) + len(call.Name)
			if resp.InputTokens < int64(in/4) {
				t.Errorf("input tokens %d, want at least %d", resp.InputTokens, in/4)
			}
			// A corrective round after the loop still reads the result.
			again := tt.req
			again.Messages = append(slices.Clone(tt.req.Messages),
				llm.Message{Role: llm.RoleAssistant, Text: "hm"}, llm.Message{Role: llm.RoleUser, Text: "Answer with JSON."})
			var b offlineAnswer
			decode(t, offlineComplete(t, again).Text, &b)
			if b.Outcome != a.Outcome || !strings.Contains(b.Reason, tt.reason) {
				t.Errorf("corrective round: %+v, want %+v", b, a)
			}
		})
	}
}

func TestToolRequestInvalid(t *testing.T) {
	user := llm.Message{Role: llm.RoleUser, Text: "hi"}
	tests := []struct {
		name string
		req  llm.Request
	}{
		{"tool calls from the user", llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, ToolCalls: []llm.ToolCall{{ID: "a", Name: "t"}}}}}},
		{"tool results from the assistant", llm.Request{Messages: []llm.Message{user, {Role: llm.RoleAssistant, ToolResults: []llm.ToolResult{{CallID: "a"}}}}}},
		{"tool call without id", llm.Request{Messages: []llm.Message{user, {Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{Name: "t"}}}}}},
		{"tool result without call id", llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, ToolResults: []llm.ToolResult{{Content: "x"}}}}}},
		{"tool without name", llm.Request{Messages: []llm.Message{user}, Tools: []llm.Tool{{Description: "d"}}}},
		{"unknown tool choice", llm.Request{Messages: []llm.Message{user}, Tools: []llm.Tool{historyOffer}, ToolChoice: "any"}},
	}
	for _, provider := range []string{"offline", "openai", "anthropic"} {
		p, err := llm.New(provider, llm.Options{APIKey: "k", BaseURL: "http://127.0.0.1:9/v1"})
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range tests {
			t.Run(provider+"/"+tt.name, func(t *testing.T) {
				_, err := p.Complete(t.Context(), tt.req)
				e := assertStatusError(t, err, provider, 0, false)
				if !strings.Contains(e.Error(), "invalid request") {
					t.Errorf("error %v is not an invalid request", e)
				}
			})
		}
	}
}

// decode reads an offline answer: exactly one JSON object of its fields.
func decode(t *testing.T, text string, a *offlineAnswer) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(a); err != nil || dec.More() {
		t.Fatalf("answer %q is not one JSON object: %v", text, err)
	}
}
