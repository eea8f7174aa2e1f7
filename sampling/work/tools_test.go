package work_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/sampling/work"
)

// loop is a tool loop's conversation as the server holds it, with every
// shape of tool part; its numbers are float64, as JSON decodes them.
var loop = []llm.Message{
	{Role: llm.RoleUser, Text: "Transactions in the last 24 hours: 45."},
	{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "c1", Name: "transaction_history", Input: map[string]any{"limit": 10.0}}}},
	{Role: llm.RoleUser, ToolResults: []llm.ToolResult{{CallID: "c1", Content: `{"transactions":[]}`}}},
	{Role: llm.RoleAssistant, Text: "One more.", ToolCalls: []llm.ToolCall{
		{ID: "c2", Name: "transaction_history", Input: map[string]any{"limit": 50.0}},
		{ID: "c3", Name: "document_metadata", Input: map[string]any{}},
	}},
	{Role: llm.RoleUser, Text: "Decide now.", ToolResults: []llm.ToolResult{
		{CallID: "c2", Content: "limit above 20", IsError: true},
		{CallID: "c3", Content: "not a document", IsError: true},
	}},
}

var loopTools = []llm.Tool{
	{Name: "transaction_history", Description: "Past transactions of the account.", InputSchema: map[string]any{
		"type": "object", "properties": map[string]any{"limit": map[string]any{"type": "integer"}}, "required": []any{"limit"},
	}},
	{Name: "document_metadata", InputSchema: map[string]any{"type": "object"}},
}

// TestToolLoopOverTheWire builds a request with tools as the server does,
// sends it through the SDK's JSON as an input request, and converts what a
// sampler receives: the same conversation, tools and choice arrive.
func TestToolLoopOverTheWire(t *testing.T) {
	p := &mcp.CreateMessageWithToolsParams{
		SystemPrompt: "Decide.",
		Messages:     work.MessagesToMCP(loop),
		MaxTokens:    200,
		Metadata:     map[string]any{"event_id": "e1", work.MetaSchema: llm.AnswerSchema([]string{"allow", "block"})},
		Tools:        work.ToolsToMCP(loopTools),
		ToolChoice:   work.ToolChoiceToMCP(llm.ToolChoiceRequired),
	}
	b, err := json.Marshal(mcp.InputRequestMap{work.InputKey: p})
	if err != nil {
		t.Fatal(err)
	}
	var got mcp.InputRequestMap
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	wire, ok := got[work.InputKey].(*mcp.CreateMessageWithToolsParams)
	if !ok {
		t.Fatalf("input request arrives as %T", got[work.InputKey])
	}
	// MCP wants tool results alone in their message: the last turn is two.
	if n := len(wire.Messages); n != len(loop)+1 {
		t.Fatalf("%d messages on the wire, want %d: %s", n, len(loop)+1, b)
	}
	for _, c := range wire.Messages[4].Content {
		if _, ok := c.(*mcp.ToolResultContent); !ok {
			t.Errorf("tool results share their message with %T: %s", c, b)
		}
	}
	req, err := work.RequestFromMCPWithTools(wire)
	if err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if !reflect.DeepEqual(req.Messages, loop) {
		t.Errorf("messages\n got %+v\nwant %+v", req.Messages, loop)
	}
	if !reflect.DeepEqual(req.Tools, loopTools) {
		t.Errorf("tools\n got %+v\nwant %+v", req.Tools, loopTools)
	}
	if req.ToolChoice != llm.ToolChoiceRequired || req.System != "Decide." || req.MaxTokens != 200 || req.Schema == nil {
		t.Errorf("request %+v", req)
	}
}

// TestToolAnswerOverTheWire sends a sampler's answer with tool calls through
// the SDK's JSON as an input response, and reads it as the server does.
func TestToolAnswerOverTheWire(t *testing.T) {
	calls := []llm.ToolCall{
		{ID: "toolu_1", Name: "transaction_history", Input: map[string]any{"limit": 10.0}},
		{ID: "toolu_2", Name: "document_metadata", Input: map[string]any{}},
	}
	tests := []struct {
		name string
		resp llm.Response
	}{
		{"tool calls with text", llm.Response{Text: "Checking.", Model: "m", StopReason: llm.StopToolUse, ToolCalls: calls, InputTokens: 9, OutputTokens: 4}},
		{"one tool call, no text", llm.Response{Model: "m", StopReason: llm.StopToolUse, ToolCalls: calls[:1], InputTokens: 9, OutputTokens: 4}},
		{"a text answer", llm.Response{Text: `{"outcome":"allow"}`, Model: "m", StopReason: llm.StopEndTurn, InputTokens: 9, OutputTokens: 4}},
		{"an empty answer", llm.Response{Model: "m", StopReason: llm.StopMaxTokens}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := work.ResultToMCPWithTools(tt.resp)
			if res.Role != "assistant" || len(res.Content) == 0 {
				t.Fatalf("result %+v", res)
			}
			b, err := json.Marshal(map[string]any{"inputResponses": map[string]any{work.InputKey: res}})
			if err != nil {
				t.Fatal(err)
			}
			var retry struct {
				InputResponses mcp.InputResponseMap `json:"inputResponses"`
			}
			if err := json.Unmarshal(b, &retry); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			for _, v := range []any{res, retry.InputResponses[work.InputKey]} {
				got, ok := work.ResponseFromMCP(v)
				if !ok || !reflect.DeepEqual(got, tt.resp) {
					t.Errorf("%T read as %+v, %v\nwant %+v", v, got, ok, tt.resp)
				}
			}
		})
	}
}

func TestRequestFromMCPWithTools(t *testing.T) {
	user := func(c ...mcp.Content) *mcp.SamplingMessageV2 { return &mcp.SamplingMessageV2{Role: "user", Content: c} }
	assistant := func(c ...mcp.Content) *mcp.SamplingMessageV2 {
		return &mcp.SamplingMessageV2{Role: "assistant", Content: c}
	}
	text := func(s string) *mcp.TextContent { return &mcp.TextContent{Text: s} }
	use := &mcp.ToolUseContent{ID: "c1", Name: "t", Input: map[string]any{}}
	cases := []struct {
		name string
		in   *mcp.CreateMessageWithToolsParams
		want []llm.Message
		err  string
	}{
		{
			name: "texts concatenate; structured result as JSON; text beside results kept",
			in: &mcp.CreateMessageWithToolsParams{Messages: []*mcp.SamplingMessageV2{
				user(text("a"), text("b")),
				assistant(use),
				user(&mcp.ToolResultContent{ToolUseID: "c1", StructuredContent: map[string]any{"n": 1}}, text("go on")),
			}},
			want: []llm.Message{
				{Role: "user", Text: "ab"},
				{Role: "assistant", ToolCalls: []llm.ToolCall{{ID: "c1", Name: "t", Input: map[string]any{}}}},
				{Role: "user", Text: "go on", ToolResults: []llm.ToolResult{{CallID: "c1", Content: `{"n":1}`}}},
			},
		},
		{
			name: "two user texts in a row stay two",
			in:   &mcp.CreateMessageWithToolsParams{Messages: []*mcp.SamplingMessageV2{user(text("a")), user(text("b"))}},
			want: []llm.Message{{Role: "user", Text: "a"}, {Role: "user", Text: "b"}},
		},
		{name: "nil params", err: "no params"},
		{name: "no messages", in: &mcp.CreateMessageWithToolsParams{}, err: "no messages"},
		{name: "null message", in: &mcp.CreateMessageWithToolsParams{Messages: []*mcp.SamplingMessageV2{nil}}, err: "message 0 is null"},
		{name: "no content", in: &mcp.CreateMessageWithToolsParams{Messages: []*mcp.SamplingMessageV2{user()}}, err: "message 0 has no content"},
		{name: "tool use from the user", in: &mcp.CreateMessageWithToolsParams{Messages: []*mcp.SamplingMessageV2{user(use)}}, err: "message 0 (user) has tool_use content"},
		{
			name: "tool result from the assistant",
			in: &mcp.CreateMessageWithToolsParams{Messages: []*mcp.SamplingMessageV2{
				user(text("q")), assistant(&mcp.ToolResultContent{ToolUseID: "c1"}),
			}},
			err: "message 1 (assistant) has tool_result content",
		},
		{name: "image", in: &mcp.CreateMessageWithToolsParams{Messages: []*mcp.SamplingMessageV2{user(&mcp.ImageContent{MIMEType: "image/png"})}}, err: "image content"},
		{
			name: "image in a tool result",
			in: &mcp.CreateMessageWithToolsParams{Messages: []*mcp.SamplingMessageV2{
				user(&mcp.ToolResultContent{ToolUseID: "c1", Content: []mcp.Content{&mcp.ImageContent{}}}),
			}},
			err: `tool result "c1" has image content`,
		},
		{name: "unknown role", in: &mcp.CreateMessageWithToolsParams{Messages: []*mcp.SamplingMessageV2{{Role: "tool", Content: []mcp.Content{text("x")}}}}, err: `role "tool"`},
		{
			name: "tool without a name",
			in:   &mcp.CreateMessageWithToolsParams{Messages: []*mcp.SamplingMessageV2{user(text("q"))}, Tools: []*mcp.Tool{{Description: "d"}}},
			err:  "tool 0 has no name",
		},
		{
			name: "input schema not an object",
			in:   &mcp.CreateMessageWithToolsParams{Messages: []*mcp.SamplingMessageV2{user(text("q"))}, Tools: []*mcp.Tool{{Name: "t", InputSchema: []string{"x"}}}},
			err:  `tool "t": input schema is not a JSON object`,
		},
		{
			name: "unknown tool choice",
			in:   &mcp.CreateMessageWithToolsParams{Messages: []*mcp.SamplingMessageV2{user(text("q"))}, ToolChoice: &mcp.ToolChoice{Mode: "any"}},
			err:  `tool choice "any"`,
		},
		{name: "shared checks apply", in: &mcp.CreateMessageWithToolsParams{Messages: []*mcp.SamplingMessageV2{user(text("q"))}, MaxTokens: -1}, err: "maxTokens -1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := work.RequestFromMCPWithTools(c.in)
			checkConversion(t, got.Messages, err, c.want, c.err)
		})
	}
}

// A request without tools converts as RequestFromMCP converts it: what
// go-sdk clients receive is always the with-tools form.
func TestRequestFromMCPWithToolsMatchesPlain(t *testing.T) {
	plain := &mcp.CreateMessageParams{
		SystemPrompt: "sys",
		Messages: []*mcp.SamplingMessage{
			{Role: "user", Content: &mcp.TextContent{Text: "q"}},
			{Role: "assistant", Content: &mcp.TextContent{Text: ""}},
		},
		ModelPreferences: &mcp.ModelPreferences{Hints: []*mcp.ModelHint{{Name: "haiku"}}, CostPriority: 0.5},
		Temperature:      0.2, MaxTokens: 64, StopSequences: []string{"\n\n"},
		Metadata: map[string]any{"event_id": "e1", work.MetaTemperature: 0.0},
	}
	withTools := &mcp.CreateMessageWithToolsParams{
		SystemPrompt: plain.SystemPrompt, ModelPreferences: plain.ModelPreferences, Temperature: plain.Temperature,
		MaxTokens: plain.MaxTokens, StopSequences: plain.StopSequences, Metadata: plain.Metadata,
	}
	for _, m := range plain.Messages {
		withTools.Messages = append(withTools.Messages, &mcp.SamplingMessageV2{Role: m.Role, Content: []mcp.Content{m.Content}})
	}
	want, err := work.RequestFromMCP(plain)
	if err != nil {
		t.Fatal(err)
	}
	got, err := work.RequestFromMCPWithTools(withTools)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("with tools: %+v, %v\nplain:      %+v", got, err, want)
	}
}

func TestToolsToMCP(t *testing.T) {
	if got := work.ToolsToMCP(nil); got != nil {
		t.Errorf("no tools: %v", got)
	}
	got := work.ToolsToMCP([]llm.Tool{{Name: "t"}})
	if len(got) != 1 || !reflect.DeepEqual(got[0].InputSchema, map[string]any{"type": "object"}) {
		t.Errorf("a tool without a schema: %+v", got)
	}
	if work.ToolChoiceToMCP("") != nil || work.ToolChoiceToMCP(llm.ToolChoiceNone).Mode != "none" {
		t.Error("tool choice")
	}
}

func TestAnswerTimeoutWithTools(t *testing.T) {
	d, ok := work.AnswerTimeoutWithTools(&mcp.CreateMessageWithToolsParams{Metadata: map[string]any{work.MetaTimeoutMS: 1500.0}})
	if !ok || d.Milliseconds() != 1500 {
		t.Errorf("timeout %v, %v", d, ok)
	}
	if _, ok := work.AnswerTimeoutWithTools(nil); ok {
		t.Error("nil params have a timeout")
	}
}
