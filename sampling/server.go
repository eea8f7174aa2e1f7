package sampling

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/sampler"
)

// WorkTool is the name of the tool samplers call to pull work.
const WorkTool = sampler.ToolName

// decisionKey names the sampling request inside InputRequests.
const decisionKey = "decision"

// Work tool bounds on the long poll.
const (
	defaultWait = 20 * time.Second
	maxWait     = 30 * time.Second
)

// sessionIdle closes stateful sessions idle for this long.
const sessionIdle = 5 * time.Minute

// protocolMRTR is the first protocol version with multi round-trip requests
// (SEP-2322) and without server-initiated requests.
const protocolMRTR = "2026-07-28"

// NextArgs are the work tool's arguments.
type NextArgs struct {
	// WaitMS is how long to wait for work before returning idle; default
	// 20000, at most 30000.
	WaitMS int `json:"wait_ms,omitempty" jsonschema:"milliseconds to wait for work before returning idle (default 20000, max 30000)"`
	// Sampler names the calling sampler in audit records.
	Sampler string `json:"sampler,omitempty" jsonschema:"name of the sampler, recorded in audit records"`
}

// NextResult is the work tool's final structured result.
type NextResult struct {
	// Status is idle (no work within the wait), decided, fallback (the
	// answer did not fit even after a correction) or expired (the lease
	// ended before the answer came; the item went back to the queue).
	Status  string `json:"status"`
	EventID string `json:"event_id,omitempty"`
}

func (p *Pool) newServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: p.opts.Name, Version: p.opts.Version}, &mcp.ServerOptions{
		Instructions:       "Call " + WorkTool + " repeatedly to receive triage decisions to make; each comes as a sampling request.",
		InitializedHandler: p.onInitialized,
		Logger:             p.log,
	})
	mcp.AddTool(s, &mcp.Tool{
		Name:        WorkTool,
		Description: "Wait for the next ambiguous event, answer its sampling request, and get the outcome.",
	}, p.next)
	return s
}

// Server is the MCP server that samplers connect to.
func (p *Pool) Server() *mcp.Server { return p.server }

// next is the work tool. The first call long-polls and returns the sampling
// request as an input request; the retry carries the answer (fulfilled by
// the client on 2026-07-28, or by the SDK's server-side middleware with
// CreateMessage for older clients) and completes the lease.
func (p *Pool) next(ctx context.Context, req *mcp.CallToolRequest, args NextArgs) (*mcp.CallToolResult, NextResult, error) {
	session := sessionName(req.Session, args.Sampler)
	if token := req.Params.RequestState; token != "" {
		return p.complete(ctx, req, token)
	}
	if id := req.Session.ID(); id != "" {
		p.markPuller(id)
	}
	wait := defaultWait
	if args.WaitMS > 0 {
		wait = min(time.Duration(args.WaitMS)*time.Millisecond, maxWait)
	}
	l := p.take(ctx, wait, ModePull, session)
	if l == nil {
		return nil, NextResult{Status: sampler.StatusIdle}, nil
	}
	if ctx.Err() != nil {
		p.giveBack(l)
		return nil, NextResult{Status: sampler.StatusIdle}, nil
	}
	p.mu.Lock()
	params := l.job.conv.mcpParams()
	p.mu.Unlock()
	return &mcp.CallToolResult{
		InputRequests: mcp.InputRequestMap{decisionKey: params},
		RequestState:  l.token,
	}, NextResult{}, nil
}

func (p *Pool) complete(ctx context.Context, req *mcp.CallToolRequest, token string) (*mcp.CallToolResult, NextResult, error) {
	r, ok := replyFromMCP(req.Params.InputResponses[decisionKey])
	if !ok {
		p.failLease(token, errors.New("sampler sent no sampling result"))
		return nil, NextResult{Status: statusFallback}, nil
	}
	next, status, eventID := p.answer(token, r)
	if next != nil {
		if supportsMRTR(req.Session) {
			return &mcp.CallToolResult{
				InputRequests: mcp.InputRequestMap{decisionKey: next},
				RequestState:  token,
			}, NextResult{}, nil
		}
		// The SDK's server-side middleware re-invokes the handler only once
		// for an older client, so the corrective round is asked directly.
		res, err := req.Session.CreateMessage(ctx, next)
		if err != nil {
			p.failLease(token, err)
			return nil, NextResult{Status: statusFallback, EventID: eventID}, nil
		}
		r, _ = replyFromMCP(res)
		_, status, eventID = p.answer(token, r)
	}
	return nil, NextResult{Status: status, EventID: eventID}, nil
}

func supportsMRTR(ss *mcp.ServerSession) bool {
	ip := ss.InitializeParams()
	return ip == nil || ip.ProtocolVersion >= protocolMRTR // stateless 2026-07-28 sessions have no initialize
}

func sessionName(ss *mcp.ServerSession, sampler string) string {
	name := sampler
	if ip := ss.InitializeParams(); name == "" && ip != nil && ip.ClientInfo != nil {
		name = ip.ClientInfo.Name
	}
	if id := ss.ID(); id != "" {
		return name + "/" + id
	}
	return name
}

func (p *Pool) markPuller(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pullers[id] = true
}

// Handler serves the MCP server over Streamable HTTP for both protocol
// generations: requests that name protocol 2026-07-28 or later go to a
// stateless handler (pull only: the server may not send requests), all
// others to a stateful one (pull, and push to hosts that do not pull). With
// a non-empty token, every request must carry "Authorization: Bearer token".
func (p *Pool) Handler(token string) http.Handler {
	getServer := func(*http.Request) *mcp.Server { return p.server }
	// A sampler that vanished without closing its session must not hold it
	// (and its push workers) forever; live samplers call at least every
	// maxWait, and cmd/sampler pings push-only sessions (KeepAlive).
	stateful := mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{SessionTimeout: sessionIdle})
	stateless := mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{Stateless: true})
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Mcp-Protocol-Version") >= protocolMRTR {
			stateless.ServeHTTP(w, r)
			return
		}
		stateful.ServeHTTP(w, r)
	})
	if token != "" {
		verify := func(_ context.Context, got string, _ *http.Request) (*auth.TokenInfo, error) {
			if subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				return nil, fmt.Errorf("sampling: %w", auth.ErrInvalidToken)
			}
			return &auth.TokenInfo{Expiration: time.Now().Add(time.Hour)}, nil
		}
		h = auth.RequireBearerToken(verify, nil)(h)
	}
	return h
}
