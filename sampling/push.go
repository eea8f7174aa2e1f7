package sampling

import (
	"context"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
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
	p.wg.Go(func() {
		ctx, cancel := context.WithCancel(p.ctx)
		defer cancel()
		go func() { // ends when the session does, or with cancel on return
			_ = ss.Wait()
			cancel()
		}()
		select {
		case <-time.After(p.opts.PushGrace):
		case <-ctx.Done():
			return
		}
		if p.isPuller(ss.ID()) {
			return
		}
		p.log.Info("pushing sampling requests to a session that does not pull", "session", name)
		done := make(chan struct{}, p.opts.PushInFlight)
		for range p.opts.PushInFlight {
			go func() {
				defer func() { done <- struct{}{} }()
				p.pushLoop(ctx, ss, name)
			}()
		}
		for range p.opts.PushInFlight {
			<-done
		}
	})
}

func (p *Pool) isPuller(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return id != "" && p.pullers[id]
}

// pushLoop is one in-flight slot of a push session: it takes the next item
// (the least-loaded session is the one with a free slot), sends it, and
// completes the lease with the answer.
func (p *Pool) pushLoop(ctx context.Context, ss *mcp.ServerSession, name string) {
	for ctx.Err() == nil {
		if p.isPuller(ss.ID()) {
			return
		}
		l := p.take(ctx, pushWait, ModePush, name)
		if l == nil {
			continue
		}
		p.mu.Lock()
		params := l.job.conv.mcpParams()
		timeout := l.job.conv.prompt.Timeout
		p.mu.Unlock()
		for params != nil {
			cctx, cancel := context.WithTimeout(ctx, timeout)
			res, err := ss.CreateMessage(cctx, params)
			cancel()
			if err != nil {
				p.failLease(l.token, err)
				break
			}
			r, _ := replyFromMCP(res)
			params, _, _ = p.answer(l.token, r)
		}
	}
}
