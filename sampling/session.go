package sampling

import (
	"context"
	"slices"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// session is what the pool knows about a live legacy (≤ 2025-11-25)
// session: whether it pulls, and a context for its push worker. Only legacy
// sessions are tracked, from their first pull or their initialization: the
// pool may push only to them, and only they outlive a call (a 2026-07-28
// session lasts one HTTP request).
type session struct {
	ctx    context.Context // ends when the session or the pool does
	puller bool            // it called the work tool: do not push to it
	names  []string        // it took work by these names: its breakers
	// inProcess: a session with no HTTP (the builtin sampler), in the
	// pool's own region; others are in their token's (noteRegion).
	inProcess bool
}

// sessionLocked returns the record of ss, creating it on first sight with
// the one goroutine per session that waits for ss to end, then cancels its
// context and forgets it, so that Pool.sessions holds live sessions only.
// That goroutine ends with the session: when the client closes it, its
// connection breaks, or the HTTP handler closes it after sessionIdle.
func (p *Pool) sessionLocked(ss *mcp.ServerSession) *session {
	if s := p.sessions[ss]; s != nil {
		return s
	}
	ctx, cancel := context.WithCancel(p.ctx)
	s := &session{ctx: ctx}
	p.sessions[ss] = s
	go func() {
		_ = ss.Wait()
		cancel()
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(p.sessions, ss)
		delete(p.regions, ss.ID())
		for _, name := range s.names {
			p.forgetBreakerLocked(name)
		}
	}()
	return s
}

// markPuller remembers that ss pulls, so that the pool does not push to it,
// and under which name, so that its breaker goes with it.
func (p *Pool) markPuller(ss *mcp.ServerSession, name string) {
	if supportsMRTR(ss) { // never pushed to, and never ends: see breakerIdle
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.sessionLocked(ss)
	s.puller = true
	s.named(name)
}

// maxNames bounds the names a session's record keeps. A session that
// calls itself by more names than this (the sampler argument is the
// caller's to choose) leaves the breakers of the others to the idle sweep
// (breakerIdle).
const maxNames = 8

// named records a name the session takes work by.
func (s *session) named(name string) {
	if len(s.names) < maxNames && !slices.Contains(s.names, name) {
		s.names = append(s.names, name)
	}
}

// isPuller reports whether ss called the work tool.
func (p *Pool) isPuller(ss *mcp.ServerSession) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.sessions[ss]
	return s != nil && s.puller
}

// noteRegion records the region of the token that authenticated a request
// of the legacy session named id. The SDK hands the notification that
// starts pushing (initialized) no request metadata, so the push loops
// read the region the session's HTTP requests carried; a session whose
// region is not known has none, and is given no work of a tenant
// restricted to regions. The record goes with the session; ids the pool
// never sees a session for (a client's mistake or a forgery: the SDK
// refuses them) are bounded by maxRegions.
func (p *Pool) noteRegion(id, region string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.regions[id]; ok || len(p.regions) < maxRegions {
		p.regions[id] = region
	}
}

// maxRegions bounds the session regions the pool records.
const maxRegions = 10_000

// sessionRegion is the region of a legacy session that the pool pushes to.
func (p *Pool) sessionRegion(ss *mcp.ServerSession) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.sessions[ss]; s != nil && s.inProcess {
		return p.opts.Region
	}
	return p.regions[ss.ID()]
}
