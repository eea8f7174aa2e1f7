package sampling

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/sampling/work"
)

// sessionIdle closes stateful sessions idle for this long.
const sessionIdle = 5 * time.Minute

func (p *Pool) newServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: p.opts.Name, Version: p.opts.Version}, &mcp.ServerOptions{
		Instructions: "Samplers: call " + work.ToolName + " repeatedly to receive triage decisions to make; each comes as a sampling request. " +
			"Callers: call " + DecideToolName + " with an event for its decision (when offered).",
		InitializedHandler: p.onInitialized,
		Logger:             p.log,
	})
	tool := &mcp.Tool{
		Name:        work.ToolName,
		Description: "Wait for the next ambiguous event, answer its sampling request, and get the outcome.",
	}
	if out, err := work.ResultSchema(); err != nil {
		// Cannot happen for a fixed type (a test checks); the SDK then
		// infers the schema from work.Result, without the status enum.
		p.log.Error("sampling: work tool output schema", "err", err)
	} else {
		tool.OutputSchema = out
	}
	mcp.AddTool(s, tool, p.next)
	return s
}

// Server is the MCP server that samplers connect to.
func (p *Pool) Server() *mcp.Server { return p.server }

// next is the work tool (see package work for the protocol). The first
// call long-polls and returns the sampling request as an input request; the
// retry carries the answer (fulfilled by the client on 2026-07-28, or by the
// SDK's server-side middleware with CreateMessage for older clients) and
// completes the lease.
func (p *Pool) next(ctx context.Context, req *mcp.CallToolRequest, args work.Args) (*mcp.CallToolResult, work.Result, error) {
	session := sessionName(req.Session, args.Sampler)
	if token := req.Params.RequestState; token != "" {
		return p.complete(ctx, req, token)
	}
	p.markPuller(req.Session, session)
	wait := time.Duration(work.DefaultWaitMS) * time.Millisecond
	if args.WaitMS > 0 {
		wait = time.Duration(min(args.WaitMS, work.MaxWaitMS)) * time.Millisecond
	}
	idle := work.Result{Status: work.StatusIdle}
	// A 2026-07-28 call carries no client capabilities: the sampler says
	// in its arguments that it runs tool loops. An older session said so
	// when it initialized, and the SDK's middleware then sends the input
	// request with sampling/createMessage, tools and all.
	tools := args.Tools
	if !supportsMRTR(req.Session) {
		tools = samplingTools(req.Session)
	}
	region := p.region(req.Extra)
	p.saw(session, protocolOf(req.Session), ModePull, region, tools)
	l := p.take(ctx, wait, ModePull, session, region, tools)
	if l == nil {
		return nil, idle, nil
	}
	if ctx.Err() != nil {
		p.giveBack(l)
		return nil, idle, nil
	}
	// More items, if the sampler takes several a call and they are
	// queued now: one call's round trips then carry them all.
	call := callState{tokens: []string{l.token}}
	reqs := mcp.InputRequestMap{}
	p.mu.Lock()
	reqs[work.InputKey] = p.requestLocked(l)
	for len(call.tokens) < min(args.Items, work.MaxItems) {
		more, _ := p.tryTakeLocked(ModePull, session, region, tools)
		if more == nil {
			break
		}
		reqs[work.InputKeyOf(len(call.tokens))] = p.requestLocked(more)
		call.tokens = append(call.tokens, more.token)
	}
	p.mu.Unlock()
	return &mcp.CallToolResult{InputRequests: reqs, RequestState: call.encode()}, work.Result{}, nil
}

// complete takes the answers of a work call's retry: it asks again for
// the items whose answer leads to another request (together, on
// 2026-07-28), and ends with every item's result once none does.
func (p *Pool) complete(ctx context.Context, req *mcp.CallToolRequest, state string) (*mcp.CallToolResult, work.Result, error) {
	call, ok := decodeCallState(state)
	if !ok {
		return nil, work.Result{Status: work.StatusExpired, Reason: reasonExpired}, nil
	}
	again := callState{done: call.done}
	reqs := mcp.InputRequestMap{}
	for i, token := range call.tokens {
		params, res := p.advance(ctx, req, token, work.InputKeyOf(i))
		if params == nil {
			again.done = append(again.done, res.Item())
			continue
		}
		reqs[work.InputKeyOf(len(again.tokens))] = params
		again.tokens = append(again.tokens, token)
	}
	if len(again.tokens) > 0 {
		return &mcp.CallToolResult{InputRequests: reqs, RequestState: again.encode()}, work.Result{}, nil
	}
	first := again.done[0]
	res := work.Result{Status: first.Status, EventID: first.EventID, TenantID: first.TenantID, Outcome: first.Outcome, Reason: first.Reason}
	if len(again.done) > 1 {
		res.Items = again.done
	}
	return nil, res, nil
}

// callState is a work call's RequestState: the leases of the items whose
// requests are out, in input key order, and the results of the call's
// items already done (a call whose items need rounds of their own carries
// them to its final result). A single lease is its bare token, as before
// calls took several items. The tokens are what the pool trusts, and
// only ever as names of its own leases; the results are the sampler's own
// account, told back to it.
type callState struct {
	tokens []string
	done   []work.ItemResult
}

func (c callState) encode() string {
	s := strings.Join(c.tokens, ",")
	if len(c.done) == 0 {
		return s
	}
	b, _ := json.Marshal(c.done) // plain strings: cannot fail
	return s + "|" + base64.RawURLEncoding.EncodeToString(b)
}

func decodeCallState(s string) (callState, bool) {
	tokens, done, _ := strings.Cut(s, "|")
	c := callState{tokens: strings.Split(tokens, ",")}
	if len(c.tokens) > work.MaxItems {
		return callState{}, false
	}
	if done != "" {
		b, err := base64.RawURLEncoding.DecodeString(done)
		if err != nil || json.Unmarshal(b, &c.done) != nil || len(c.done) > work.MaxItems {
			return callState{}, false
		}
	}
	return c, true
}

// advance completes the lease named token with req's input response
// under key. When the answer leads to another request (a tool round, the
// corrective round), next is that request, to ask for on 2026-07-28; for
// an older client, whose handler the SDK's server-side middleware
// re-invokes only once, the rest of the exchange is asked directly,
// bounded by the lease as a push is. Otherwise next is nil and res is the
// item's final result.
func (p *Pool) advance(ctx context.Context, req *mcp.CallToolRequest, token, key string) (next mcp.InputRequest, res work.Result) {
	answer := req.Params.InputResponses[key]
	if msg, failed := work.AnswerError(answer); failed {
		return nil, p.failLease(token, &samplerError{msg})
	}
	r, ok := work.ResponseFromMCP(answer)
	if !ok {
		return nil, p.failLease(token, errors.New("sampler sent no sampling result"))
	}
	next, res = p.answer(token, r)
	if next == nil || supportsMRTR(req.Session) {
		return next, res
	}
	return nil, p.converse(ctx, req.Session, token, next)
}

// samplerError is a sampler's own account of why it could not answer.
type samplerError struct{ msg string }

func (e *samplerError) Error() string { return "sampler: " + e.msg }

func supportsMRTR(ss *mcp.ServerSession) bool {
	ip := ss.InitializeParams()
	return ip == nil || ip.ProtocolVersion >= work.ProtocolMRTR // stateless 2026-07-28 sessions have no initialize
}

// samplingTools reports whether a legacy session declared that it runs
// tool loops (capabilities.sampling.tools, 2025-11-25).
func samplingTools(ss *mcp.ServerSession) bool {
	ip := ss.InitializeParams()
	return ip != nil && ip.Capabilities != nil && ip.Capabilities.Sampling != nil && ip.Capabilities.Sampling.Tools != nil
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

// Token is a bearer token samplers authenticate with on /mcp, and the
// region it binds them to: a sampler's region is the one its operator
// gave its token, never one it claims, and tenants restricted to regions
// (rules.TenantPolicy) are served only by samplers of those regions.
type Token struct {
	Secret string
	// Region is empty for a token bound to no region: its samplers take
	// only the work of tenants without a restriction.
	Region string
}

// regionKey is the auth.TokenInfo.Extra key of a token's region.
const regionKey = "region"

// region is the region of the sampler that sent a request: its token's,
// or, for an in-process sampler (no HTTP, no token), the pool's own.
func (p *Pool) region(extra *mcp.RequestExtra) string {
	if extra == nil || extra.TokenInfo == nil {
		if extra == nil || extra.Header == nil {
			return p.opts.Region
		}
		return ""
	}
	r, _ := extra.TokenInfo.Extra[regionKey].(string)
	return r
}

// Handler serves the MCP server over Streamable HTTP for both protocol
// generations: requests that name protocol 2026-07-28 or later go to a
// stateless handler (pull only: the server may not send requests), all
// others to a stateful one (pull, and push to hosts that do not pull). With
// a non-empty token, every request must carry "Authorization: Bearer token";
// its samplers are bound to no region (see HandlerTokens).
func (p *Pool) Handler(token string) http.Handler {
	if token == "" {
		return p.HandlerTokens(nil)
	}
	return p.HandlerTokens([]Token{{Secret: token}})
}

// HandlerTokens is Handler for several tokens, each binding its samplers
// to a region. With no tokens, requests need none.
func (p *Pool) HandlerTokens(tokens []Token) http.Handler {
	getServer := func(*http.Request) *mcp.Server { return p.server }
	// A sampler that vanished without closing its session must not hold it
	// (and its push workers) forever; live samplers call at least every
	// work.MaxWaitMS, and cmd/sampler pings push-only sessions (KeepAlive).
	stateful := mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{SessionTimeout: sessionIdle})
	stateless := mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{Stateless: true})
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Mcp-Protocol-Version") >= work.ProtocolMRTR {
			stateless.ServeHTTP(w, r)
			return
		}
		stateful.ServeHTTP(w, r)
	})
	if len(tokens) > 0 {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if id := r.Header.Get("Mcp-Session-Id"); id != "" {
				if ti := auth.TokenInfoFromContext(r.Context()); ti != nil {
					region, _ := ti.Extra[regionKey].(string)
					p.noteRegion(id, region)
				}
			}
			inner.ServeHTTP(w, r)
		})
		verify := func(_ context.Context, got string, _ *http.Request) (*auth.TokenInfo, error) {
			// Every token is compared, in constant time each, so that the
			// time taken does not tell which one nearly matched.
			match := -1
			for i := range tokens {
				if subtle.ConstantTimeCompare([]byte(got), []byte(tokens[i].Secret)) == 1 {
					match = i
				}
			}
			if match < 0 {
				return nil, fmt.Errorf("sampling: %w", auth.ErrInvalidToken)
			}
			// UserID names the token, so that the SDK refuses a session's
			// requests made with another token (of another region).
			return &auth.TokenInfo{Expiration: time.Now().Add(time.Hour), UserID: "token-" + strconv.Itoa(match),
				Extra: map[string]any{regionKey: tokens[match].Region}}, nil
		}
		h = auth.RequireBearerToken(verify, nil)(h)
	}
	return h
}
