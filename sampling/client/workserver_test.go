package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/sampling/work"
)

// workServer is a small consumer for the tests: an MCP server with the
// triage_next tool over a queue of items, behaving as the contract says
// (the real one is package sampling). Each item goes out as an input
// request carrying a *mcp.CreateMessageParams and a RequestState naming the
// item; the answer comes back on the retry and decides the item.
type workServer struct {
	items     chan item
	decisions chan decision
	// stop, when closed, ends long polls with "idle": the server is going
	// away.
	stop chan struct{}
	// corrective makes the first answer to every item get a corrective
	// follow-up round (a second input request), as triage does for an
	// invalid answer.
	corrective bool
	// tools makes the requests to samplers that declare tools offer
	// historyTool, and runs its calls: a tool loop as triage's server has
	// it.
	tools bool

	mu       sync.Mutex
	leases   map[string]item
	rounds   map[string]int
	declared map[string]bool          // the lease's sampler declared tools
	convs    map[string][]llm.Message // the lease's conversation, with tools
	calls    map[string][]string      // the tools the lease's model called
	failures []string                 // the error texts of failed answers (work.ErrorResult)
}

// historyTool is the tool the test server offers, and historyResult what
// it answers, in the consumer's shape: three past amounts above the
// items' 30-day average of 100.
var (
	historyTool   = llm.Tool{Name: llm.HistoryTool, Description: "Past transactions of the account.", InputSchema: map[string]any{"type": "object"}}
	historyResult = `{"events":[{"amount":150},{"amount":200},{"amount":300},{"amount":20}],"count":4}`
)

type item struct {
	id, text string
	outcomes []string
}

// decision is what the server saw for one decided item.
type decision struct {
	eventID, text, model, stopReason string
	inputTokens, outputTokens        int64
	usage                            bool
	rounds                           int
	// legacy reports that the session was initialized on a version before
	// 2026-07-28, so the answer came through server-initiated createMessage.
	legacy bool
	// declaredTools: the work call said "tools": true; capabilityTools: a
	// legacy session's client declared sampling.tools.
	declaredTools, capabilityTools bool
	// toolCalls are the tools the model called, in order.
	toolCalls []string
}

func newWorkServer(items ...item) *workServer {
	w := &workServer{
		items:     make(chan item, 64),
		decisions: make(chan decision, 64),
		stop:      make(chan struct{}),
		leases:    map[string]item{},
		rounds:    map[string]int{},
		declared:  map[string]bool{},
		convs:     map[string][]llm.Message{},
		calls:     map[string][]string{},
	}
	for _, it := range items {
		w.items <- it
	}
	return w
}

func items(n int, outcomes ...string) []item {
	out := make([]item, n)
	for i := range out {
		out[i] = item{id: fmt.Sprintf("evt-%d", i), text: fmt.Sprintf("amount: %d\ncountry: DE\nip_country: DE", i*997), outcomes: outcomes}
	}
	return out
}

// mcpServer returns a new MCP server offering triage_next over w. opts may
// be nil.
func (w *workServer) mcpServer(opts *mcp.ServerOptions) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "test-consumer", Version: "v0"}, opts)
	s.AddTool(&mcp.Tool{
		Name: work.ToolName,
		InputSchema: &jsonschema.Schema{Type: "object", Properties: map[string]*jsonschema.Schema{
			"wait_ms": {Type: "integer"},
		}},
	}, w.handle)
	return s
}

func (w *workServer) handle(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if req.Params.RequestState != "" {
		return w.complete(req)
	}
	var in work.Args
	if len(req.Params.Arguments) > 0 {
		if err := json.Unmarshal(req.Params.Arguments, &in); err != nil {
			return nil, fmt.Errorf("arguments: %w", err)
		}
	}
	if in.WaitMS <= 0 {
		in.WaitMS = 20000
	}
	t := time.NewTimer(time.Duration(in.WaitMS) * time.Millisecond)
	defer t.Stop()
	select {
	case it := <-w.items:
		var ir mcp.InputRequest = params(it, it.text)
		w.mu.Lock()
		w.leases[it.id] = it
		w.declared[it.id] = in.Tools
		if w.tools && in.Tools {
			w.convs[it.id] = []llm.Message{{Role: llm.RoleUser, Text: it.text}}
			ir = toolParams(it, w.convs[it.id])
		}
		w.mu.Unlock()
		return &mcp.CallToolResult{
			InputRequests: mcp.InputRequestMap{work.InputKey: ir},
			RequestState:  it.id,
		}, nil
	case <-t.C:
	case <-w.stop:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &mcp.CallToolResult{StructuredContent: work.Result{Status: work.StatusIdle}}, nil
}

func (w *workServer) complete(req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	id := req.Params.RequestState
	w.mu.Lock()
	it, ok := w.leases[id]
	w.rounds[id]++
	rounds := w.rounds[id]
	w.mu.Unlock()
	if !ok {
		return &mcp.CallToolResult{StructuredContent: work.Result{Status: work.StatusExpired, EventID: id}}, nil
	}
	d := decision{eventID: id, rounds: rounds}
	if ip := req.Session.InitializeParams(); ip != nil && ip.ProtocolVersion < "2026-07-28" {
		d.legacy = true
		d.capabilityTools = ip.Capabilities != nil && ip.Capabilities.Sampling != nil && ip.Capabilities.Sampling.Tools != nil
	}
	if msg, failed := work.AnswerError(req.Params.InputResponses[work.InputKey]); failed {
		w.mu.Lock()
		w.failures = append(w.failures, msg)
		w.mu.Unlock()
	}
	r, ok := work.ResponseFromMCP(req.Params.InputResponses[work.InputKey])
	if !ok {
		return nil, fmt.Errorf("input response %T", req.Params.InputResponses[work.InputKey])
	}
	if len(r.ToolCalls) > 0 {
		// Run the calls and ask again with the conversation so far, as
		// triage's server does.
		results := make([]llm.ToolResult, 0, len(r.ToolCalls))
		for _, c := range r.ToolCalls {
			res := llm.ToolResult{CallID: c.ID, Content: historyResult}
			if c.Name != historyTool.Name {
				res = llm.ToolResult{CallID: c.ID, Content: "unknown tool", IsError: true}
			}
			results = append(results, res)
		}
		w.mu.Lock()
		conv := append(w.convs[id],
			llm.Message{Role: llm.RoleAssistant, Text: r.Text, ToolCalls: r.ToolCalls},
			llm.Message{Role: llm.RoleUser, ToolResults: results})
		w.convs[id] = conv
		for _, c := range r.ToolCalls {
			w.calls[id] = append(w.calls[id], c.Name)
		}
		w.mu.Unlock()
		return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{work.InputKey: toolParams(it, conv)}, RequestState: id}, nil
	}
	w.mu.Lock()
	d.declaredTools, d.toolCalls = w.declared[id], w.calls[id]
	w.mu.Unlock()
	d.text, d.model, d.stopReason = r.Text, r.Model, r.StopReason
	d.inputTokens, d.outputTokens, d.usage = r.InputTokens, r.OutputTokens, r.InputTokens != 0 || r.OutputTokens != 0
	if w.corrective && rounds == 1 {
		follow := params(it, it.text)
		follow.Messages = append(follow.Messages,
			&mcp.SamplingMessage{Role: "assistant", Content: &mcp.TextContent{Text: d.text}},
			&mcp.SamplingMessage{Role: "user", Content: &mcp.TextContent{Text: "Answer again with one JSON object."}})
		return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{work.InputKey: follow}, RequestState: id}, nil
	}
	var answer struct {
		Outcome string `json:"outcome"`
	}
	if err := json.Unmarshal([]byte(d.text), &answer); err != nil {
		return nil, fmt.Errorf("answer %q: %w", d.text, err)
	}
	w.mu.Lock()
	delete(w.leases, id)
	w.mu.Unlock()
	w.decisions <- d
	return &mcp.CallToolResult{StructuredContent: work.Result{
		Status: work.StatusDecided, EventID: id, Outcome: answer.Outcome,
	}}, nil
}

// params is the sampling request triage builds for an item.
func params(it item, text string) *mcp.CreateMessageParams {
	return &mcp.CreateMessageParams{
		SystemPrompt: "You decide. Answer with one JSON object.",
		Messages:     []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: text}}},
		ModelPreferences: &mcp.ModelPreferences{
			Hints:        []*mcp.ModelHint{{Name: "haiku"}},
			CostPriority: 0.8,
		},
		Temperature:   0.2,
		MaxTokens:     128,
		StopSequences: []string{"\n\n"},
		Metadata: map[string]any{
			"event_id": it.id, "type": "transaction", "outcomes": it.outcomes, "fallback": it.outcomes[len(it.outcomes)-1],
		},
	}
}

// failed returns the error texts of the failed answers so far.
func (w *workServer) failed() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.failures...)
}

// toolParams is the sampling request with tools triage builds for an item
// whose conversation is conv.
func toolParams(it item, conv []llm.Message) *mcp.CreateMessageWithToolsParams {
	p := params(it, it.text)
	return &mcp.CreateMessageWithToolsParams{
		SystemPrompt: p.SystemPrompt, Messages: work.MessagesToMCP(conv), ModelPreferences: p.ModelPreferences,
		Temperature: p.Temperature, MaxTokens: p.MaxTokens, StopSequences: p.StopSequences, Metadata: p.Metadata,
		Tools: work.ToolsToMCP([]llm.Tool{historyTool}),
	}
}

func textContent(c mcp.Content) string {
	if t, ok := c.(*mcp.TextContent); ok {
		return t.Text
	}
	return fmt.Sprintf("<%T>", c)
}
