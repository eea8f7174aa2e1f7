package rules

import (
	"strings"
	"testing"
	"time"
)

const guardsBase = `types:
  t:
    key: k
    fields: {k: {type: string, required: true}}
    outcomes: [a, b]
    fallback: b
    default: a
`

func TestParseGuards(t *testing.T) {
	s := mustParse(t, "g.yaml", []byte(guardsBase+`guards:
  cache: {ttl: {t: 10m}, max_entries: 5}
  budget_window: 30m
  global_tokens: 1000
  limits:
    - {tenant: x, type: t, rate: 2.5}
    - {user_rate: 1, tokens: 50}
  tenants:
    off: {llm: false}
    eu: {regions: [eu, eu2]}
`))
	g := s.Guards()
	if g.CacheTTL["t"] != 10*time.Minute || g.CacheEntries != 5 || g.CacheBytes != DefaultCacheBytes {
		t.Errorf("cache: %v %d %d", g.CacheTTL, g.CacheEntries, g.CacheBytes)
	}
	if g.BudgetWindow != 30*time.Minute || g.GlobalTokens != 1000 {
		t.Errorf("budget: %s %d", g.BudgetWindow, g.GlobalTokens)
	}
	if l := g.Limit("x", "t"); l == nil || l.Rate != 2.5 || l.Burst != 2 || l.Line != 13 {
		t.Errorf("x's limit: %+v; want rate 2.5, a burst of 2 by default, line 13", l)
	}
	if l := g.Limit("y", "t"); l == nil || l.UserRate != 1 || l.UserBurst != 1 || l.Tokens != 50 {
		t.Errorf("y's limit: %+v", l)
	}
	if !g.Tenant("off").NoLLM || g.Tenant("eu").NoLLM || strings.Join(g.Tenant("eu").Regions, ",") != "eu,eu2" || g.Tenant("other").NoLLM {
		t.Errorf("tenants: %+v", g.Tenants)
	}
	typ, _ := s.Type("t")
	if typ.Guards() != g || typ.Version() != s.Version() {
		t.Error("the type does not reach its file's guards and version")
	}
	// A file without guards guards nothing.
	none := mustParse(t, "n.yaml", []byte(guardsBase))
	if g := none.Guards(); len(g.CacheTTL) != 0 || g.Limit("x", "t") != nil || g.Tenant("x").NoLLM {
		t.Errorf("no guards: %+v", g)
	}
}

func TestParseGuardsErrors(t *testing.T) {
	tests := []struct{ guards, want string }{
		{"  cache: {ttl: {nope: 1m}}", `g.yaml:9: guards.cache.ttl: no type "nope"`},
		{"  cache: {ttl: {t: 0s}}", "guards.cache.ttl.t: want more than 0"},
		{"  cache: {ttl: {t: 5}}", "guards.cache.ttl.t: want a duration"},
		{"  limits: [{rate: -1}]", "guards.limits.rate: want 0 or more"},
		{"  limits: [{type: nope}]", `guards.limits.type: no type "nope"`},
		{"  limits: [{color: red}]", `unknown key "color"`},
		{"  limits: {rate: 1}", "guards.limits: want a list"},
		{"  tenants: {x: {llm: maybe}}", "guards.tenants.x.llm: want true or false"},
		{"  tenants: {x: {regions: []}}", "guards.tenants.x.regions: want at least one"},
		{"  budget_window: 10ms", "guards.budget_window: want at least 1s"},
		{"  global_tokens: -5", "guards.global_tokens: want 0 or more"},
		{"  shiny: true", `unknown key "shiny"`},
	}
	for _, tt := range tests {
		_, err := Parse("g.yaml", []byte(guardsBase+"guards:\n"+tt.guards+"\n"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.guards, err, tt.want)
		}
	}
}
