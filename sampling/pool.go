package sampling

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/trace"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/sampling/work"
)

// Options configure a Pool. Zero values mean the defaults in the comments.
type Options struct {
	// QueueWait bounds how long an item waits for a sampler to take it; then
	// it gets the fallback with reason no_sampler. Default 5 s.
	QueueWait time.Duration
	// Requeues is how many times an item whose lease expired (the sampler
	// died or hung) goes back to the queue before it gets the fallback with
	// reason lease_expired, and how many times an item whose sampler failed
	// it (an error result) goes back for another sampler; with no other
	// sampler standing by, such an item falls back at once, as in direct
	// mode: its sampler has already retried what its provider allowed.
	// Default 1; negative means never.
	Requeues int
	// PushInFlight bounds the requests pushed to one legacy session at a
	// time. Default 4.
	PushInFlight int
	// PushGrace is how long a legacy session that declared sampling may go
	// without calling the work tool before the pool starts pushing to it.
	// Default 1 s.
	PushGrace time.Duration
	// QuarantineAfter is how many leases in a row a sampler session may
	// fail (an error result, an expired lease, an answer still invalid
	// after the corrective round) before it is quarantined, if failures
	// are also at least half of its leases of the last 10 s and another
	// sampler stands by to take the work: it is given no work for
	// QuarantineFor, and then one lease, whose usable answer ends the
	// quarantine and whose failure starts another (a circuit breaker per
	// session, quarantine.go). Default 3; negative turns quarantine off.
	// Too low a value quarantines a sampler for a short run of bad luck,
	// and its capacity is lost for QuarantineFor; too high a value lets a
	// broken sampler fail more items (each failure re-queues or falls
	// back). A 2026-07-28 sampler that does not name itself (work.Args
	// Sampler) is never quarantined: it cannot be told from others.
	QuarantineAfter int
	// QuarantineFor is how long a quarantined session is given no work.
	// Default 5 s.
	QuarantineFor time.Duration
	// Region is the region of in-process samplers (the builtin sampler on
	// the in-memory transport), which authenticate with no token: the
	// consumer's own. Samplers over HTTP are in the region their token
	// binds them to (see Token), none for a token without one.
	Region string
	// Name and Version identify the MCP server. Defaults "triage", "dev".
	Name, Version string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics, when not nil, receives the pool's Prometheus metrics.
	Metrics *Metrics
	// History, when not nil, is what the transaction_history tool reads;
	// without it, that tool is not offered. Feed it from the pipeline
	// (pipeline.Config.Observe).
	History *History
	// TracerProvider, when not nil, records the spans of each item's
	// sampling (SpanQueue, SpanAttempt, SpanToolCall) under the span of
	// Decide's context, and sends each attempt's trace context to the
	// sampler in the request's _meta. Nil records nothing.
	TracerProvider trace.TracerProvider
}

func (o *Options) setDefaults() {
	if o.QueueWait <= 0 {
		o.QueueWait = 5 * time.Second
	}
	o.Requeues = countOption(o.Requeues, 1)
	o.QuarantineAfter = countOption(o.QuarantineAfter, 3)
	if o.QuarantineFor <= 0 {
		o.QuarantineFor = 5 * time.Second
	}
	if o.PushInFlight <= 0 {
		o.PushInFlight = 4
	}
	if o.PushGrace <= 0 {
		o.PushGrace = time.Second
	}
	if o.Name == "" {
		o.Name = "triage"
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// countOption reads an option that counts: its zero value means def, and
// a negative value none.
func countOption(n, def int) int {
	switch {
	case n == 0:
		return def
	case n < 0:
		return 0
	}
	return n
}

// Pool hands ambiguous items to samplers over MCP: samplers pull them through
// the work tool, or the pool pushes them to legacy hosts. It is the
// pipeline's Decider. Items wait in a queue bounded by the pipeline's worker
// count (each worker blocks in Decide); a taken item is leased to one sampler
// until it answers or the lease expires, and is decided exactly once.
type Pool struct {
	opts   Options
	log    *slog.Logger
	server *mcp.Server
	trace  *tracer // nil: no tracing

	mu       sync.Mutex
	queue    []*job
	notify   chan struct{} // closed and replaced when an item is queued or a breaker changes (wakeLocked)
	leases   map[string]*lease
	sessions map[*mcp.ServerSession]*session // live legacy sessions (session.go)
	regions  map[string]string               // by session id: its token's region (noteRegion)
	breakers map[string]*breaker             // by session name (quarantine.go)
	active   map[string]int                  // takes in progress and leases out, by session name
	seen     map[string]*SamplerInfo         // samplers that asked for work lately (samplers.go)
	calls    map[string]*decideCall          // decide tool calls waiting on their caller's answer, by lease token (decide.go)
	swept    time.Time                       // when breakers were last swept

	// ctx ends when the pool closes. It is cancelled with mu held, so that
	// a push worker is started (wg.Go, under mu) only before Close begins
	// to wait for the workers, never concurrently with that wait.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // push workers
}

type jobState int

const (
	queued jobState = iota
	leased
	finished
)

// job is one item on its way through the pool. All fields but conv are
// guarded by Pool.mu.
type job struct {
	conv *conversation
	// regions, when not empty, are the only sampler regions that may take
	// the job: its tenant's residency policy.
	regions    []string
	state      jobState
	leases     int
	attempts   []audit.Record
	queueTimer *time.Timer
	lease      *lease // the latest lease; current only while in Pool.leases
	// failedBy is the session whose lease on the job failed or expired,
	// and requeued when: for avoidFailed after that, the job is left to
	// other sessions (see take).
	failedBy string
	requeued time.Time
	done     chan struct{}
	verdict  pipeline.Verdict
	err      error
	// tctx is the parent of the job's spans, wait its open wait in the
	// queue (trace.go); both nil without tracing.
	tctx context.Context
	wait trace.Span
}

// lease is one sampler's hold on a job, named by an unguessable token that
// only the pool knows, so a RequestState cannot be forged or replayed.
//
// The lease owns the attempt's deadline: its timer (the type's timeout,
// restarted for the corrective round) expires it, and ending it for any
// reason cancels ctx, which bounds every request the pool sends on it
// (push, the legacy corrective round). So a hung request always ends as an
// expired lease, never in a race between two timers.
type lease struct {
	token   string
	job     *job
	mode    string
	session string
	tools   bool // the sampler runs tool loops: its requests may offer tools
	started time.Time
	done    func(leaseEnd) // tells the session's breaker how the lease ended
	timer   *time.Timer
	ctx     context.Context // ends with the lease, or when the pool closes
	end     context.CancelFunc
	span    trace.Span // the attempt span of the request out, if traced
}

// NewPool creates a pool and its MCP server. Close it to stop pushing.
func NewPool(opts Options) *Pool {
	opts.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{
		opts: opts, log: opts.Logger,
		notify: make(chan struct{}), leases: map[string]*lease{},
		sessions: map[*mcp.ServerSession]*session{}, regions: map[string]string{}, seen: map[string]*SamplerInfo{}, calls: map[string]*decideCall{}, breakers: map[string]*breaker{}, active: map[string]int{},
		ctx: ctx, cancel: cancel, trace: newTracer(opts.TracerProvider),
	}
	p.server = p.newServer()
	return p
}

// Close stops push workers and fails every waiting item with ErrClosed.
// No push worker starts once Close has begun.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.cancel()
	p.mu.Unlock()
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, j := range p.queue {
		p.finishLocked(j, pipeline.Verdict{}, ErrClosed)
	}
	p.queue = nil
	for _, l := range p.leases {
		p.finishLocked(l.job, pipeline.Verdict{}, ErrClosed)
	}
	clear(p.leases)
	return nil
}

// Decide implements pipeline.Decider: it queues the item and waits until a
// sampler's answer decides it, or the item ends in a fallback error. An
// item of the decide tool whose calling client samples (see decide.go) is
// leased to that client instead of queued.
func (p *Pool) Decide(ctx context.Context, it pipeline.Item) (pipeline.Verdict, error) {
	pr, err := promptOf(it)
	if err != nil {
		return pipeline.Verdict{}, err
	}
	j := &job{conv: newConversation(it, pr, p.opts.History), done: make(chan struct{}),
		regions: it.Type.Guards().Tenant(it.Event.TenantID).Regions, tctx: p.trace.parent(ctx)}
	c := callerOf(ctx)
	switch {
	case c == nil:
	case len(j.regions) > 0 && !slices.Contains(j.regions, c.region):
		c = nil // the tenant's data may not go to the caller's region: the pool's samplers of its regions take it
	case !c.offered.CompareAndSwap(false, true):
		c = nil // a caller answers one item: its call's
	}
	p.mu.Lock()
	if p.ctx.Err() != nil {
		p.mu.Unlock()
		return pipeline.Verdict{}, ErrClosed
	}
	if c != nil {
		l := p.leaseLocked(j, ModeCaller, c.session, func(leaseEnd) {})
		l.tools = c.tools
		c.offer <- offer{token: l.token, params: p.requestLocked(l)} // buffered for the one offer: never blocks
	} else {
		p.enqueueLocked(j, false)
	}
	p.mu.Unlock()
	p.opts.Metrics.queued(1)

	select {
	case <-j.done:
		return j.verdict, j.err
	case <-ctx.Done():
		p.mu.Lock()
		defer p.mu.Unlock()
		if j.state == finished { // decided just as ctx ended: keep the decision
			return j.verdict, j.err
		}
		p.finishLocked(j, pipeline.Verdict{}, ctx.Err())
		return j.verdict, ctx.Err()
	}
}

func (p *Pool) enqueueLocked(j *job, front bool) {
	if front {
		p.queue = slices.Insert(p.queue, 0, j)
	} else {
		p.queue = append(p.queue, j)
	}
	j.state = queued
	j.queueTimer = time.AfterFunc(p.opts.QueueWait, func() { p.queueExpired(j) })
	p.trace.queued(j)
	p.wakeLocked()
}

// wakeLocked wakes every take that waits, to look at the queue again.
func (p *Pool) wakeLocked() {
	close(p.notify)
	p.notify = make(chan struct{})
}

func (p *Pool) queueExpired(j *job) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if j.state != queued {
		return
	}
	err := error(ErrNoSampler)
	if j.leases > 0 {
		err = ErrLeaseExpired
	}
	p.finishLocked(j, pipeline.Verdict{}, err)
}

// finishLocked ends a job exactly once, whatever state it is in.
func (p *Pool) finishLocked(j *job, v pipeline.Verdict, err error) {
	if j.state == finished {
		return
	}
	if j.state == queued {
		if i := slices.Index(p.queue, j); i >= 0 {
			p.queue = slices.Delete(p.queue, i, i+1)
		}
	}
	if j.queueTimer != nil {
		j.queueTimer.Stop()
	}
	if l := j.lease; l != nil && p.leases[l.token] == l {
		// Still leased: the pipeline or the pool gave up on the item.
		p.endLeaseLocked(l, leaseDropped)
	}
	p.trace.finished(j, err)
	j.state = finished
	v.Attempts = j.attempts
	v.Tier = j.conv.prompt.Tier
	j.verdict, j.err = v, err
	close(j.done)
	p.opts.Metrics.queued(-1)
}

// avoidFailed is how long a re-queued item is left to sessions other than
// the one whose lease on it failed: a sampler that hangs or fails gets its
// items back only when no other sampler takes them first.
const avoidFailed = 100 * time.Millisecond

// requeueLocked puts a job whose lease by session failed back at the front
// of the queue.
func (p *Pool) requeueLocked(j *job, session string) {
	j.failedBy, j.requeued = session, time.Now()
	p.enqueueLocked(j, true)
}

// take waits up to wait for a queued item that a sampler of region may
// take, and leases it; tools says whether the session runs tool loops. A
// quarantined session waits as if the queue were empty.
func (p *Pool) take(ctx context.Context, wait time.Duration, mode, session, region string, tools bool) *lease {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	p.mu.Lock()
	p.activeLocked(session, 1)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.activeLocked(session, -1)
		p.mu.Unlock()
	}()
	for {
		p.mu.Lock()
		l, retry := p.tryTakeLocked(mode, session, region, tools)
		if l != nil {
			p.mu.Unlock()
			return l
		}
		ch := p.notify
		p.mu.Unlock()
		var again <-chan time.Time
		if retry > 0 {
			again = time.After(retry)
		}
		select {
		case <-ch:
		case <-again:
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return nil
		case <-p.ctx.Done():
			return nil
		}
	}
}

// tryTakeLocked leases the first queued item session may take now, or
// returns nil and, when one is held back from it, how soon to look again.
func (p *Pool) tryTakeLocked(mode, session, region string, tools bool) (*lease, time.Duration) {
	i, retry := p.pickLocked(session, region)
	if i < 0 {
		return nil, retry
	}
	done, held, ok := p.allowLocked(session)
	if !ok {
		return nil, held
	}
	j := p.queue[i]
	p.queue = slices.Delete(p.queue, i, i+1)
	l := p.leaseLocked(j, mode, session, done)
	l.tools = tools
	return l, 0
}

// pickLocked returns the index of the first queued job session, a sampler
// of region, may take, or -1 and, when a job is held back from it, how
// soon to look again. A job whose tenant restricts regions is never taken
// by a sampler of another region: it waits for one, or falls back with
// no_sampler when the queue wait ends.
func (p *Pool) pickLocked(session, region string) (int, time.Duration) {
	var retry time.Duration
	for i, j := range p.queue {
		if len(j.regions) > 0 && !slices.Contains(j.regions, region) {
			continue
		}
		if j.failedBy == "" || j.failedBy != session {
			return i, 0
		}
		left := avoidFailed - time.Since(j.requeued)
		if left <= 0 {
			return i, 0
		}
		if retry == 0 || left < retry {
			retry = left
		}
	}
	return -1, retry
}

func (p *Pool) leaseLocked(j *job, mode, session string, done func(leaseEnd)) *lease {
	if j.queueTimer != nil {
		j.queueTimer.Stop()
	}
	j.state = leased
	j.leases++
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	l := &lease{token: hex.EncodeToString(b[:]), job: j, mode: mode, session: session, started: time.Now(), done: done}
	l.ctx, l.end = context.WithCancel(p.ctx)
	l.timer = time.AfterFunc(j.conv.prompt.Timeout, func() { p.leaseExpired(l) })
	p.leases[l.token] = l
	p.activeLocked(session, 1)
	j.lease = l
	p.trace.leased(j, mode, session)
	return l
}

// endLeaseLocked ends l, which must be current: its timer stops, its token
// is forgotten, requests sent on it are cancelled, and its session's
// breaker learns how it ended.
func (p *Pool) endLeaseLocked(l *lease, e leaseEnd) {
	l.timer.Stop()
	delete(p.leases, l.token)
	p.activeLocked(l.session, -1)
	l.end()
	l.done(e)
}

// leaseContext returns a context for a request the pool sends on the lease
// named token: it ends when ctx does or when the lease ends (expired,
// answered, failed). ok is false when the lease has already ended.
func (p *Pool) leaseContext(ctx context.Context, token string) (context.Context, context.CancelFunc, bool) {
	p.mu.Lock()
	l := p.leases[token]
	p.mu.Unlock()
	if l == nil {
		return nil, nil, false
	}
	rctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(l.ctx, cancel)
	return rctx, func() { stop(); cancel() }, true
}

// giveBack returns an item leased to a caller that has gone (its long poll
// was cancelled as the item arrived): it goes back to the front of the queue
// and the lease does not count.
func (p *Pool) giveBack(l *lease) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.giveBackLocked(l)
}

// giveBackLocked is giveBack with p.mu held; it also returns an item a
// call took but has no room for.
func (p *Pool) giveBackLocked(l *lease) {
	if p.leases[l.token] != l {
		return
	}
	p.endLeaseLocked(l, leaseDropped)
	l.job.leases--
	p.enqueueLocked(l.job, true)
}

// leaseExpired re-queues (at the front: it has waited longest) or falls back.
func (p *Pool) leaseExpired(l *lease) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.leases[l.token] != l {
		return
	}
	p.endLeaseLocked(l, leaseFailed)
	j := l.job
	p.attemptLocked(l, audit.StatusTimeout, nil, "lease expired")
	if j.leases <= p.opts.Requeues {
		p.requeueLocked(j, l.session)
		return
	}
	p.finishLocked(j, pipeline.Verdict{}, ErrLeaseExpired)
}

// reasonExpired is the work tool's reason for an answer on a lease that has
// ended.
const reasonExpired = "the lease is unknown or expired"

// answer completes the lease with a sampler's reply. When the reply calls
// tools (and its request offered them), the tools run and it returns the
// next request of the tool loop; when the reply does not fit the decision
// schema and no correction was asked yet, it returns the corrective
// request. Either goes on the same lease, whose timer restarts. Otherwise
// next is nil and res is the work tool's final result.
func (p *Pool) answer(token string, r llm.Response) (next mcp.InputRequest, res work.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.leases[token]
	if l == nil {
		return nil, work.Result{Status: work.StatusExpired, Reason: reasonExpired}
	}
	j := l.job
	res.EventID, res.TenantID = j.conv.item.Event.ID, j.conv.item.Event.TenantID
	if j.conv.wantsTools(r) {
		p.attemptLocked(l, audit.StatusOK, &r, reasonToolUse)
		calls := j.conv.toolRound(r, l.mode, l.session)
		p.opts.Metrics.toolCalls(calls)
		p.trace.toolCalls(j.tctx, calls)
		j.attempts = append(j.attempts, calls...)
		l.started = time.Now()
		l.timer.Reset(j.conv.prompt.Timeout)
		return p.requestLocked(l), work.Result{}
	}
	a, err := j.conv.parse(r)
	if err != nil {
		p.attemptLocked(l, audit.StatusInvalidAnswer, &r, err.Error())
		if !j.conv.corrected {
			j.conv.correct(r.Text, err)
			l.started = time.Now()
			l.timer.Reset(j.conv.prompt.Timeout)
			return p.requestLocked(l), work.Result{}
		}
		p.endLeaseLocked(l, leaseFailed)
		p.finishLocked(j, pipeline.Verdict{}, fmt.Errorf("%w: %v", ErrInvalidAnswer, err))
		res.Status, res.Reason = work.StatusFallback, "the answer does not fit the decision schema: "+err.Error()
		return nil, res
	}
	p.attemptLocked(l, audit.StatusOK, &r, "")
	p.endLeaseLocked(l, leaseAnswered)
	p.finishLocked(j, pipeline.Verdict{Outcome: a.Outcome, Reason: a.Reason, Score: a.Score, Model: r.Model, Path: pipeline.PathSampled}, nil)
	res.Status, res.Outcome, res.Reason = work.StatusDecided, a.Outcome, a.Reason
	return nil, res
}

// failLease records a sampler error. The item goes back to the queue once
// if another sampler stands by (it may do better) and otherwise falls back.
// res is the work tool's final result for the call that failed.
func (p *Pool) failLease(token string, cause error) (res work.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.leases[token]
	if l == nil {
		return work.Result{Status: work.StatusExpired, Reason: reasonExpired}
	}
	p.endLeaseLocked(l, leaseFailed)
	j := l.job
	status := audit.StatusError
	if errors.Is(cause, context.DeadlineExceeded) {
		status = audit.StatusTimeout
	}
	reason := clip(cause.Error(), 500)
	p.attemptLocked(l, status, nil, reason)
	res = work.Result{Status: work.StatusFallback, EventID: j.conv.item.Event.ID, TenantID: j.conv.item.Event.TenantID, Reason: reason}
	// Given back to the same sampler, the item would only repeat what it
	// has already done: it retries transient errors and a Retry-After it
	// can wait for itself. Its provider would see a 400 twice, a 503 six
	// times where direct mode sends three, and a request 100 ms after it
	// asked for a minute of quiet (TestLLMContract). An expired lease is
	// different: a hung request is worth another try, by anyone.
	if j.leases <= p.opts.Requeues && p.othersStandByLocked(l.session) {
		p.requeueLocked(j, l.session)
		return res
	}
	p.finishLocked(j, pipeline.Verdict{}, fmt.Errorf("sampling: sampler failed: %w", cause))
	return res
}

// requestLocked builds the next sampling request of l's conversation and
// starts its attempt span, whose context the request carries to the
// sampler.
func (p *Pool) requestLocked(l *lease) mcp.InputRequest {
	params := l.job.conv.mcpRequest(l.tools)
	p.trace.request(l, params)
	return params
}

// attemptLocked records how the request out on l ended: its audit record,
// its metric and the end of its span.
func (p *Pool) attemptLocked(l *lease, status audit.Status, r *llm.Response, reason string) {
	j := l.job
	j.attempts = append(j.attempts, attemptRecord(j.conv, l.mode, l.session, l.started, status, r, reason))
	p.opts.Metrics.attempt(l.mode, status, time.Since(l.started))
	p.trace.endAttempt(l.span, &j.attempts[len(j.attempts)-1], "")
	l.span = nil
}
