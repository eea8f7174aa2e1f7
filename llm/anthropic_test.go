package llm_test

import (
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/triage-dev/triage/llm"
)

// anthropicReply is a Messages API response as the API sends it.
func anthropicReply(model, stopReason, content string) reply {
	return reply{status: http.StatusOK, body: `{
		"id": "msg_01XFDUDYJgAACzvnptvVoYEL",
		"type": "message",
		"role": "assistant",
		"model": "` + model + `",
		"content": ` + content + `,
		"stop_reason": "` + stopReason + `",
		"stop_sequence": null,
		"usage": {"input_tokens": 112, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 30,
		          "output_tokens": 19, "service_tier": "standard"}
	}`}
}

func TestAnthropicComplete(t *testing.T) {
	answer := `[{"type": "text", "text": "{\"outcome\":\"review\"}"}]`
	tests := []struct {
		name     string
		opts     llm.Options
		req      llm.Request
		reply    reply
		wantBody map[string]any // top-level fields of the request body
		want     llm.Response
	}{{
		name: "all fields, model from hint",
		req: llm.Request{
			System: "You are a fraud analyst.",
			Messages: []llm.Message{
				{Role: llm.RoleUser, Text: "amount: 7000"},
				{Role: llm.RoleAssistant, Text: "not JSON"},
				{Role: llm.RoleUser, Text: "Answer with JSON only."},
			},
			Preferences: llm.Preferences{Hints: []string{"gpt-5", "claude-3-5-Sonnet"}},
			Temperature: ptr(0.2),
			MaxTokens:   64,
			Stop:        []string{"\n\n"},
			Metadata:    map[string]any{"event_id": "e1"},
		},
		reply: anthropicReply("claude-sonnet-4-6", "stop_sequence", answer),
		wantBody: map[string]any{
			"model":      "claude-sonnet-4-6",
			"max_tokens": 64.0,
			"system":     []any{map[string]any{"type": "text", "text": "You are a fraud analyst."}},
			"messages": []any{
				map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": "amount: 7000"}}},
				map[string]any{"role": "assistant", "content": []any{map[string]any{"type": "text", "text": "not JSON"}}},
				map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": "Answer with JSON only."}}},
			},
			"stop_sequences": []any{"\n\n"},
		},
		want: llm.Response{Text: `{"outcome":"review"}`, Model: "claude-sonnet-4-6", StopReason: llm.StopSequence,
			InputTokens: 142, OutputTokens: 19},
	}, {
		name: "defaults, large model by priority, thinking block skipped",
		req: llm.Request{
			Messages: []llm.Message{{Role: llm.RoleUser, Text: "hi"}},
			Preferences: llm.Preferences{
				IntelligencePriority: ptr(0.9), CostPriority: ptr(0.3), SpeedPriority: ptr(0.5),
			},
		},
		reply: anthropicReply("claude-sonnet-4-6", "max_tokens",
			`[{"type": "thinking", "thinking": "hmm", "signature": "c2ln"}, {"type": "text", "text": "{\"outc"}]`),
		wantBody: map[string]any{
			"model":      llm.AnthropicLarge,
			"max_tokens": float64(llm.DefaultMaxTokens),
			"messages":   []any{map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": "hi"}}}},
		},
		want: llm.Response{Text: `{"outc`, Model: "claude-sonnet-4-6", StopReason: llm.StopMaxTokens,
			InputTokens: 142, OutputTokens: 19},
	}, {
		name: "schema as structured output",
		req: llm.Request{
			Messages: []llm.Message{{Role: llm.RoleUser, Text: "hi"}},
			Schema:   llm.AnswerSchema([]string{"allow", "review"}),
		},
		reply: anthropicReply("claude-sonnet-4-6", "end_turn", answer),
		wantBody: map[string]any{
			"model":         llm.AnthropicSmall,
			"max_tokens":    float64(llm.DefaultMaxTokens),
			"messages":      []any{map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": "hi"}}}},
			"output_config": map[string]any{"format": map[string]any{"type": "json_schema", "schema": wireSchema("allow", "review")}},
		},
		want: llm.Response{Text: `{"outcome":"review"}`, Model: "claude-sonnet-4-6", StopReason: llm.StopEndTurn,
			InputTokens: 142, OutputTokens: 19},
	}, {
		name: "fixed model overrides hints; unknown stop reason passes through",
		opts: llm.Options{Model: "claude-opus-5-5"},
		req: llm.Request{
			Messages:    []llm.Message{{Role: llm.RoleUser, Text: "hi"}},
			Preferences: llm.Preferences{Hints: []string{"haiku"}},
		},
		reply: anthropicReply("claude-opus-5-5", "refusal", `[]`),
		wantBody: map[string]any{
			"model":      "claude-opus-5-5",
			"max_tokens": float64(llm.DefaultMaxTokens),
			"messages":   []any{map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": "hi"}}}},
		},
		want: llm.Response{Model: "claude-opus-5-5", StopReason: "refusal", InputTokens: 142, OutputTokens: 19},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeAPI(t, tt.reply)
			o := tt.opts
			o.APIKey, o.BaseURL = "sk-ant-test", srv.URL
			if got := complete(t, "anthropic", o, tt.req); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("response = %+v\nwant       %+v", got, tt.want)
			}
			// The body never carries temperature (2026-10-21 rejects it)
			// nor metadata (triage's, not the API's).
			r := srv.check(t, "/v1/messages", tt.wantBody)
			// SDK v2 speaks API version 2026-10-21 and sends the key as a
			// bearer token (the API takes it as well as x-api-key).
			for k, want := range map[string]string{
				"Authorization":     "Bearer sk-ant-test",
				"Anthropic-Version": "2026-10-21",
				"Content-Type":      "application/json",
			} {
				if got := r.header.Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestAnthropicErrors(t *testing.T) {
	testStatusErrors(t, "anthropic", []statusCase{
		{http.StatusTooManyRequests, map[string]string{"Retry-After": "7"}, "rate_limit_error", true, 7 * time.Second},
		{http.StatusInternalServerError, nil, "api_error", true, 0},
		{529, nil, "overloaded_error", true, 0},
		{http.StatusBadRequest, nil, "invalid_request_error", false, 0},
		{http.StatusUnauthorized, nil, "authentication_error", false, 0},
		{http.StatusNotFound, nil, "not_found_error", false, 0},
	}, func(addr string) llm.Options {
		return llm.Options{APIKey: "k", BaseURL: addr}
	}, func(kind string) string {
		return `{"type": "error", "error": {"type": "` + kind + `", "message": "test says no"},
			"request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}`
	})
}

func TestAnthropicUnreachable(t *testing.T) {
	assertRefused(t, "anthropic", llm.Options{APIKey: "k"})
}

func TestAnthropicCancel(t *testing.T) {
	srv, arrived := blockingAPI(t)
	p, err := llm.New("anthropic", llm.Options{APIKey: "k", BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	assertCancel(t, p, arrived)
}

// historyTool is a tool as triage offers it, its schema as JSON decodes it.
var historyTool = llm.Tool{
	Name:        "transaction_history",
	Description: "Recent transactions of the account under decision.",
	InputSchema: map[string]any{
		"type":                 "object",
		"properties":           map[string]any{"limit": map[string]any{"type": "integer"}},
		"required":             []any{"limit"},
		"additionalProperties": false,
	},
}

// toolConversation is a tool loop's second round: the model called the
// tool, the server answered.
var toolConversation = []llm.Message{
	{Role: llm.RoleUser, Text: "Transactions in the last 24 hours: 45."},
	{Role: llm.RoleAssistant, Text: "Let me look.", ToolCalls: []llm.ToolCall{
		{ID: "toolu_01A", Name: "transaction_history", Input: map[string]any{"limit": 10.0}},
		{ID: "toolu_01B", Name: "transaction_history"},
	}},
	{Role: llm.RoleUser, ToolResults: []llm.ToolResult{
		{CallID: "toolu_01A", Content: `{"transactions":[{"amount":12}]}`},
		{CallID: "toolu_01B", Content: "limit is required", IsError: true},
	}},
}

func TestAnthropicTools(t *testing.T) {
	tests := []struct {
		name     string
		req      llm.Request
		reply    reply
		wantBody map[string]any
		want     llm.Response
	}{{
		name: "tools, tool blocks and schema go out; a tool_use answer comes back",
		req: llm.Request{
			Messages:   toolConversation,
			Tools:      []llm.Tool{historyTool, {Name: "document_metadata"}},
			ToolChoice: llm.ToolChoiceRequired,
			Schema:     llm.AnswerSchema([]string{"allow", "review"}),
		},
		reply: anthropicReply("claude-sonnet-4-6", "tool_use", `[
			{"type": "text", "text": "Checking the history."},
			{"type": "tool_use", "id": "toolu_01C", "name": "transaction_history", "input": {"limit": 5}}]`),
		wantBody: map[string]any{
			"model":      llm.AnthropicSmall,
			"max_tokens": float64(llm.DefaultMaxTokens),
			"messages": []any{
				map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": "Transactions in the last 24 hours: 45."}}},
				map[string]any{"role": "assistant", "content": []any{
					map[string]any{"type": "text", "text": "Let me look."},
					map[string]any{"type": "tool_use", "id": "toolu_01A", "name": "transaction_history", "input": map[string]any{"limit": 10.0}},
					map[string]any{"type": "tool_use", "id": "toolu_01B", "name": "transaction_history", "input": map[string]any{}},
				}},
				map[string]any{"role": "user", "content": []any{
					map[string]any{"type": "tool_result", "tool_use_id": "toolu_01A", "is_error": false,
						"content": []any{map[string]any{"type": "text", "text": `{"transactions":[{"amount":12}]}`}}},
					map[string]any{"type": "tool_result", "tool_use_id": "toolu_01B", "is_error": true,
						"content": []any{map[string]any{"type": "text", "text": "limit is required"}}},
				}},
			},
			"tools": []any{
				map[string]any{"name": "transaction_history", "description": "Recent transactions of the account under decision.",
					"input_schema": map[string]any{"type": "object", "properties": map[string]any{"limit": map[string]any{"type": "integer"}},
						"required": []any{"limit"}, "additionalProperties": false}},
				map[string]any{"name": "document_metadata", "input_schema": map[string]any{"type": "object"}},
			},
			"tool_choice":   map[string]any{"type": "any"},
			"output_config": map[string]any{"format": map[string]any{"type": "json_schema", "schema": wireSchema("allow", "review")}},
		},
		want: llm.Response{Text: "Checking the history.", Model: "claude-sonnet-4-6", StopReason: llm.StopToolUse,
			ToolCalls:   []llm.ToolCall{{ID: "toolu_01C", Name: "transaction_history", Input: map[string]any{"limit": 5.0}}},
			InputTokens: 142, OutputTokens: 19},
	}, {
		name: "tool choice none; the answer after the tool results is text",
		req: llm.Request{
			Messages:   toolConversation[:1],
			Tools:      []llm.Tool{{Name: "t", Description: "d", InputSchema: map[string]any{"type": "object"}}},
			ToolChoice: llm.ToolChoiceNone,
		},
		reply: anthropicReply("claude-sonnet-4-6", "end_turn", `[{"type": "text", "text": "{\"outcome\":\"review\"}"}]`),
		wantBody: map[string]any{
			"model":      llm.AnthropicSmall,
			"max_tokens": float64(llm.DefaultMaxTokens),
			"messages": []any{
				map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": "Transactions in the last 24 hours: 45."}}},
			},
			"tools":       []any{map[string]any{"name": "t", "description": "d", "input_schema": map[string]any{"type": "object"}}},
			"tool_choice": map[string]any{"type": "none"},
		},
		want: llm.Response{Text: `{"outcome":"review"}`, Model: "claude-sonnet-4-6", StopReason: llm.StopEndTurn,
			InputTokens: 142, OutputTokens: 19},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeAPI(t, tt.reply)
			got := complete(t, "anthropic", llm.Options{APIKey: "k", BaseURL: srv.URL}, tt.req)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("response = %+v\nwant       %+v", got, tt.want)
			}
			srv.check(t, "/v1/messages", tt.wantBody)
		})
	}
}
