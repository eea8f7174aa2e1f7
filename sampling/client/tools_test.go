package client_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/sampling/client"
	"github.com/triage-dev/triage/sampling/work"
)

// borderlineItems are transactions with a borderline day's velocity, for
// which the offline scorer asks for the account's history when offered.
func borderlineItems(n int) []item {
	out := make([]item, n)
	for i := range out {
		out[i] = item{
			id:       fmt.Sprintf("evt-%d", i),
			text:     fmt.Sprintf("Transaction: %d.00 EUR.\nTransactions in the last 24 hours: 45. Average amount over 30 days: 100.00 EUR.", 110+i),
			outcomes: []string{"allow", "review", "block"},
		}
	}
	return out
}

// TestPullWithTools: a sampler whose provider supports tools declares them;
// the server offers transaction_history, the model calls it, the sampler
// returns the call (it runs no tool), and the server's result decides the
// item in the next round of the same call, on both protocol generations.
func TestPullWithTools(t *testing.T) {
	const n = 3
	for _, pc := range protocols {
		t.Run(pc.name, func(t *testing.T) {
			w := newWorkServer(borderlineItems(n)...)
			w.tools = true
			s, stop := start(t, client.Config{
				Servers: []string{"mem"}, Transport: newMemServer(w.mcpServer(nil)).transport,
				Provider: offline(t), Concurrency: 2, ProtocolVersion: pc.version,
			})
			await(t, s, "all items decided", func(st client.Stats) bool { return st.Decided == n })
			stop()
			for _, d := range collect(t, w, n) {
				if !d.declaredTools || d.capabilityTools != pc.legacy || d.legacy != pc.legacy {
					t.Errorf("%s: declared tools %v, capability %v, legacy %v", d.eventID, d.declaredTools, d.capabilityTools, d.legacy)
				}
				if !reflect.DeepEqual(d.toolCalls, []string{llm.HistoryTool}) || d.rounds != 2 {
					t.Errorf("%s: tool calls %v in %d rounds, want one %s call and 2 rounds", d.eventID, d.toolCalls, d.rounds, llm.HistoryTool)
				}
				// Three of the four past amounts are above the average: the
				// offline scorer leans to review and says why.
				if !strings.Contains(d.text, `"outcome":"review"`) || !strings.Contains(d.text, "used transaction_history: 3 of 4") {
					t.Errorf("%s: answer %s does not use the history", d.eventID, d.text)
				}
			}
			if st := s.Stats(); st.Answered != 2*n || st.Errors != 0 {
				t.Errorf("stats %+v, want %d answers (a tool round and a decision per item)", st, 2*n)
			}
		})
	}
}

// plainProvider hides a provider's SupportsTools: a provider that does not
// say it passes tools on.
type plainProvider struct{ p llm.Provider }

func (p plainProvider) Name() string { return p.p.Name() }
func (p plainProvider) Complete(ctx context.Context, r llm.Request) (llm.Response, error) {
	return p.p.Complete(ctx, r)
}

// TestPullWithoutTools: with tools disabled, or a provider that does not
// support them, the sampler declares none, the server offers none, and the
// items are decided in one round as before.
func TestPullWithoutTools(t *testing.T) {
	cases := []struct {
		name string
		cfg  client.Config
	}{
		{"disabled", client.Config{Provider: offline(t), DisableTools: true}},
		{"provider without tools", client.Config{Provider: plainProvider{offline(t)}}},
	}
	for _, c := range cases {
		for _, pc := range protocols {
			t.Run(c.name+"/"+pc.name, func(t *testing.T) {
				w := newWorkServer(borderlineItems(2)...)
				w.tools = true
				cfg := c.cfg
				cfg.Servers, cfg.Transport, cfg.ProtocolVersion = []string{"mem"}, newMemServer(w.mcpServer(nil)).transport, pc.version
				s, stop := start(t, cfg)
				await(t, s, "both items decided", func(st client.Stats) bool { return st.Decided == 2 })
				stop()
				for _, d := range collect(t, w, 2) {
					if d.declaredTools || d.capabilityTools || len(d.toolCalls) != 0 || d.rounds != 1 {
						t.Errorf("%s: %+v, want no tools and one round", d.eventID, d)
					}
					if strings.Contains(d.text, "transaction_history") {
						t.Errorf("%s: answer %s mentions a tool", d.eventID, d.text)
					}
				}
			})
		}
	}
}

// TestHandlerWithTools answers a request with tools directly: the model's
// call comes back as tool_use content with stopReason toolUse, and a
// malformed request is an error wrapping work.ErrUnsupported.
func TestHandlerWithTools(t *testing.T) {
	h := client.HandlerWithTools(offline(t), nil)
	it := borderlineItems(1)[0]
	res, err := h(t.Context(), &mcp.CreateMessageWithToolsRequest{Params: toolParams(it, []llm.Message{{Role: llm.RoleUser, Text: it.text}})})
	if err != nil {
		t.Fatal(err)
	}
	r, ok := work.ResponseFromMCP(res)
	if !ok || res.StopReason != llm.StopToolUse || len(r.ToolCalls) != 1 || r.ToolCalls[0].Name != llm.HistoryTool {
		t.Fatalf("result %+v, read as %+v", res, r)
	}
	bad := toolParams(it, []llm.Message{{Role: llm.RoleUser, Text: it.text}})
	bad.Messages[0].Content = []mcp.Content{&mcp.ToolUseContent{ID: "x", Name: "t"}}
	if _, err := h(t.Context(), &mcp.CreateMessageWithToolsRequest{Params: bad}); err == nil || !strings.Contains(err.Error(), "tool_use") {
		t.Fatalf("tool_use from the user: err = %v", err)
	}
	if _, err := h(t.Context(), &mcp.CreateMessageWithToolsRequest{}); err == nil {
		t.Fatal("no params: no error")
	}
}
