package rules

import (
	"fmt"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"
)

// Guards is the rules file's guards: section, the controls applied before
// an ambiguous event's request leaves for an LLM (package sampling enforces
// them): the result cache, rate limits and token budgets, and tenant
// policy. It lives in the rules file so that it is validated at load and
// reloaded with the rules; a reload that changes it keeps the limiters'
// state (a tenant's spend in the current window stays spent).
//
// The zero value guards nothing: no cache, no limits, every tenant allowed
// everywhere.
type Guards struct {
	// CacheTTL is, per event type, how long a sampled answer is reused for
	// an identical masked request; a type not listed is never cached.
	CacheTTL map[string]time.Duration
	// CacheEntries and CacheBytes bound the cache (defaults 10,000 and
	// 16 MiB when CacheTTL lists a type).
	CacheEntries, CacheBytes int
	// BudgetWindow is the period token budgets are counted over (default
	// 1h); spend resets when a new window starts.
	BudgetWindow time.Duration
	// GlobalTokens bounds the tokens of all tenants together per window;
	// 0 means no bound.
	GlobalTokens int64
	// Limits are tried in order; the first whose tenant and type match an
	// event applies to it. An event no entry matches is not limited.
	Limits []Limit
	// Tenants holds the policy of the tenants the file names; others get
	// the zero TenantPolicy (LLM allowed, any region).
	Tenants map[string]TenantPolicy
}

// Limit is one entry of guards.limits.
type Limit struct {
	// Tenant and Type restrict the entry to one tenant or type; empty
	// matches any.
	Tenant, Type string
	// Rate is the sampling requests per second one tenant may send, with
	// bursts of up to Burst; 0 means no limit.
	Rate  float64
	Burst int
	// UserRate and UserBurst are the same per user (the event's user_id
	// field) within the tenant; 0 means no limit.
	UserRate  float64
	UserBurst int
	// CallerRate and CallerBurst are the same per caller of the
	// synchronous channels (an HTTP token, an MCP client: pipeline.Item's
	// Caller) within the tenant; 0 means no limit. Streamed events have
	// no caller.
	CallerRate  float64
	CallerBurst int
	// Tokens bounds one tenant's tokens (input and output, as samplers
	// report them) per BudgetWindow; 0 means no bound.
	Tokens int64
	// Line is the entry's line in the file, which names it in logs.
	Line int
}

// Matches reports whether the entry applies to an event of tenant and typ.
func (l *Limit) Matches(tenant, typ string) bool {
	return (l.Tenant == "" || l.Tenant == tenant) && (l.Type == "" || l.Type == typ)
}

// TenantPolicy is one tenant's entry of guards.tenants.
type TenantPolicy struct {
	// NoLLM opts the tenant out of LLM decisions: its ambiguous events get
	// their type's fallback with reason policy, and no request is sent.
	NoLLM bool
	// Regions, when not empty, are the only sampler regions the tenant's
	// requests may be sent to (data residency). A sampler's region is bound
	// to its token, not asserted by the sampler.
	Regions []string
}

// Limit returns the first entry of Limits that matches, or nil.
func (g *Guards) Limit(tenant, typ string) *Limit {
	for i := range g.Limits {
		if g.Limits[i].Matches(tenant, typ) {
			return &g.Limits[i]
		}
	}
	return nil
}

// Tenant returns tenant's policy.
func (g *Guards) Tenant(tenant string) TenantPolicy { return g.Tenants[tenant] }

// Cache defaults and bounds.
const (
	DefaultCacheEntries = 10_000
	DefaultCacheBytes   = 16 << 20
	// DefaultBudgetWindow is guards.budget_window's default.
	DefaultBudgetWindow = time.Hour
	maxCacheTTL         = 7 * 24 * time.Hour
)

var (
	guardKeys  = []string{"cache", "budget_window", "global_tokens", "limits", "tenants"}
	cacheKeys  = []string{"ttl", "max_entries", "max_bytes"}
	limitKeys  = []string{"tenant", "type", "rate", "burst", "user_rate", "user_burst", "caller_rate", "caller_burst", "tokens"}
	tenantKeys = []string{"llm", "regions"}
)

// guards parses the top-level guards: section. It runs after the types,
// which cache.ttl and limits name.
func (p *parser) guards(s *Set, n *yaml.Node) {
	g := &s.guards
	g.BudgetWindow = DefaultBudgetWindow
	w := where{}
	p.mapping(n, w, guardKeys, func(key string, _, v *yaml.Node) {
		switch key {
		case "cache":
			p.cacheGuard(s, v)
		case "budget_window":
			if d, ok := p.duration(v, w, "guards.budget_window"); ok {
				if d < time.Second {
					p.fail(v, w, "guards.budget_window: want at least 1s, got %s", d)
				}
				g.BudgetWindow = d
			}
		case "global_tokens":
			g.GlobalTokens = int64(p.count(v, w, "guards.global_tokens"))
		case "limits":
			p.limits(s, v)
		case "tenants":
			p.tenants(g, v)
		}
	})
}

func (p *parser) cacheGuard(s *Set, n *yaml.Node) {
	g, w := &s.guards, where{}
	g.CacheEntries, g.CacheBytes = DefaultCacheEntries, DefaultCacheBytes
	p.mapping(n, w, cacheKeys, func(key string, _, v *yaml.Node) {
		switch key {
		case "ttl":
			g.CacheTTL = map[string]time.Duration{}
			p.mapping(v, w, nil, func(typ string, k, tv *yaml.Node) {
				if _, ok := s.types[typ]; !ok {
					p.fail(k, w, "guards.cache.ttl: no type %q", typ)
					return
				}
				d, ok := p.duration(tv, w, "guards.cache.ttl."+typ)
				switch {
				case !ok:
				case d <= 0 || d > maxCacheTTL:
					p.fail(tv, w, "guards.cache.ttl.%s: want more than 0 and at most %s, got %s", typ, maxCacheTTL, d)
				default:
					g.CacheTTL[typ] = d
				}
			})
		case "max_entries":
			if i := p.count(v, w, "guards.cache.max_entries"); i > 0 {
				g.CacheEntries = i
			}
		case "max_bytes":
			if i := p.count(v, w, "guards.cache.max_bytes"); i > 0 {
				g.CacheBytes = i
			}
		}
	})
}

func (p *parser) limits(s *Set, n *yaml.Node) {
	w := where{}
	if n.Kind != yaml.SequenceNode {
		p.fail(n, w, "guards.limits: want a list, got %s", describe(n))
		return
	}
	for _, e := range n.Content {
		l := Limit{Line: e.Line}
		p.mapping(e, w, limitKeys, func(key string, _, v *yaml.Node) {
			what := "guards.limits." + key
			switch key {
			case "tenant":
				l.Tenant, _ = p.str(v, w, what)
			case "type":
				if l.Type, _ = p.str(v, w, what); l.Type != "" && s.types[l.Type] == nil {
					p.fail(v, w, "%s: no type %q", what, l.Type)
				}
			case "rate", "user_rate", "caller_rate":
				x, ok := p.number(v, w, what)
				if ok && x < 0 {
					p.fail(v, w, "%s: want 0 or more, got %g", what, x)
				}
				switch key {
				case "rate":
					l.Rate = x
				case "user_rate":
					l.UserRate = x
				default:
					l.CallerRate = x
				}
			case "burst":
				l.Burst = p.count(v, w, what)
			case "user_burst":
				l.UserBurst = p.count(v, w, what)
			case "caller_burst":
				l.CallerBurst = p.count(v, w, what)
			case "tokens":
				l.Tokens = int64(p.count(v, w, what))
			}
		})
		// A rate without a burst would refuse every request.
		if l.Rate > 0 && l.Burst == 0 {
			l.Burst = max(1, int(l.Rate))
		}
		if l.UserRate > 0 && l.UserBurst == 0 {
			l.UserBurst = max(1, int(l.UserRate))
		}
		if l.CallerRate > 0 && l.CallerBurst == 0 {
			l.CallerBurst = max(1, int(l.CallerRate))
		}
		s.guards.Limits = append(s.guards.Limits, l)
	}
}

func (p *parser) tenants(g *Guards, n *yaml.Node) {
	g.Tenants = map[string]TenantPolicy{}
	p.mapping(n, where{}, nil, func(tenant string, _, v *yaml.Node) {
		var tp TenantPolicy
		w := where{}
		p.mapping(v, w, tenantKeys, func(key string, _, kv *yaml.Node) {
			switch key {
			case "llm":
				var on bool
				if kv.Kind != yaml.ScalarNode || kv.ShortTag() != "!!bool" || kv.Decode(&on) != nil {
					p.fail(kv, w, "guards.tenants.%s.llm: want true or false, got %s", tenant, describe(kv))
				}
				tp.NoLLM = !on
			case "regions":
				regions, ok := p.strs(kv, w, "guards.tenants."+tenant+".regions")
				if ok && (len(regions) == 0 || slices.Contains(regions, "")) {
					p.fail(kv, w, "guards.tenants.%s.regions: want at least one non-empty region", tenant)
				}
				tp.Regions = regions
			}
		})
		g.Tenants[tenant] = tp
	})
}

func (p *parser) duration(n *yaml.Node, w where, what string) (time.Duration, bool) {
	d, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" || err != nil {
		p.fail(n, w, "%s: want a duration such as 10m or 1h, got %s", what, describe(n))
		return 0, false
	}
	return d, true
}

// count parses a non-negative integer.
func (p *parser) count(n *yaml.Node, w where, what string) int {
	i, ok := p.integer(n, w, what)
	if ok && i < 0 {
		p.fail(n, w, "%s: want 0 or more, got %d", what, i)
		return 0
	}
	return i
}

// Guards returns the file's guards: section (the zero Guards when it has
// none). It is shared: treat it as read-only.
func (s *Set) Guards() *Guards { return &s.guards }

// Guards returns the guards of the rules file the type was loaded from.
func (t *Type) Guards() *Guards {
	if t.set == nil {
		return &Guards{}
	}
	return &t.set.guards
}

// Version is the version of the rules file the type was loaded from (see
// Set.Version): what a result cache keys on, so that a policy change
// invalidates what was cached under the old one.
func (t *Type) Version() string {
	if t.set == nil {
		return ""
	}
	return t.set.Version()
}

// describeGuards summarises the guards for a reload's log line.
func (g *Guards) String() string {
	return fmt.Sprintf("cache types %d, limits %d, tenants %d", len(g.CacheTTL), len(g.Limits), len(g.Tenants))
}
