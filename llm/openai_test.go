package llm_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage/llm"
)

// openaiReply is a Chat Completions response as the API sends it.
func openaiReply(model, finishReason, content string) reply {
	return reply{status: http.StatusOK, body: `{
		"id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
		"object": "chat.completion",
		"created": 1764190000,
		"model": "` + model + `",
		"choices": [{
			"index": 0,
			"message": {"role": "assistant", "content": ` + content + `, "refusal": null, "annotations": []},
			"logprobs": null,
			"finish_reason": "` + finishReason + `"
		}],
		"usage": {"prompt_tokens": 57, "completion_tokens": 11, "total_tokens": 68,
		          "prompt_tokens_details": {"cached_tokens": 0}},
		"service_tier": "default",
		"system_fingerprint": "fp_44709d6fcb"
	}`}
}

// schemaRequest asks for an answer that follows a decision schema.
var schemaRequest = llm.Request{
	Messages: []llm.Message{{Role: llm.RoleUser, Text: "hi"}},
	Schema:   llm.AnswerSchema([]string{"allow", "review"}),
}

// wireSchema is llm.AnswerSchema for outcomes as JSON decodes it: what a
// provider must find in the request body.
func wireSchema(outcomes ...string) map[string]any {
	b, err := json.Marshal(llm.AnswerSchema(outcomes))
	if err != nil {
		panic(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	return m
}

func TestOpenAIComplete(t *testing.T) {
	tests := []struct {
		name       string
		opts       llm.Options
		basePath   string // BaseURL under the fake server; "" = the public API, redirected
		req        llm.Request
		reply      reply
		wantAuth   string
		wantBody   map[string]any
		wantResult llm.Response
	}{{
		name:     "compatible server: all fields, model from hint, max_tokens",
		opts:     llm.Options{APIKey: "sk-test"},
		basePath: "/v1",
		req: llm.Request{
			System: "You are a fraud analyst.",
			Messages: []llm.Message{
				{Role: llm.RoleUser, Text: "amount: 7000"},
				{Role: llm.RoleAssistant, Text: "not JSON"},
				{Role: llm.RoleUser, Text: "Answer with JSON only."},
			},
			Preferences: llm.Preferences{Hints: []string{"claude-3-haiku"}},
			Temperature: ptr(0.2),
			MaxTokens:   64,
			Stop:        []string{"\n\n", "END"},
			Metadata:    map[string]any{"event_id": "e1"},
		},
		reply:    openaiReply("gpt-4o-mini-2024-07-18", "stop", `"{\"outcome\":\"allow\"}"`),
		wantAuth: "Bearer sk-test",
		wantBody: map[string]any{
			"model": "gpt-4o-mini",
			"messages": []any{
				map[string]any{"role": "system", "content": "You are a fraud analyst."},
				map[string]any{"role": "user", "content": "amount: 7000"},
				map[string]any{"role": "assistant", "content": "not JSON"},
				map[string]any{"role": "user", "content": "Answer with JSON only."},
			},
			"max_tokens":  64.0,
			"temperature": 0.2,
			"stop":        []any{"\n\n", "END"},
		},
		wantResult: llm.Response{Text: `{"outcome":"allow"}`, Model: "gpt-4o-mini-2024-07-18",
			StopReason: llm.StopEndTurn, InputTokens: 57, OutputTokens: 11},
	}, {
		name:     "Ollama: no key, fixed model, length",
		opts:     llm.Options{Model: "llama3.2"},
		basePath: "/v1",
		req: llm.Request{
			Messages:    []llm.Message{{Role: llm.RoleUser, Text: "hi"}},
			Preferences: llm.Preferences{Hints: []string{"sonnet"}},
		},
		reply: openaiReply("llama3.2", "length", `"{\"outc"`),
		wantBody: map[string]any{
			"model":      "llama3.2",
			"messages":   []any{map[string]any{"role": "user", "content": "hi"}},
			"max_tokens": float64(llm.DefaultMaxTokens),
		},
		wantResult: llm.Response{Text: `{"outc`, Model: "llama3.2", StopReason: llm.StopMaxTokens,
			InputTokens: 57, OutputTokens: 11},
	}, {
		name:     "schema as json_schema, strict (the default)",
		basePath: "/v1",
		req:      schemaRequest,
		reply:    openaiReply("m", "stop", `"{}"`),
		wantBody: map[string]any{
			"model":      llm.OpenAISmall,
			"messages":   []any{map[string]any{"role": "user", "content": "hi"}},
			"max_tokens": float64(llm.DefaultMaxTokens),
			"response_format": map[string]any{"type": "json_schema", "json_schema": map[string]any{
				"name": "decision", "strict": true, "schema": wireSchema("allow", "review")}},
		},
		wantResult: llm.Response{Text: "{}", Model: "m", StopReason: llm.StopEndTurn, InputTokens: 57, OutputTokens: 11},
	}, {
		name:     "schema as json_object with schema (llama-cpp-python)",
		opts:     llm.Options{Structured: llm.StructuredJSONObject},
		basePath: "/v1",
		req:      schemaRequest,
		reply:    openaiReply("m", "stop", `"{}"`),
		wantBody: map[string]any{
			"model":           llm.OpenAISmall,
			"messages":        []any{map[string]any{"role": "user", "content": "hi"}},
			"max_tokens":      float64(llm.DefaultMaxTokens),
			"response_format": map[string]any{"type": "json_object", "schema": wireSchema("allow", "review")},
		},
		wantResult: llm.Response{Text: "{}", Model: "m", StopReason: llm.StopEndTurn, InputTokens: 57, OutputTokens: 11},
	}, {
		name:     "schema not sent with structured output off",
		opts:     llm.Options{Structured: llm.StructuredNone},
		basePath: "/v1",
		req:      schemaRequest,
		reply:    openaiReply("m", "stop", `"{}"`),
		wantBody: map[string]any{
			"model":      llm.OpenAISmall,
			"messages":   []any{map[string]any{"role": "user", "content": "hi"}},
			"max_tokens": float64(llm.DefaultMaxTokens),
		},
		wantResult: llm.Response{Text: "{}", Model: "m", StopReason: llm.StopEndTurn, InputTokens: 57, OutputTokens: 11},
	}, {
		name: "OpenAI itself: max_completion_tokens, large model by priority",
		opts: llm.Options{APIKey: "sk-test"},
		req: llm.Request{
			Messages:    []llm.Message{{Role: llm.RoleUser, Text: "hi"}},
			Preferences: llm.Preferences{IntelligencePriority: ptr(0.8)},
			MaxTokens:   32,
		},
		reply:    openaiReply("gpt-4o-2024-08-06", "content_filter", `null`),
		wantAuth: "Bearer sk-test",
		wantBody: map[string]any{
			"model":                 llm.OpenAILarge,
			"messages":              []any{map[string]any{"role": "user", "content": "hi"}},
			"max_completion_tokens": 32.0,
		},
		wantResult: llm.Response{Model: "gpt-4o-2024-08-06", StopReason: "content_filter",
			InputTokens: 57, OutputTokens: 11},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeAPI(t, tt.reply)
			o := tt.opts
			if tt.basePath != "" {
				o.BaseURL = srv.URL + tt.basePath
			} else {
				o.HTTPClient = redirect(t, srv.URL)
			}
			if got := complete(t, "openai", o, tt.req); !reflect.DeepEqual(got, tt.wantResult) {
				t.Errorf("response = %+v\nwant       %+v", got, tt.wantResult)
			}
			r := srv.check(t, "/v1/chat/completions", tt.wantBody)
			if got := r.header.Get("Authorization"); got != tt.wantAuth {
				t.Errorf("Authorization = %q, want %q", got, tt.wantAuth)
			}
		})
	}
}

// redirect returns a client that sends every request to base instead of
// its host, so a provider's default endpoint can be tested on loopback.
func redirect(t *testing.T, base string) *http.Client {
	t.Helper()
	to, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		if r.URL.Host != "api.openai.com" {
			t.Errorf("request to %s, want api.openai.com", r.URL)
		}
		r = r.Clone(r.Context())
		r.URL.Scheme, r.URL.Host = to.Scheme, to.Host
		return http.DefaultTransport.RoundTrip(r)
	})}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestOpenAIErrors(t *testing.T) {
	testStatusErrors(t, "openai", []statusCase{
		{http.StatusTooManyRequests, map[string]string{"Retry-After-Ms": "1500"}, "rate_limit_exceeded", true, 1500 * time.Millisecond},
		{http.StatusInternalServerError, nil, "server_error", true, 0},
		{http.StatusServiceUnavailable, map[string]string{"Retry-After": "2"}, "overloaded", true, 2 * time.Second},
		{http.StatusBadRequest, nil, "invalid_value", false, 0},
		{http.StatusUnauthorized, nil, "invalid_api_key", false, 0},
		{http.StatusNotFound, nil, "model_not_found", false, 0},
	}, func(addr string) llm.Options {
		return llm.Options{BaseURL: addr + "/v1"}
	}, func(kind string) string {
		return `{"error": {"message": "test says no", "type": "invalid_request_error", "param": null, "code": "` + kind + `"}}`
	})
}

func TestOpenAINoChoices(t *testing.T) {
	srv := newFakeAPI(t, reply{status: http.StatusOK, body: `{"id": "x", "object": "chat.completion",
		"created": 1, "model": "m", "choices": []}`})
	p, err := llm.New("openai", llm.Options{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Complete(t.Context(), llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Text: "hi"}}})
	assertStatusError(t, err, "openai", 0, false)
}

func TestOpenAIUnreachable(t *testing.T) {
	assertRefused(t, "openai", llm.Options{BaseURL: "/v1"})
}

func TestOpenAICancel(t *testing.T) {
	srv, arrived := blockingAPI(t)
	p, err := llm.New("openai", llm.Options{BaseURL: srv.URL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	assertCancel(t, p, arrived)
}

// openaiToolReply is a Chat Completions answer that calls a tool.
func openaiToolReply(finishReason, arguments string) reply {
	return reply{status: http.StatusOK, body: `{
		"id": "chatcmpl-C1", "object": "chat.completion", "created": 1764190000, "model": "m",
		"choices": [{"index": 0, "logprobs": null, "finish_reason": "` + finishReason + `",
			"message": {"role": "assistant", "content": null, "refusal": null, "annotations": [],
				"tool_calls": [{"id": "call_9", "type": "function",
					"function": {"name": "transaction_history", "arguments": ` + arguments + `}}]}}],
		"usage": {"prompt_tokens": 57, "completion_tokens": 11, "total_tokens": 68}
	}`}
}

func TestOpenAITools(t *testing.T) {
	toolsWire := []any{
		map[string]any{"type": "function", "function": map[string]any{
			"name": "transaction_history", "description": "Recent transactions of the account under decision.",
			"parameters": map[string]any{"type": "object", "properties": map[string]any{"limit": map[string]any{"type": "integer"}},
				"required": []any{"limit"}, "additionalProperties": false}}},
	}
	conversationWire := []any{
		map[string]any{"role": "user", "content": "Transactions in the last 24 hours: 45."},
		map[string]any{"role": "assistant", "content": "Let me look.", "tool_calls": []any{
			map[string]any{"id": "toolu_01A", "type": "function", "function": map[string]any{"name": "transaction_history", "arguments": `{"limit":10}`}},
			map[string]any{"id": "toolu_01B", "type": "function", "function": map[string]any{"name": "transaction_history", "arguments": `{}`}},
		}},
		map[string]any{"role": "tool", "tool_call_id": "toolu_01A", "content": `{"transactions":[{"amount":12}]}`},
		map[string]any{"role": "tool", "tool_call_id": "toolu_01B", "content": "error: limit is required"},
	}
	call := []llm.ToolCall{{ID: "call_9", Name: "transaction_history", Input: map[string]any{"limit": 10.0}}}
	tests := []struct {
		name     string
		public   bool // OpenAI itself rather than a compatible server
		req      llm.Request
		reply    reply
		wantBody map[string]any
		want     llm.Response
	}{{
		name: "compatible server: tools and tool messages, no response_format",
		req: llm.Request{Messages: toolConversation, Tools: []llm.Tool{historyTool},
			ToolChoice: llm.ToolChoiceAuto, Schema: llm.AnswerSchema([]string{"allow", "review"})},
		reply: openaiToolReply("tool_calls", `"{\"limit\": 10}"`),
		wantBody: map[string]any{
			"model": llm.OpenAISmall, "max_tokens": float64(llm.DefaultMaxTokens),
			"messages": conversationWire, "tools": toolsWire, "tool_choice": "auto",
		},
		want: llm.Response{Model: "m", StopReason: llm.StopToolUse, ToolCalls: call, InputTokens: 57, OutputTokens: 11},
	}, {
		name:   "OpenAI itself: response_format stays with the tools",
		public: true,
		req: llm.Request{Messages: toolConversation, Tools: []llm.Tool{historyTool},
			Schema: llm.AnswerSchema([]string{"allow", "review"})},
		reply: openaiToolReply("tool_calls", `"{\"limit\": 10}"`),
		wantBody: map[string]any{
			"model": llm.OpenAISmall, "max_completion_tokens": float64(llm.DefaultMaxTokens),
			"messages": conversationWire, "tools": toolsWire,
			"response_format": map[string]any{"type": "json_schema", "json_schema": map[string]any{
				"name": "decision", "strict": true, "schema": wireSchema("allow", "review")}},
		},
		want: llm.Response{Model: "m", StopReason: llm.StopToolUse, ToolCalls: call, InputTokens: 57, OutputTokens: 11},
	}, {
		name:  "a server that says stop with tool calls is still tool use",
		req:   llm.Request{Messages: toolConversation[:1], Tools: []llm.Tool{historyTool}, ToolChoice: llm.ToolChoiceRequired},
		reply: openaiToolReply("stop", `"{\"limit\": 10}"`),
		wantBody: map[string]any{
			"model": llm.OpenAISmall, "max_tokens": float64(llm.DefaultMaxTokens),
			"messages": conversationWire[:1], "tools": toolsWire, "tool_choice": "required",
		},
		want: llm.Response{Model: "m", StopReason: llm.StopToolUse, ToolCalls: call, InputTokens: 57, OutputTokens: 11},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeAPI(t, tt.reply)
			o := llm.Options{BaseURL: srv.URL + "/v1"}
			if tt.public {
				o = llm.Options{HTTPClient: redirect(t, srv.URL)}
			}
			if got := complete(t, "openai", o, tt.req); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("response = %+v\nwant       %+v", got, tt.want)
			}
			srv.check(t, "/v1/chat/completions", tt.wantBody)
		})
	}
}

func TestOpenAIToolArgumentsNotJSON(t *testing.T) {
	srv := newFakeAPI(t, openaiToolReply("tool_calls", `"{\"limit\": 1"`))
	p, err := llm.New("openai", llm.Options{BaseURL: srv.URL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Complete(t.Context(), llm.Request{Messages: toolConversation[:1], Tools: []llm.Tool{historyTool}})
	e := assertStatusError(t, err, "openai", 0, false)
	if !strings.Contains(e.Error(), "transaction_history") {
		t.Errorf("error %v does not name the tool", e)
	}
}

// TestOpenAISupportsTools: tools go to OpenAI itself always, and to a
// compatible server only without structured output, whose grammar a
// request with tools would lose.
func TestOpenAISupportsTools(t *testing.T) {
	for _, tt := range []struct {
		base, structured string
		want             bool
	}{
		{"", "", true},
		{"", llm.StructuredJSONObject, true},
		{"http://127.0.0.1:8080/v1", "", false},
		{"http://127.0.0.1:8080/v1", llm.StructuredJSONObject, false},
		{"http://127.0.0.1:8080/v1", llm.StructuredNone, true},
	} {
		p, err := llm.New("openai", llm.Options{BaseURL: tt.base, Structured: tt.structured})
		if err != nil {
			t.Fatal(err)
		}
		tp, ok := p.(interface{ SupportsTools() bool })
		if !ok || tp.SupportsTools() != tt.want {
			t.Errorf("base %q, structured %q: supports tools %v, want %v", tt.base, tt.structured, ok && tp.SupportsTools(), tt.want)
		}
	}
}
