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
		return p.complete(ctx, req, args, token)
	}
	p.markPuller(req.Session, session)
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
	began := time.Now()
	l := p.takeFor(ctx, waitOf(args), session, region, tools)
	if l == nil {
		return nil, work.Result{Status: work.StatusIdle}, nil
	}
	call := callState{round: 1}
	if args.Rounds > 0 {
		call.began = began.UnixMilli()
	}
	reqs := mcp.InputRequestMap{}
	p.mu.Lock()
	call.add(l, reqs, p.requestLocked(l))
	p.takeMoreLocked(&call, reqs, args, session, region, tools)
	p.mu.Unlock()
	return &mcp.CallToolResult{InputRequests: reqs, RequestState: call.encode()}, work.Result{}, nil
}

// takeFor waits up to wait for an item for a work call, which it leases;
// an item taken as the call's request ended goes back to the queue.
func (p *Pool) takeFor(ctx context.Context, wait time.Duration, session, region string, tools bool) *lease {
	l := p.take(ctx, wait, ModePull, session, region, tools)
	if l != nil && ctx.Err() != nil {
		p.giveBack(l)
		return nil
	}
	return l
}

// waitOf is the long-poll wait a call asks for.
func waitOf(args work.Args) time.Duration {
	if args.WaitMS > 0 {
		return time.Duration(min(args.WaitMS, work.MaxWaitMS)) * time.Millisecond
	}
	return time.Duration(work.DefaultWaitMS) * time.Millisecond
}

// takeMoreLocked adds to call the items queued now that a sampler taking
// args.Items a call may take besides those it has out (one call's round
// trips then carry them all), as far as the call's rounds allow.
func (p *Pool) takeMoreLocked(call *callState, reqs mcp.InputRequestMap, args work.Args, session, region string, tools bool) {
	for len(call.tokens) < min(args.Items, work.MaxItems) && call.room(args) {
		l, _ := p.tryTakeLocked(ModePull, session, region, tools)
		if l == nil {
			return
		}
		if !call.fits(l, args) {
			p.giveBackLocked(l)
			return
		}
		call.add(l, reqs, p.requestLocked(l))
	}
}

// complete takes the answers of a work call's retry: it asks again for
// the items whose answer leads to another request (together, on
// 2026-07-28), adds queued items when the sampler allows more rounds
// (work.Args Rounds), and ends with every item's result once no item is
// out.
func (p *Pool) complete(ctx context.Context, req *mcp.CallToolRequest, args work.Args, state string) (*mcp.CallToolResult, work.Result, error) {
	call, ok := decodeCallState(state)
	if !ok {
		return nil, work.Result{Status: work.StatusExpired, Reason: reasonExpired}, nil
	}
	again := callState{done: call.done, round: call.round + 1, began: call.began}
	reqs := mcp.InputRequestMap{}
	for i, token := range call.tokens {
		params, res := p.advance(ctx, req, token, work.InputKeyOf(i))
		if params == nil {
			again.done = append(again.done, res.Item())
			continue
		}
		again.tokens = append(again.tokens, token)
		reqs[work.InputKeyOf(len(again.tokens)-1)] = params
	}
	if args.Rounds > 0 && call.began > 0 && supportsMRTR(req.Session) {
		p.chain(ctx, req, args, &again, reqs)
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

// chain adds further items to a 2026-07-28 call whose client takes more
// rounds: those queued now, or, when none of its items is out any more,
// the first to arrive within what is left of the call's first wait. A
// call therefore lasts its wait and the exchange of the items it took
// last, as one without rounds does, and its retry carries the next
// item's request instead of a final result the sampler would have to
// answer with a new call.
func (p *Pool) chain(ctx context.Context, req *mcp.CallToolRequest, args work.Args, call *callState, reqs mcp.InputRequestMap) {
	left := waitOf(args) - time.Since(time.UnixMilli(call.began))
	if left <= 0 || !call.room(args) {
		return
	}
	session, region := sessionName(req.Session, args.Sampler), p.region(req.Extra)
	var l *lease
	if len(call.tokens) == 0 {
		if l = p.takeFor(ctx, left, session, region, args.Tools); l == nil {
			return
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if l != nil {
		if !call.fits(l, args) {
			p.giveBackLocked(l)
			return
		}
		call.add(l, reqs, p.requestLocked(l))
	}
	p.takeMoreLocked(call, reqs, args, session, region, args.Tools)
}

// callState is a work call's RequestState: the leases of the items whose
// requests are out, in input key order, the results of the call's items
// already done (a call whose items need rounds of their own carries them
// to its final result), how many input rounds the call has had and when
// it began. A bare token, as calls had before they took several items, is
// still read as a call's first round. The tokens are what the pool
// trusts, and only ever as names of its own leases; the rest is the
// sampler's own account, told back to it: a sampler that alters it only
// mistimes its own calls.
type callState struct {
	tokens []string
	done   []work.ItemResult
	round  int   // the input rounds the call has had, this one included
	began  int64 // Unix milliseconds; 0 for a call without Args.Rounds
}

// add makes l one of the call's items, whose request is params.
func (c *callState) add(l *lease, reqs mcp.InputRequestMap, params mcp.InputRequest) {
	reqs[work.InputKeyOf(len(c.tokens))] = params
	c.tokens = append(c.tokens, l.token)
}

// room reports whether the call may take one more item: within MaxItems
// in all, and, when args.Rounds bounds the rounds, with the two rounds an
// item needs at least (its request and the corrective one) left.
func (c *callState) room(args work.Args) bool {
	if len(c.tokens)+len(c.done) >= work.MaxItems {
		return false
	}
	return args.Rounds <= 0 || c.round+1 <= args.Rounds
}

// fits reports whether l's longest exchange, its request, every tool round
// its type allows when the request offers tools, and the corrective round,
// ends within the rounds args allows the call.
func (c *callState) fits(l *lease, args work.Args) bool {
	if args.Rounds <= 0 {
		return true
	}
	longest := 2
	if l.tools && l.job.conv.tools != nil {
		longest += l.job.conv.prompt.MaxToolRounds
	}
	return c.round+longest-1 <= args.Rounds
}

func (c callState) encode() string {
	s := strings.Join(c.tokens, ",")
	var done string
	if len(c.done) > 0 {
		b, _ := json.Marshal(c.done) // plain strings: cannot fail
		done = base64.RawURLEncoding.EncodeToString(b)
	}
	switch {
	case c.began > 0:
		return s + "|" + done + "|" + strconv.Itoa(c.round) + "|" + strconv.FormatInt(c.began, 10)
	case done != "":
		return s + "|" + done
	}
	return s
}

// decodeCallState reads a RequestState: "tokens", "tokens|done", or, for a
// call that takes further rounds, "tokens|done|round|began".
func decodeCallState(s string) (callState, bool) {
	f := strings.Split(s, "|")
	c := callState{tokens: strings.Split(f[0], ","), round: 1}
	if len(f) != 1 && len(f) != 2 && len(f) != 4 {
		return callState{}, false
	}
	if len(f) > 1 && f[1] != "" {
		b, err := base64.RawURLEncoding.DecodeString(f[1])
		if err != nil || json.Unmarshal(b, &c.done) != nil {
			return callState{}, false
		}
	}
	if len(f) == 4 {
		var err1, err2 error
		c.round, err1 = strconv.Atoi(f[2])
		c.began, err2 = strconv.ParseInt(f[3], 10, 64)
		if err1 != nil || err2 != nil || c.round < 1 || c.began <= 0 {
			return callState{}, false
		}
	}
	if len(c.tokens)+len(c.done) > work.MaxItems {
		return callState{}, false
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
