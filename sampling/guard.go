package sampling

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
)

// Fallback reasons of the guards, beside pipeline's.
const (
	// FallbackPolicy: the tenant opted out of LLM decisions.
	FallbackPolicy = pipeline.FallbackPolicy
	// FallbackRateLimited: the tenant or the user is over its request rate.
	FallbackRateLimited = string(audit.StatusRateLimited)
	// FallbackBudgetExceeded: the tenant's or the global token budget of
	// the window is spent.
	FallbackBudgetExceeded = string(audit.StatusBudgetExceeded)
)

// Guard errors name their fallback reason (pipeline.FallbackReason).
var (
	// ErrPolicy means the tenant opted out of LLM decisions.
	ErrPolicy = &Error{reason: FallbackPolicy, msg: "sampling: the tenant does not allow LLM decisions"}
	// ErrRateLimited means a tenant or user rate limit refused the request.
	ErrRateLimited = &Error{reason: FallbackRateLimited, msg: "sampling: over the rate limit"}
	// ErrBudgetExceeded means a token budget of the window is spent.
	ErrBudgetExceeded = &Error{reason: FallbackBudgetExceeded, msg: "sampling: token budget exceeded"}
)

// GuardOptions configure a Guard.
type GuardOptions struct {
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics, when not nil, receives the guards' Prometheus metrics (the
	// sampling stage's, which the pool or Direct behind may share).
	Metrics *Metrics
	// Now is the clock; nil means time.Now. Tests move it.
	Now func() time.Time
}

// Guard is the pipeline's Decider in front of another one (the MCP pool
// or Direct): it applies the rules file's guards (rules.Guards) before any
// request leaves, in this order:
//
//  1. tenant policy: a tenant that opted out gets the fallback, reason
//     policy (audit status denied); no request is built;
//  2. the result cache: an identical masked request of the same tenant,
//     type, rule, tier and rules version answered within the type's TTL
//     (without reading an account's history, which the request does not
//     show and which moves on)
//     decides at once, with path cache, audited with the cache key and
//     the audit_id of the decision that paid for the answer; identical
//     requests in flight wait for the first (singleflight) and share its
//     answer the same way;
//  3. rate limits per tenant and user, then token budgets per tenant and
//     for everyone, per window: over a limit, the fallback with reason
//     rate_limited or budget_exceeded;
//  4. the inner Decider; the tokens its attempts used are charged to the
//     budgets, estimated from the text's length (and the attempt's audit
//     record says so) when the sampler reported none.
//
// Region restrictions (residency) are the pool's to enforce, since only it
// knows which sampler takes an item; Direct checks its own region.
//
// The cache and the limits are this process's: the members of a consumer
// group do not share them, so a group of N members may spend up to N
// budgets, and each member caches what it sampled.
type Guard struct {
	inner   pipeline.Decider
	opts    GuardOptions
	limits  *limiters
	flights singleflight.Group

	cacheMu sync.Mutex
	cache   *resultCache
	cacheOf *rules.Guards // the guards the cache was sized for
}

// NewGuard returns a Guard in front of inner.
func NewGuard(inner pipeline.Decider, opts GuardOptions) *Guard {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Guard{inner: inner, opts: opts, limits: newLimiters(opts.Now)}
}

// flight is what a singleflight leader hands its followers.
type flight struct {
	v   pipeline.Verdict
	src string // the leader's decision audit_id
}

// Decide implements pipeline.Decider.
func (g *Guard) Decide(ctx context.Context, it pipeline.Item) (pipeline.Verdict, error) {
	gs := it.Type.Guards()
	if gs.Tenant(it.Event.TenantID).NoLLM {
		g.opts.Metrics.refused(FallbackPolicy)
		return pipeline.Verdict{Tier: it.Type.TierOf(it.Event.Fields)}, ErrPolicy
	}
	ttl, cacheable := gs.CacheTTL[it.Type.Name]
	if !cacheable {
		return g.sample(ctx, it, gs, nil)
	}
	pr, err := promptOf(it)
	if err != nil {
		return pipeline.Verdict{}, err
	}
	key := cacheKey(it, pr)
	cache := g.cacheFor(gs)
	if c, ok := cache.get(key, g.opts.Now()); ok {
		g.opts.Metrics.cacheResult("hit")
		return cachedVerdict(c, key), nil
	}
	self := audit.ID(it.Event.TenantID, it.Event.ID, audit.KindDecision, 0)
	var leader bool
	res, err, _ := g.flights.Do(key, func() (any, error) {
		leader = true
		// A leader that finished just before this call began has stored
		// its answer: take it rather than ask again.
		if c, ok := cache.get(key, g.opts.Now()); ok {
			return flight{v: cachedVerdict(c, key), src: c.source}, nil
		}
		v, err := g.sample(ctx, it, gs, &pr)
		if err != nil {
			return flight{v: v}, err
		}
		v.CacheKey = key
		// An answer that read an account's history rests on more than the
		// request, and the history moves on: it is not reused. The
		// document's own metadata is part of what the request stands for.
		if !slices.ContainsFunc(v.Attempts, func(a audit.Record) bool {
			return a.Kind == audit.KindToolCall && a.Tool == rules.ToolTransactionHistory
		}) {
			cache.add(key, cached{outcome: v.Outcome, reason: v.Reason, model: v.Model, tier: v.Tier, score: v.Score,
				source: self, expires: g.opts.Now().Add(ttl)})
		}
		return flight{v: v, src: self}, nil
	})
	f, _ := res.(flight)
	if leader {
		if f.v.Path == pipeline.PathCache {
			g.opts.Metrics.cacheResult("hit")
		} else {
			g.opts.Metrics.cacheResult("miss")
		}
		return f.v, err
	}
	// A follower: the leader's request answered for it too.
	g.opts.Metrics.cacheResult("shared")
	if err != nil {
		return pipeline.Verdict{Tier: f.v.Tier}, err
	}
	return pipeline.Verdict{Outcome: f.v.Outcome, Reason: f.v.Reason, Model: f.v.Model, Tier: f.v.Tier, Score: f.v.Score,
		Path: pipeline.PathCache, CacheKey: key, SourceAuditID: f.src, Shared: true}, nil
}

func cachedVerdict(c cached, key string) pipeline.Verdict {
	return pipeline.Verdict{Outcome: c.outcome, Reason: c.reason, Model: c.model, Tier: c.tier, Score: c.score,
		Path: pipeline.PathCache, CacheKey: key, SourceAuditID: c.source}
}

// sample applies the limits, asks the inner decider and charges what it
// spent. pr is the rendered request when the caller has it; otherwise it
// is rendered here, after the limits, and handed on in the item, so that
// the inner decider does not render it again and the estimate of
// unreported tokens has it.
func (g *Guard) sample(ctx context.Context, it pipeline.Item, gs *rules.Guards, pr *rules.Prompt) (pipeline.Verdict, error) {
	user, _ := it.Event.Fields["user_id"].(string)
	lim := gs.Limit(it.Event.TenantID, it.Type.Name)
	switch g.limits.allow(gs, lim, it.Event.TenantID, user, it.Caller) {
	case FallbackRateLimited:
		g.opts.Metrics.refused(FallbackRateLimited)
		return pipeline.Verdict{Tier: it.Type.TierOf(it.Event.Fields)}, ErrRateLimited
	case FallbackBudgetExceeded:
		g.opts.Metrics.refused(FallbackBudgetExceeded)
		return pipeline.Verdict{Tier: it.Type.TierOf(it.Event.Fields)}, ErrBudgetExceeded
	}
	if pr == nil {
		// A request that does not render is the inner decider's to
		// report, with its own checks first (direct mode's region).
		if p, err := it.Type.Prompt(it.Event.Fields, it.Rule.RuleID); err == nil {
			pr = &p
		}
	}
	it.Prompt = pr
	v, err := g.inner.Decide(ctx, it)
	var spent int64
	for i := range v.Attempts {
		a := &v.Attempts[i]
		if a.Kind != audit.KindSampling || a.ResponseSummary == "" && a.InputTokens == 0 && a.OutputTokens == 0 {
			continue // no answer came back: nothing the guard can count
		}
		if a.InputTokens == 0 && a.OutputTokens == 0 {
			a.InputTokens, a.OutputTokens = estimateTokens(pr, a)
			a.TokensEstimated = true
		}
		spent += a.InputTokens + a.OutputTokens
		g.opts.Metrics.tokens(it.Event.TenantID, a.ModelAnswered, v.Tier, a.InputTokens+a.OutputTokens)
	}
	g.limits.charge(gs, it.Event.TenantID, spent)
	if g.opts.Metrics != nil {
		t, all := g.limits.usage(it.Event.TenantID)
		g.opts.Metrics.budget(gs, lim, it.Event.TenantID, t, all)
	}
	return v, err
}

// estimateTokens approximates an attempt's tokens at four characters a
// token, as the offline scorer does: the request's system prompt and user
// message in, the response out.
func estimateTokens(pr *rules.Prompt, a *audit.Record) (in, out int64) {
	chars := len(a.RequestSummary)
	if pr != nil {
		chars = len(pr.System) + len(pr.User)
	}
	return int64(chars+3) / 4, int64(len(a.ResponseSummary)+3) / 4
}

// cacheFor returns the cache, made anew when a reload changed its bounds.
func (g *Guard) cacheFor(gs *rules.Guards) *resultCache {
	g.cacheMu.Lock()
	defer g.cacheMu.Unlock()
	if g.cache != nil && g.cacheOf != nil && g.cacheOf.CacheEntries == gs.CacheEntries && g.cacheOf.CacheBytes == gs.CacheBytes {
		return g.cache
	}
	var longest time.Duration
	for _, d := range gs.CacheTTL {
		longest = max(longest, d)
	}
	// Entries keyed under the old rules version can never hit again; a
	// new cache drops them at once instead of waiting for the LRU.
	g.cache = newResultCache(gs.CacheEntries, gs.CacheBytes, longest)
	g.cacheOf = gs
	return g.cache
}

func (m *Metrics) cacheResult(r string) {
	if m != nil {
		m.cache.WithLabelValues(r).Inc()
	}
}

func (m *Metrics) refused(reason string) {
	if m != nil {
		m.refusal.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) tokens(tenant, model, tier string, n int64) {
	if m != nil && n > 0 {
		m.spent.WithLabelValues(tenant, model, tier).Add(float64(n))
	}
}

func (m *Metrics) budget(gs *rules.Guards, lim *rules.Limit, tenantID string, tenant, global int64) {
	if gs.GlobalTokens > 0 {
		m.used.WithLabelValues("global", "").Set(float64(global) / float64(gs.GlobalTokens))
	}
	if lim != nil && lim.Tokens > 0 {
		m.used.WithLabelValues("tenant", tenantID).Set(float64(tenant) / float64(lim.Tokens))
	}
}
