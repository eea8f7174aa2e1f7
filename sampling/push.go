package sampling

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/sampling/work"
)

// pushWait bounds one wait for work by a push worker, so that it notices a
// session that started pulling.
const pushWait = 5 * time.Second

// onInitialized watches a legacy session (only sessions on protocol
// 2025-11-25 or older initialize) that declared sampling: if it does not
// call the work tool within PushGrace, it is a host such as a desktop
// assistant that answers sampling but does not pull, and the pool pushes
// work to it with sampling/createMessage.
func (p *Pool) onInitialized(_ context.Context, req *mcp.InitializedRequest) {
	ss := req.Session
	ip := ss.InitializeParams()
	if ip == nil || ip.Capabilities == nil || ip.Capabilities.Sampling == nil {
		return
	}
	name := sessionName(ss, "")
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx.Err() != nil { // closing: Close may already wait for the workers
		return
	}
	s := p.sessionLocked(ss)
	s.named(name)
	s.inProcess = ss.ID() == "" // no HTTP request, no token
	ctx := s.ctx
	p.wg.Go(func() { p.push(ctx, ss, name) })
}

// push is a session's push worker: after PushGrace, unless the session
// pulls, it runs PushInFlight push loops until ctx ends (the session or the
// pool does).
func (p *Pool) push(ctx context.Context, ss *mcp.ServerSession, name string) {
	grace := time.NewTimer(p.opts.PushGrace)
	defer grace.Stop()
	select {
	case <-grace.C:
	case <-ctx.Done():
		return
	}
	if p.isPuller(ss) {
		return
	}
	p.log.Info("pushing sampling requests to a session that does not pull", "session", name)
	var loops sync.WaitGroup
	for range p.opts.PushInFlight {
		loops.Go(func() { p.pushLoop(ctx, ss, name) })
	}
	loops.Wait()
}

// pushLoop is one in-flight slot of a push session: it takes the next item
// (the least-loaded session is the one with a free slot), sends it, and
// completes the lease with the answer.
func (p *Pool) pushLoop(ctx context.Context, ss *mcp.ServerSession, name string) {
	for ctx.Err() == nil {
		if p.isPuller(ss) {
			return
		}
		region, tools := p.sessionRegion(ss), samplingTools(ss)
		p.saw(name, protocolOf(ss), ModePush, region, tools)
		l := p.take(ctx, pushWait, ModePush, name, region, tools)
		if l == nil {
			continue
		}
		p.mu.Lock()
		params := p.requestLocked(l)
		p.mu.Unlock()
		p.converse(ctx, ss, l.token, params)
	}
}

// converse sends params on the lease named token, and each request the
// answers lead to (tool rounds, the corrective round), until the lease
// ends; it returns the work tool's final result.
func (p *Pool) converse(ctx context.Context, ss *mcp.ServerSession, token string, params mcp.InputRequest) work.Result {
	var res work.Result
	for params != nil {
		params, res = p.send(ctx, ss, token, params)
	}
	return res
}

// send sends one sampling request on the lease named token, bounded by the
// lease (see lease), and completes the lease with the answer. It returns
// the request to send next, if the answer asks for one: a request that
// offers tools goes as sampling/createMessage with tools, which the
// session declared it supports (see take).
func (p *Pool) send(ctx context.Context, ss *mcp.ServerSession, token string, params mcp.InputRequest) (mcp.InputRequest, work.Result) {
	lctx, cancel, ok := p.leaseContext(ctx, token)
	if !ok {
		return nil, work.Result{Status: work.StatusExpired, Reason: reasonExpired}
	}
	defer cancel()
	var (
		res any
		err error
	)
	switch q := params.(type) {
	case *mcp.CreateMessageWithToolsParams:
		res, err = ss.CreateMessageWithTools(lctx, q)
	case *mcp.CreateMessageParams:
		res, err = ss.CreateMessage(lctx, q)
	default:
		err = fmt.Errorf("sampling: cannot send a %T", params) // cannot happen: conversation builds both
	}
	if err == nil {
		if msg, failed := work.AnswerError(res); failed {
			err = &samplerError{msg}
		}
	}
	if err != nil {
		return nil, p.failLease(token, err)
	}
	r, _ := work.ResponseFromMCP(res)
	return p.answer(token, r)
}
