package sampling_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
	"github.com/triage-dev/triage/sampling"
)

func guardedType(t testing.TB) *rules.Type {
	t.Helper()
	set, err := rules.Load("testdata/guards.yaml")
	return paymentIn(t, set, err)
}

// payment is an ambiguous payment of tenant; two payments with the same
// amount, country and note render the same masked request.
func payment(typ *rules.Type, tenant, id string, amount int, user string) pipeline.Item {
	fields := map[string]any{"event_id": id, "type": "payment", "tenant_id": tenant, "occurred_at": "2026-12-01T10:00:00Z",
		"account_id": "acct-" + id, "amount": float64(amount), "country": "NG", "note": "see alice@example.com"}
	if user != "" {
		fields["user_id"] = user
	}
	return pipeline.Item{
		Event: pipeline.Event{ID: id, Type: "payment", TenantID: tenant, Key: "acct-" + id, Fields: fields},
		Type:  typ,
		Rule:  rules.Result{Type: "payment", RuleID: "default", Action: rules.ActionSample},
	}
}

// clock is a test clock the guard reads.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// guarded is a Guard in front of a pool that one in-memory sampler pulls
// from; the sampler counts the requests it answers.
func guarded(t *testing.T, answer answerFunc) (*sampling.Guard, *client, *clock) {
	t.Helper()
	pool := sampling.NewPool(sampling.Options{QueueWait: 2 * time.Second, Logger: testLogger()})
	t.Cleanup(func() { _ = pool.Close() })
	c := connectMemory(t, pool, "2025-11-25", answer)
	ctx, cancel := context.WithCancel(context.Background())
	wg := c.pull(ctx, t, 4)
	t.Cleanup(func() { cancel(); wg.Wait() })
	clk := &clock{now: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	return sampling.NewGuard(pool, sampling.GuardOptions{Logger: testLogger(), Now: clk.Now}), c, clk
}

func (c *client) requests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

func decide(t *testing.T, d pipeline.Decider, it pipeline.Item) (pipeline.Verdict, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	return d.Decide(ctx, it)
}

func TestCacheHitCostsNoRequest(t *testing.T) {
	typ := guardedType(t)
	g, c, _ := guarded(t, outcomeAnswer("block"))
	first, err := decide(t, g, payment(typ, "t", "ev-1", 900, ""))
	if err != nil || first.Path != pipeline.PathSampled || first.CacheKey == "" {
		t.Fatalf("first: %+v, %v; want sampled with a cache key", first, err)
	}
	again, err := decide(t, g, payment(typ, "t", "ev-2", 900, ""))
	if err != nil {
		t.Fatal(err)
	}
	want := audit.ID("t", "ev-1", audit.KindDecision, 0)
	if again.Path != pipeline.PathCache || again.Outcome != "block" || again.CacheKey != first.CacheKey || again.SourceAuditID != want || len(again.Attempts) != 0 {
		t.Errorf("second: %+v; want path cache, outcome block, key %s, source %s, no attempts", again, first.CacheKey, want)
	}
	if n := c.requests(); n != 1 {
		t.Errorf("the sampler answered %d requests, want 1", n)
	}
	if first.Tier != "standard" || again.Tier != "standard" || len(first.Attempts) != 1 || first.Attempts[0].Tier != "standard" {
		t.Errorf("tiers: first %q (attempt %+v), again %q; want standard", first.Tier, first.Attempts, again.Tier)
	}
	big, err := decide(t, g, payment(typ, "t", "ev-big", 5000, ""))
	if err != nil || big.Tier != "big" {
		t.Errorf("a big payment: %+v, %v; want tier big", big, err)
	}
	c.mu.Lock()
	if p := c.seen[len(c.seen)-1]; p.ModelPreferences == nil || p.ModelPreferences.Hints[0].Name != "claude-opus" {
		t.Errorf("the big payment's request asked for %+v, want the big tier's claude-opus", p.ModelPreferences)
	}
	c.mu.Unlock()
	// Another tenant's identical request is its own: answers are never
	// shared across tenants.
	other, err := decide(t, g, payment(typ, "t2", "ev-1", 900, ""))
	if err != nil || other.Path != pipeline.PathSampled {
		t.Errorf("other tenant: %+v, %v; want sampled", other, err)
	}
	// A different amount is a different request.
	if v, err := decide(t, g, payment(typ, "t", "ev-3", 901, "")); err != nil || v.Path != pipeline.PathSampled {
		t.Errorf("different request: %+v, %v; want sampled", v, err)
	}
	if n := c.requests(); n != 4 {
		t.Errorf("the sampler answered %d requests, want 4", n)
	}
}

func TestConcurrentIdenticalMissesCostOneRequest(t *testing.T) {
	typ := guardedType(t)
	release := make(chan struct{})
	var asked atomic.Int32
	slow := func(ctx context.Context, p *mcp.CreateMessageParams) (*mcp.CreateMessageResult, error) {
		asked.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return outcomeAnswer("review")(ctx, p)
	}
	g, c, _ := guarded(t, slow)
	const n = 5
	vs := make([]pipeline.Verdict, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { vs[i], errs[i] = decide(t, g, payment(typ, "t", fmt.Sprint("ev-", i), 700, "")) })
	}
	// Every Decide has reached the guard when the one request is held.
	deadline := time.Now().Add(waitTimeout)
	for asked.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	sampled, shared := 0, 0
	for i := range n {
		switch {
		case errs[i] != nil:
			t.Errorf("item %d: %v", i, errs[i])
		case vs[i].Path == pipeline.PathSampled:
			sampled++
		case vs[i].Path == pipeline.PathCache && vs[i].SourceAuditID != "" && vs[i].Outcome == "review":
			shared++
		default:
			t.Errorf("item %d: %+v", i, vs[i])
		}
	}
	if sampled != 1 || shared != n-1 {
		t.Errorf("%d sampled and %d shared, want 1 and %d", sampled, shared, n-1)
	}
	if r := c.requests(); r != 1 {
		t.Errorf("the sampler answered %d requests, want 1", r)
	}
}

func TestRateLimitIsPerTenant(t *testing.T) {
	typ := guardedType(t)
	g, c, clk := guarded(t, outcomeAnswer("allow"))
	count := func(tenant string, from int) (sampled, limited int) {
		for i := range 5 {
			v, err := decide(t, g, payment(typ, tenant, fmt.Sprint(tenant, i), from+i, ""))
			switch {
			case errors.Is(err, sampling.ErrRateLimited) && pipeline.FallbackReason(err) == "rate_limited":
				limited++
			case err == nil && v.Path == pipeline.PathSampled:
				sampled++
			default:
				t.Errorf("%s %d: %+v, %v", tenant, i, v, err)
			}
		}
		return sampled, limited
	}
	if s, l := count("noisy", 100); s != 2 || l != 3 {
		t.Errorf("noisy: %d sampled, %d limited; want its burst of 2 sampled and 3 limited", s, l)
	}
	if s, l := count("quiet", 200); s != 5 || l != 0 {
		t.Errorf("quiet: %d sampled, %d limited; want all 5 sampled", s, l)
	}
	if n := c.requests(); n != 7 {
		t.Errorf("the sampler answered %d requests, want 7", n)
	}
	clk.add(time.Second) // one more token for noisy
	if s, l := count("noisy", 300); s != 1 || l != 4 {
		t.Errorf("noisy a second later: %d sampled, %d limited; want 1 and 4", s, l)
	}
}

func TestUserRateLimit(t *testing.T) {
	typ := guardedType(t)
	g, _, _ := guarded(t, outcomeAnswer("allow"))
	if _, err := decide(t, g, payment(typ, "users", "a1", 1, "alice")); err != nil {
		t.Fatal(err)
	}
	if _, err := decide(t, g, payment(typ, "users", "a2", 2, "alice")); !errors.Is(err, sampling.ErrRateLimited) {
		t.Errorf("alice's second request: %v, want rate limited", err)
	}
	if _, err := decide(t, g, payment(typ, "users", "b1", 3, "bob")); err != nil {
		t.Errorf("bob's first request: %v", err)
	}
}

// TestCallerRateLimit: a caller of the synchronous channels has a bucket
// of its own; streamed events have no caller and no such bucket.
func TestCallerRateLimit(t *testing.T) {
	typ := guardedType(t)
	g, _, _ := guarded(t, outcomeAnswer("allow"))
	from := func(caller, id string, amount int) pipeline.Item {
		it := payment(typ, "callers", id, amount, "")
		it.Caller = caller
		return it
	}
	if _, err := decide(t, g, from("checkout", "c1", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := decide(t, g, from("checkout", "c2", 2)); !errors.Is(err, sampling.ErrRateLimited) {
		t.Errorf("checkout's second request: %v, want rate limited", err)
	}
	if _, err := decide(t, g, from("agent", "c3", 3)); err != nil {
		t.Errorf("agent's first request: %v", err)
	}
	for i := range 3 {
		if _, err := decide(t, g, from("", fmt.Sprint("s", i), 10+i)); err != nil {
			t.Errorf("streamed event %d: %v, want no caller limit", i, err)
		}
	}
}

func TestBudgetRunsOutAndResetsWithTheWindow(t *testing.T) {
	typ := guardedType(t)
	g, _, clk := guarded(t, outcomeAnswer("allow")) // 12 + 7 tokens an answer
	results := func(from int) []string {
		var out []string
		for i := range 4 {
			_, err := decide(t, g, payment(typ, "thrifty", fmt.Sprint("ev-", from+i), from+i, ""))
			if err != nil {
				out = append(out, pipeline.FallbackReason(err))
			} else {
				out = append(out, "ok")
			}
		}
		return out
	}
	// 19, 38: under 40; the third is allowed at 38 and brings it to 57.
	if got, want := fmt.Sprint(results(0)), "[ok ok ok budget_exceeded]"; got != want {
		t.Errorf("first window: %s, want %s", got, want)
	}
	clk.add(30 * time.Minute)
	if got, want := fmt.Sprint(results(10)), "[budget_exceeded budget_exceeded budget_exceeded budget_exceeded]"; got != want {
		t.Errorf("same window: %s, want %s", got, want)
	}
	clk.add(31 * time.Minute) // 11:01: a new hour
	if got, want := fmt.Sprint(results(20)), "[ok ok ok budget_exceeded]"; got != want {
		t.Errorf("next window: %s, want %s", got, want)
	}
}

func TestUnreportedTokensAreEstimated(t *testing.T) {
	typ := guardedType(t)
	noUsage := func(context.Context, *mcp.CreateMessageParams) (*mcp.CreateMessageResult, error) {
		return &mcp.CreateMessageResult{Role: "assistant", Model: "quiet-model",
			Content: &mcp.TextContent{Text: `{"outcome":"allow","reason":"fine","score":0.9}`}}, nil
	}
	g, _, _ := guarded(t, noUsage)
	v, err := decide(t, g, payment(typ, "t", "ev-1", 5, ""))
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Attempts) != 1 {
		t.Fatalf("%d attempts", len(v.Attempts))
	}
	a := v.Attempts[0]
	if !a.TokensEstimated || a.InputTokens <= 0 || a.OutputTokens <= 0 {
		t.Errorf("attempt: estimated %v, tokens %d in %d out; want estimated counts", a.TokensEstimated, a.InputTokens, a.OutputTokens)
	}
}

func TestOptedOutTenantIsNeverSampled(t *testing.T) {
	typ := guardedType(t)
	g, c, _ := guarded(t, outcomeAnswer("allow"))
	for i := range 3 {
		_, err := decide(t, g, payment(typ, "private", fmt.Sprint("p", i), i, ""))
		if !errors.Is(err, sampling.ErrPolicy) || pipeline.FallbackReason(err) != "policy" {
			t.Errorf("private %d: %v, want the policy fallback", i, err)
		}
	}
	if n := c.requests(); n != 0 {
		t.Errorf("the sampler answered %d requests of an opted-out tenant", n)
	}
}

// TestRegionRestrictedWorkStaysInRegion: two samplers over HTTP, one with
// a token of region eu and one of us; eu-bank's work only ever reaches the
// eu sampler, other tenants' work reaches both, and with no eu sampler
// eu-bank's work falls back with no_sampler.
func TestRegionRestrictedWorkStaysInRegion(t *testing.T) {
	typ := guardedType(t)
	pool := sampling.NewPool(sampling.Options{QueueWait: 3 * time.Second, PushGrace: 100 * time.Millisecond, Logger: testLogger()})
	t.Cleanup(func() { _ = pool.Close() })
	srv := httptest.NewServer(pool.HandlerTokens([]sampling.Token{{Secret: "eu-secret", Region: "eu"}, {Secret: "us-secret", Region: "us"}}))
	t.Cleanup(srv.Close)
	connect := func(token, version string) *client {
		return connectURL(t, srv.URL, token, version, outcomeAnswer("allow"))
	}
	// The us sampler pulls on 2026-07-28; the eu one is a legacy host the
	// pool pushes to: the region reaches both paths.
	us := connect("us-secret", "2026-07-28")
	ctx, cancel := context.WithCancel(context.Background())
	wg := us.pull(ctx, t, 4)
	defer func() { cancel(); wg.Wait() }()
	g := sampling.NewGuard(pool, sampling.GuardOptions{Logger: testLogger()})

	// No eu sampler yet: eu-bank's item waits out the queue, unserved.
	if _, err := decide(t, g, payment(typ, "eu-bank", "e0", 1, "")); pipeline.FallbackReason(err) != pipeline.FallbackNoSampler {
		t.Errorf("eu-bank without an eu sampler: %v, want no_sampler", err)
	}
	if n := us.requests(); n != 0 {
		t.Fatalf("the us sampler was sent %d requests of eu-bank", n)
	}

	eu := connect("eu-secret", "2025-11-25")
	var vs sync.WaitGroup
	for i := range 6 {
		vs.Go(func() {
			tenant := "eu-bank"
			if i%2 == 1 {
				tenant = "anyone"
			}
			if _, err := decide(t, g, payment(typ, tenant, fmt.Sprint("r", i), 10+i, "")); err != nil {
				t.Errorf("%s r%d: %v", tenant, i, err)
			}
		})
	}
	vs.Wait()
	for _, c := range []*client{us, eu} {
		c.mu.Lock()
		for _, p := range c.seen {
			md, _ := p.Metadata.(map[string]any)
			if c == us && md["tenant_id"] == "eu-bank" {
				t.Errorf("the us sampler got eu-bank's event %v", md["event_id"])
			}
		}
		c.mu.Unlock()
	}
	if eu.requests() < 3 {
		t.Errorf("the eu sampler answered %d requests, want at least eu-bank's 3", eu.requests())
	}
}

// TestGuardsReload: a reload that changes the limits applies to the next
// request, and spend in the current window stays spent.
func TestGuardsReload(t *testing.T) {
	load := func(tokens int) *rules.Type {
		data, err := os.ReadFile("testdata/guards.yaml")
		if err != nil {
			t.Fatal(err)
		}
		src := strings.Replace(string(data), "{tenant: thrifty, tokens: 40}", fmt.Sprintf("{tenant: thrifty, tokens: %d}", tokens), 1)
		set, err := rules.Parse("guards.yaml", []byte(src))
		return paymentIn(t, set, err)
	}
	g, _, _ := guarded(t, outcomeAnswer("allow")) // 19 tokens an answer
	small, big := load(15), load(60)
	if _, err := decide(t, g, payment(small, "thrifty", "a", 1, "")); err != nil {
		t.Fatal(err)
	}
	if _, err := decide(t, g, payment(small, "thrifty", "b", 2, "")); !errors.Is(err, sampling.ErrBudgetExceeded) {
		t.Fatalf("over 15 tokens: %v, want budget exceeded", err)
	}
	// Reloaded with 60: the 19 spent count, so three more start below it
	// (at 19, 38 and 57) and the next does not (76).
	for i, want := range []error{nil, nil, nil, sampling.ErrBudgetExceeded} {
		if _, err := decide(t, g, payment(big, "thrifty", fmt.Sprint("c", i), 10+i, "")); !errors.Is(err, want) {
			t.Errorf("after the reload, request %d: %v, want %v", i, err, want)
		}
	}
}
