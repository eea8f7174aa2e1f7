package work_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/sampling/work"
)

func ptr(f float64) *float64 { return &f }

func userText(s string) []*mcp.SamplingMessage {
	return []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: s}}}
}

func TestRequestFromMCP(t *testing.T) {
	cases := []struct {
		name string
		in   *mcp.CreateMessageParams
		want llm.Request
		err  string
	}{
		{
			name: "full",
			in: &mcp.CreateMessageParams{
				SystemPrompt: "sys",
				Messages: []*mcp.SamplingMessage{
					{Role: "user", Content: &mcp.TextContent{Text: "q"}},
					{Role: "assistant", Content: &mcp.TextContent{Text: "a"}},
					{Role: "user", Content: &mcp.TextContent{Text: "again"}},
				},
				ModelPreferences: &mcp.ModelPreferences{
					Hints:                []*mcp.ModelHint{{Name: "sonnet"}, nil, {Name: ""}, {Name: "gpt-4o"}},
					CostPriority:         0.25,
					SpeedPriority:        1,
					IntelligencePriority: 0.5,
				},
				Temperature:   0.7,
				MaxTokens:     300,
				StopSequences: []string{"END"},
				Metadata:      map[string]any{"event_id": "e1", "outcomes": []any{"allow", "block"}},
			},
			want: llm.Request{
				System: "sys",
				Messages: []llm.Message{
					{Role: "user", Text: "q"}, {Role: "assistant", Text: "a"}, {Role: "user", Text: "again"},
				},
				Preferences: llm.Preferences{
					Hints:        []string{"sonnet", "gpt-4o"},
					CostPriority: ptr(0.25), SpeedPriority: ptr(1), IntelligencePriority: ptr(0.5),
				},
				Temperature: ptr(0.7),
				MaxTokens:   300,
				Stop:        []string{"END"},
				Metadata:    map[string]any{"event_id": "e1", "outcomes": []any{"allow", "block"}},
			},
		},
		{
			name: "zeros are unset",
			in:   &mcp.CreateMessageParams{Messages: userText("q"), ModelPreferences: &mcp.ModelPreferences{}},
			want: llm.Request{Messages: []llm.Message{{Role: "user", Text: "q"}}},
		},
		{
			name: "struct metadata becomes a map",
			in: &mcp.CreateMessageParams{Messages: userText("q"), Metadata: struct {
				EventID string `json:"event_id"`
			}{"e2"}},
			want: llm.Request{Messages: []llm.Message{{Role: "user", Text: "q"}}, Metadata: map[string]any{"event_id": "e2"}},
		},
		{name: "nil params", in: nil, err: "no params"},
		{name: "no messages", in: &mcp.CreateMessageParams{}, err: "no messages"},
		{name: "null message", in: &mcp.CreateMessageParams{Messages: []*mcp.SamplingMessage{nil}}, err: "message 0 is null"},
		{
			name: "image content",
			in: &mcp.CreateMessageParams{Messages: []*mcp.SamplingMessage{
				{Role: "user", Content: &mcp.TextContent{Text: "look"}},
				{Role: "user", Content: &mcp.ImageContent{MIMEType: "image/png", Data: []byte{1}}},
			}},
			err: "message 1 has image content (only text is supported)",
		},
		{
			name: "audio content",
			in:   &mcp.CreateMessageParams{Messages: []*mcp.SamplingMessage{{Role: "user", Content: &mcp.AudioContent{MIMEType: "audio/wav"}}}},
			err:  "audio content",
		},
		{
			name: "no content",
			in:   &mcp.CreateMessageParams{Messages: []*mcp.SamplingMessage{{Role: "user"}}},
			err:  "message 0 has no content",
		},
		{
			name: "unknown role",
			in:   &mcp.CreateMessageParams{Messages: []*mcp.SamplingMessage{{Role: "system", Content: &mcp.TextContent{Text: "x"}}}},
			err:  `role "system"`,
		},
		{
			name: "priority above 1",
			in:   &mcp.CreateMessageParams{Messages: userText("q"), ModelPreferences: &mcp.ModelPreferences{SpeedPriority: 1.5}},
			err:  "speedPriority 1.5 is outside 0..1",
		},
		{name: "negative temperature", in: &mcp.CreateMessageParams{Messages: userText("q"), Temperature: -1}, err: "temperature -1"},
		{name: "negative maxTokens", in: &mcp.CreateMessageParams{Messages: userText("q"), MaxTokens: -5}, err: "maxTokens -5"},
		{name: "metadata not an object", in: &mcp.CreateMessageParams{Messages: userText("q"), Metadata: []string{"x"}}, err: "not a JSON object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := work.RequestFromMCP(c.in)
			checkConversion(t, got, err, c.want, c.err)
		})
	}
}

// checkConversion checks a request conversion's result: an error wrapping
// ErrUnsupported that mentions wantErr, or, when wantErr is "", want.
func checkConversion[T any](t *testing.T, got T, err error, want T, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) || !errors.Is(err, work.ErrUnsupported) {
			t.Fatalf("err = %v, want ErrUnsupported mentioning %q", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

func TestResultToMCPAndUsage(t *testing.T) {
	cases := []struct {
		name    string
		resp    llm.Response
		in, out int64
		usage   bool
	}{
		{"usage", llm.Response{Text: "{}", Model: "m", StopReason: llm.StopMaxTokens, InputTokens: 12, OutputTokens: 3}, 12, 3, true},
		{"unknown usage", llm.Response{Text: "{}", Model: "m", StopReason: llm.StopEndTurn}, 0, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := work.ResultToMCP(c.resp)
			if res.Role != "assistant" || res.Model != c.resp.Model || res.StopReason != c.resp.StopReason {
				t.Fatalf("result %+v", res)
			}
			if tc, ok := res.Content.(*mcp.TextContent); !ok || tc.Text != c.resp.Text {
				t.Fatalf("content %#v", res.Content)
			}
			// In process, and after the JSON round trip a server sees.
			b, err := json.Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			var wire mcp.CreateMessageResult
			if err := json.Unmarshal(b, &wire); err != nil {
				t.Fatal(err)
			}
			for _, m := range []mcp.Meta{res.Meta, wire.Meta} {
				in, out, ok := work.UsageFromMeta(m)
				if in != c.in || out != c.out || ok != c.usage {
					t.Fatalf("usage from %v = %d, %d, %v; want %d, %d, %v", m, in, out, ok, c.in, c.out, c.usage)
				}
			}
		})
	}
}

// TestZeroTemperatureSurvivesTheWire: go-sdk omits a zero temperature from
// sampling/createMessage, so triage also sends the temperature it asks for
// in the request's metadata, and RequestFromMCP honours it: a rules file's
// temperature 0 reaches the provider as 0, not as its default.
func TestZeroTemperatureSurvivesTheWire(t *testing.T) {
	for _, temp := range []float64{0, 0.3} {
		req := overTheWire(t, &mcp.CreateMessageParams{Messages: userText("q"), MaxTokens: 10, Temperature: temp,
			Metadata: map[string]any{work.MetaTemperature: temp}})
		if req.Temperature == nil || *req.Temperature != temp {
			t.Fatalf("temperature %v over the wire arrives as %v", temp, req.Temperature)
		}
	}
	// Out of range in the metadata is refused like the field.
	_, err := work.RequestFromMCP(&mcp.CreateMessageParams{Messages: userText("q"), Metadata: map[string]any{work.MetaTemperature: -1.0}})
	if err == nil || !strings.Contains(err.Error(), "temperature") {
		t.Fatalf("metadata temperature -1: err %v", err)
	}
}

// TestSchemaSurvivesTheWire: the answer's schema travels in the metadata,
// and RequestFromMCP hands it to the provider as the request's schema, the
// same map as direct mode gives it.
func TestSchemaSurvivesTheWire(t *testing.T) {
	want := llm.AnswerSchema([]string{"allow", "review"})
	req := overTheWire(t, &mcp.CreateMessageParams{Messages: userText("q"), MaxTokens: 10,
		Metadata: map[string]any{work.MetaSchema: want}})
	wantJSON, _ := json.Marshal(want)
	gotJSON, _ := json.Marshal(req.Schema)
	if string(gotJSON) != string(wantJSON) {
		t.Fatalf("schema over the wire arrives as %s, want %s", gotJSON, wantJSON)
	}
	// Without one, the answer is free text.
	req, err := work.RequestFromMCP(&mcp.CreateMessageParams{Messages: userText("q")})
	if err != nil || req.Schema != nil {
		t.Fatalf("no schema sent: schema %v, err %v", req.Schema, err)
	}
}

// overTheWire sends p through JSON, as a sampler receives it, and converts
// what arrives.
func overTheWire(t *testing.T, p *mcp.CreateMessageParams) llm.Request {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var got mcp.CreateMessageParams
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	req, err := work.RequestFromMCP(&got)
	if err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return req
}
