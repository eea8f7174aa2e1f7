package sampling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
	"github.com/triage-dev/triage/sampling/work"
)

// The decide tool: synchronous decisions over MCP
//
// An MCP client calls DecideToolName with one event and gets its decision
// in the same call, made by the stream's rules, guards, sampling and
// records (pipeline.Sync, channel mcp). When the rules leave the event to
// the LLM and the calling client declared sampling, the request goes back
// to that client, as the pattern's canonical example asks: on 2026-07-28
// the call returns the request as an input request and the client's retry
// carries the answer; on older sessions the SDK's server-side middleware
// sends it with sampling/createMessage, and later rounds (tools, the
// corrective round) are sent the same way. The item is then leased to the
// caller (mode caller) under the pool's rules: the type's timeout bounds
// each request, and a lease that expires or fails goes to the pool's
// samplers or falls back, like any other. A client that did not declare
// sampling, a tenant whose regions exclude the caller's, or
// DecideOptions.PoolOnly, leave the item to the pool.
//
// The call's RequestState names the lease, known to this process only: a
// retry that a load balancer sends to another instance is refused, and
// the decision is made (by fallback, at worst) and recorded here anyway.

// DecideToolName is the name of the decide tool.
const DecideToolName = "decide"

// Synchronous makes synchronous decisions: pipeline.Sync.
type Synchronous interface {
	Decide(ctx context.Context, req pipeline.SyncRequest) (pipeline.SyncResponse, error)
}

// DecideOptions configure the decide tool.
type DecideOptions struct {
	// PoolOnly sends every sampling request of the tool to the pool's
	// samplers, never back to the calling client.
	PoolOnly bool
}

// DecideArgs are the decide tool's arguments.
type DecideArgs struct {
	// Event is one event, as on the event topics.
	Event json.RawMessage `json:"event"`
	// TimeoutMS, when positive, bounds the LLM stage: past it, the event
	// gets its type's fallback with reason timeout.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// AddDecideTool offers the decide tool on the pool's MCP server, deciding
// with s. Its input schema describes the event types of the live rules,
// and is offered anew after each reload (clients that listen are told the
// tool list changed), until the pool closes.
func (p *Pool) AddDecideTool(s Synchronous, live *rules.Live, opts DecideOptions) error {
	out, err := jsonschema.For[pipeline.SyncAnswer](nil)
	if err != nil {
		return fmt.Errorf("sampling: decide tool output schema: %w", err)
	}
	handler := func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return p.decideTool(ctx, req, s, opts), nil
	}
	add := func(set *rules.Set) {
		p.server.AddTool(&mcp.Tool{
			Name: DecideToolName,
			Description: "Decide one event (types: " + strings.Join(set.Types(), ", ") + ") with triage's rules, and the LLM only when they cannot: " +
				"your own sampling if you declared it, otherwise triage's samplers. Every decision is recorded and audited; " +
				"a retry with the same event returns the first decision.",
			InputSchema: map[string]any{
				"type": "object",
				"properties": map[string]any{
					"event":      set.EventSchema(),
					"timeout_ms": map[string]any{"type": "integer", "minimum": 1, "description": "bound on the LLM stage in milliseconds; past it, the type's fallback"},
				},
				"required": []string{"event"},
			},
			OutputSchema: out,
		}, handler)
	}
	add(live.Current())
	go func() {
		for {
			changed := live.Changed()
			select {
			case <-p.ctx.Done():
				return
			case <-changed:
				add(live.Current())
			}
		}
	}()
	return nil
}

// caller is a decide tool call whose client answers its item's sampling
// requests; Pool.Decide finds it in the item's context.
type caller struct {
	session string
	region  string
	tools   bool
	offer   chan offer  // the item's first request, on its lease
	offered atomic.Bool // the one offer was made
}

type offer struct {
	token  string
	params mcp.InputRequest
}

type callerKey struct{}

func withCaller(ctx context.Context, c *caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

func callerOf(ctx context.Context) *caller {
	c, _ := ctx.Value(callerKey{}).(*caller)
	return c
}

// decideCall is a decide tool call in progress.
type decideCall struct {
	done  chan struct{}
	resp  pipeline.SyncResponse
	err   error
	token string // its lease in Pool.calls, while the caller answers; guarded by Pool.mu
}

func (p *Pool) decideTool(ctx context.Context, req *mcp.CallToolRequest, s Synchronous, opts DecideOptions) *mcp.CallToolResult {
	if token := req.Params.RequestState; token != "" {
		return p.decideAnswered(ctx, req, token)
	}
	var args DecideArgs
	if err := json.Unmarshal(req.Params.Arguments, &args); err != nil {
		return decideError("arguments: " + err.Error())
	}
	if len(args.Event) == 0 || string(args.Event) == "null" {
		return decideError("arguments: event: missing")
	}
	name := callerName(req)
	sreq := pipeline.SyncRequest{Channel: audit.ChannelMCP, Caller: name, Event: args.Event,
		Timeout: time.Duration(args.TimeoutMS) * time.Millisecond}
	dctx := context.WithoutCancel(ctx)
	var c *caller
	if caps := req.ClientCapabilities(); !opts.PoolOnly && caps != nil && caps.Sampling != nil {
		c = &caller{session: name, region: p.region(req.Extra), tools: caps.Sampling.Tools != nil, offer: make(chan offer, 1)}
		dctx = withCaller(dctx, c)
	}
	call := &decideCall{done: make(chan struct{})}
	go func() {
		call.resp, call.err = s.Decide(dctx, sreq)
		p.mu.Lock()
		close(call.done)
		delete(p.calls, call.token)
		p.mu.Unlock()
	}()
	var offered <-chan offer
	if c != nil {
		offered = c.offer
	}
	select {
	case o := <-offered:
		p.mu.Lock()
		select {
		case <-call.done: // decided already (the lease ended at once): nothing to wait for
		default:
			call.token = o.token
			p.calls[o.token] = call
		}
		p.mu.Unlock()
		return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{work.InputKey: o.params}, RequestState: o.token}
	case <-call.done:
		return decideResult(call)
	case <-ctx.Done():
		return callEnded(ctx)
	}
}

// callEnded is the answer of a call whose context ended first: the
// decision goes on and is recorded, and a retry of the call finds it.
func callEnded(ctx context.Context) *mcp.CallToolResult {
	return decideError("the call ended before the decision: " + ctx.Err().Error() + "; call again with the same event for the decision")
}

// decideAnswered takes the caller's answer on the lease named token, and
// returns the next request of the exchange, or the decision.
func (p *Pool) decideAnswered(ctx context.Context, req *mcp.CallToolRequest, token string) *mcp.CallToolResult {
	p.mu.Lock()
	call := p.calls[token]
	p.mu.Unlock()
	if call == nil {
		return decideError("unknown or finished requestState: call again with the same event for its decision")
	}
	if next, _ := p.advance(ctx, req, token, work.InputKey); next != nil {
		return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{work.InputKey: next}, RequestState: token}
	}
	select {
	case <-call.done:
		return decideResult(call)
	case <-ctx.Done():
		return callEnded(ctx)
	}
}

func decideResult(call *decideCall) *mcp.CallToolResult {
	var de *pipeline.DecodeError
	switch {
	case errors.As(call.err, &de):
		return decideError("invalid event: " + de.Error())
	case call.err != nil:
		return decideError(call.err.Error())
	}
	a := call.resp.Answer()
	b, err := json.Marshal(a)
	if err != nil {
		return decideError("encode the decision: " + err.Error()) // cannot happen: plain fields
	}
	return &mcp.CallToolResult{StructuredContent: a, Content: []mcp.Content{&mcp.TextContent{Text: string(b)}}}
}

func decideError(msg string) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "decide: " + msg}}}
}

// callerName names who called: the bearer token's identity when /mcp
// requires one, and the client and its session.
func callerName(req *mcp.CallToolRequest) string {
	var parts []string
	if req.Extra != nil && req.Extra.TokenInfo != nil && req.Extra.TokenInfo.UserID != "" {
		parts = append(parts, req.Extra.TokenInfo.UserID)
	}
	client := "mcp-client"
	if info := req.ClientInfo(); info != nil && info.Name != "" {
		client = info.Name
	}
	parts = append(parts, client)
	if id := req.Session.ID(); id != "" {
		parts = append(parts, id)
	}
	return strings.Join(parts, "/")
}
