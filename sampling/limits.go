package sampling

import (
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/triage-dev/triage/rules"
)

// limiters enforces guards.limits: a token bucket per tenant and per user
// on sampling requests, and token budgets per tenant and for everyone per
// window. Buckets are keyed by the limit entry's line as well, so that a
// tenant whose document and transaction limits differ has two; a reload
// that changes an entry's rate adjusts its buckets in place, so a reload
// never refills them, and spend in the current window stays spent.
type limiters struct {
	mu      sync.Mutex
	buckets map[bucketKey]*rate.Limiter
	// The budget window: spend counts from start until start+window.
	start  time.Time
	spent  map[string]int64 // by tenant
	global int64
	now    func() time.Time
}

type bucketKey struct {
	line                 int
	tenant, user, caller string
}

func newLimiters(now func() time.Time) *limiters {
	return &limiters{buckets: map[bucketKey]*rate.Limiter{}, spent: map[string]int64{}, now: now}
}

// maxBuckets bounds the buckets kept: past it, full buckets (those that
// have not been drawn from lately) are dropped, as a fresh one is full too.
const maxBuckets = 100_000

// allow takes one request from the tenant's, the user's and the caller's
// buckets, and checks the budgets. It returns the fallback reason when a
// limit refuses the request, or "".
func (l *limiters) allow(g *rules.Guards, lim *rules.Limit, tenant, user, caller string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.rollLocked(g, now)
	if lim != nil {
		if lim.Tokens > 0 && l.spent[tenant] >= lim.Tokens {
			return FallbackBudgetExceeded
		}
	}
	if g.GlobalTokens > 0 && l.global >= g.GlobalTokens {
		return FallbackBudgetExceeded
	}
	if lim == nil {
		return ""
	}
	var tb, ub, cb *rate.Limiter
	if lim.Rate > 0 {
		tb = l.bucketLocked(bucketKey{line: lim.Line, tenant: tenant}, lim.Rate, lim.Burst, now)
	}
	if lim.UserRate > 0 && user != "" {
		ub = l.bucketLocked(bucketKey{line: lim.Line, tenant: tenant, user: user}, lim.UserRate, lim.UserBurst, now)
	}
	if lim.CallerRate > 0 && caller != "" {
		cb = l.bucketLocked(bucketKey{line: lim.Line, tenant: tenant, caller: caller}, lim.CallerRate, lim.CallerBurst, now)
	}
	// Reserve from all or none: a user refused must not drain the
	// tenant's bucket, nor the other way round.
	for _, b := range []*rate.Limiter{tb, ub, cb} {
		if b != nil && b.TokensAt(now) < 1 {
			return FallbackRateLimited
		}
	}
	for _, b := range []*rate.Limiter{tb, ub, cb} {
		if b != nil {
			b.AllowN(now, 1)
		}
	}
	return ""
}

func (l *limiters) bucketLocked(k bucketKey, r float64, burst int, now time.Time) *rate.Limiter {
	b := l.buckets[k]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.sweepLocked(now)
		}
		b = rate.NewLimiter(rate.Limit(r), burst)
		l.buckets[k] = b
		return b
	}
	if b.Limit() != rate.Limit(r) {
		b.SetLimitAt(now, rate.Limit(r))
	}
	if b.Burst() != burst {
		b.SetBurstAt(now, burst)
	}
	return b
}

// sweepLocked drops the buckets that have refilled.
func (l *limiters) sweepLocked(now time.Time) {
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(b.Burst()) {
			delete(l.buckets, k)
		}
	}
}

// charge adds tokens to the tenant's and the global spend of the current
// window.
func (l *limiters) charge(g *rules.Guards, tenant string, tokens int64) {
	if tokens <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rollLocked(g, l.now())
	l.spent[tenant] += tokens
	l.global += tokens
}

// rollLocked starts a new window when the current one is over. Windows
// are aligned to the window's length (hourly windows start on the hour),
// so that every member of the group counts the same window.
func (l *limiters) rollLocked(g *rules.Guards, now time.Time) {
	w := g.BudgetWindow
	if w <= 0 {
		w = rules.DefaultBudgetWindow
	}
	start := now.Truncate(w)
	if start.Equal(l.start) {
		return
	}
	l.start = start
	clear(l.spent)
	l.global = 0
}

// usage reports a tenant's and the global spend in the current window.
func (l *limiters) usage(tenant string) (tenantTokens, global int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.spent[tenant], l.global
}
