package sampling_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/sampling"
	"github.com/triage-dev/triage/sampling/work"
)

// TestWorkContract is the work protocol (package work) from a third-party
// sampler's side, on both protocol generations: it uses go-sdk's client and
// work's constants only, never package sampling/client, against a real Pool
// over Streamable HTTP. A sampler author can copy the sampler half.
func TestWorkContract(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version string // asked for; "" is go-sdk's default
		want    string // negotiated
		// viaSDK lets go-sdk's client retry the call with the answer;
		// otherwise the test does it by hand, as a client in another
		// language would on 2026-07-28.
		viaSDK bool
	}{
		{name: "2026-07-28", version: "", want: work.ProtocolMRTR, viaSDK: true},
		{name: "2026-07-28 by hand", version: "", want: work.ProtocolMRTR},
		{name: "2025-11-25", version: work.ProtocolLegacy, want: work.ProtocolLegacy, viaSDK: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()

			// The consumer: a pool with one ambiguous payment waiting.
			pool := newPool(t, sampling.Options{})
			srv := httptest.NewServer(pool.Handler("s3cret"))
			defer srv.Close()
			type verdict struct {
				v   pipeline.Verdict
				err error
			}
			decided := make(chan verdict, 1)
			go func() {
				v, err := pool.Decide(ctx, item(t, paymentType(t), 7))
				decided <- verdict{v, err}
			}()

			// The sampler: a go-sdk client whose sampling handler is the
			// model. The request says which outcomes are allowed.
			answer := func(_ context.Context, p *mcp.CreateMessageParams) (*mcp.CreateMessageResult, error) {
				md, _ := p.Metadata.(map[string]any)
				if md["event_id"] != "ev-0007" || !slices.Contains(md["outcomes"].([]any), any("block")) || p.SystemPrompt == "" {
					t.Errorf("sampling request %+v", p)
				}
				return &mcp.CreateMessageResult{
					Role: "assistant", Model: "my-model", StopReason: "endTurn",
					Content: &mcp.TextContent{Text: `{"outcome": "block", "reason": "mule pattern", "score": 0.9}`},
					Meta:    mcp.Meta{work.UsageMetaKey: map[string]any{"inputTokens": 30, "outputTokens": 8}},
				}, nil
			}
			opts := &mcp.ClientOptions{
				CreateMessageHandler: func(ctx context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
					return answer(ctx, req.Params)
				},
			}
			if !tc.viaSDK {
				opts.MultiRoundTrip = &mcp.MultiRoundTripOptions{Disabled: true}
			}
			c := mcp.NewClient(&mcp.Implementation{Name: "third-party-sampler", Version: "v1"}, opts)
			cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL, HTTPClient: bearerClient("s3cret")},
				&mcp.ClientSessionOptions{ProtocolVersion: tc.version})
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			if got := cs.InitializeResult().ProtocolVersion; got != tc.want {
				t.Fatalf("negotiated %q, want %q", got, tc.want)
			}

			// The tool is listed with its input and output schemas.
			tools, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(tools.Tools, func(tl *mcp.Tool) bool { return tl.Name == work.ToolName })
			if i < 0 {
				t.Fatalf("no tool %q in %v", work.ToolName, tools.Tools)
			}
			checkSchemas(t, tools.Tools[i])

			args := map[string]any{"wait_ms": 5000, "sampler": "third-party-sampler"}
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: work.ToolName, Arguments: args})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.viaSDK {
				// By hand: the result asks for input. Answer the sampling
				// request and retry with the lease token echoed.
				req, _ := res.InputRequests[work.InputKey].(*mcp.CreateMessageWithToolsParams)
				if !res.NeedsInput() || req == nil || len(res.InputRequests) != 1 {
					t.Fatalf("first result %+v, want one input request %q", res, work.InputKey)
				}
				if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(res.RequestState) {
					t.Fatalf("requestState %q, want 32 hex characters", res.RequestState)
				}
				ans, _ := answer(ctx, &mcp.CreateMessageParams{Messages: textMessages(t, req.Messages),
					SystemPrompt: req.SystemPrompt, Metadata: req.Metadata})
				res, err = cs.CallTool(ctx, &mcp.CallToolParams{
					Name: work.ToolName, Arguments: args,
					InputResponses: mcp.InputResponseMap{work.InputKey: ans},
					RequestState:   res.RequestState,
				})
				if err != nil {
					t.Fatal(err)
				}
			}

			// The final result, field by field, as JSON.
			checkFields(t, finalResult(t, res), map[string]any{
				"status":    string(work.StatusDecided),
				"event_id":  "ev-0007", // metadata.event_id of the request
				"tenant_id": "t",       // and its tenant
				"outcome":   "block",   // what the answer said
				"reason":    "mule pattern",
			})

			// What the consumer recorded.
			d := <-decided
			if d.err != nil || d.v.Outcome != "block" || d.v.Model != "my-model" || len(d.v.Attempts) != 1 {
				t.Fatalf("decision %+v, %v", d.v, d.err)
			}
			a := d.v.Attempts[0]
			if a.InputTokens != 30 || a.OutputTokens != 8 || !strings.HasPrefix(a.SamplerSession, "third-party-sampler") {
				t.Fatalf("attempt %+v: want the usage from _meta and the sampler's name", a)
			}

			// No more work: idle, and nothing else.
			res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: work.ToolName, Arguments: map[string]any{"wait_ms": 1}})
			if err != nil {
				t.Fatal(err)
			}
			checkFields(t, finalResult(t, res), map[string]any{"status": string(work.StatusIdle)})
		})
	}
}

// checkFields checks a final result's JSON fields one by one, and that it
// has no others.
func checkFields(t *testing.T, got, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%q = %#v, want %#v", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected field %q = %#v", k, got[k])
		}
	}
}

// finalResult is a final result's structured content as plain JSON, after
// checking that the text content carries the same JSON for older clients.
func finalResult(t *testing.T, res *mcp.CallToolResult) map[string]any {
	t.Helper()
	if res.IsError || res.NeedsInput() {
		t.Fatalf("result %+v is not final", res)
	}
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var text map[string]any
	if len(res.Content) != 1 {
		t.Fatalf("content %v, want the JSON as one text", res.Content)
	}
	if tc, ok := res.Content[0].(*mcp.TextContent); !ok || json.Unmarshal([]byte(tc.Text), &text) != nil || !jsonEqual(text, m) {
		t.Fatalf("text content %v does not match structured content %v", res.Content[0], m)
	}
	return m
}

// checkSchemas checks the tool's advertised schemas: wait_ms and sampler
// in, and a status restricted to the four statuses out.
func checkSchemas(t *testing.T, tool *mcp.Tool) {
	t.Helper()
	var in, out jsonschema.Schema
	for _, s := range []struct {
		from any
		to   *jsonschema.Schema
	}{{tool.InputSchema, &in}, {tool.OutputSchema, &out}} {
		b, err := json.Marshal(s.from)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, s.to); err != nil {
			t.Fatalf("schema %s: %v", b, err)
		}
	}
	if in.Properties["wait_ms"] == nil || in.Properties["wait_ms"].Type != "integer" || in.Properties["sampler"] == nil {
		t.Fatalf("input schema %+v", in)
	}
	status := out.Properties["status"]
	if status == nil || !slices.Contains(out.Required, "status") {
		t.Fatalf("output schema %+v: no required status", out)
	}
	var enum []string
	for _, e := range status.Enum {
		enum = append(enum, e.(string))
	}
	if !slices.Equal(enum, []string{"idle", "decided", "fallback", "expired"}) {
		t.Fatalf("status enum %v", status.Enum)
	}
	for _, field := range []string{"event_id", "outcome", "reason"} {
		if out.Properties[field] == nil {
			t.Fatalf("output schema has no %q", field)
		}
	}
}

func textMessages(t *testing.T, msgs []*mcp.SamplingMessageV2) []*mcp.SamplingMessage {
	t.Helper()
	var out []*mcp.SamplingMessage
	for _, m := range msgs {
		if len(m.Content) != 1 {
			t.Fatalf("message %+v, want one text content", m)
		}
		out = append(out, &mcp.SamplingMessage{Role: m.Role, Content: m.Content[0]})
	}
	return out
}

func jsonEqual(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
