package status

import (
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/sampling"
)

// clock is a settable clock for the aggregator.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_700_000_000, 0)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func decision(path, typ string, lat time.Duration) pipeline.Result {
	return pipeline.Result{
		Decision: &pipeline.Decision{EventID: "e", Type: typ, TenantID: "t1", Path: path, Outcome: "allow"},
		Latency:  lat,
	}
}

// sampled is an LLM-stage decision with a sampling attempt, a tool call
// and its decision record.
func sampled(n int, lat time.Duration) pipeline.Result {
	r := decision(pipeline.PathSampled, "transaction", lat)
	r.Decision.EventID = fmt.Sprintf("e%d", n)
	r.Decision.Model, r.Decision.Tier = "offline-scorer", "high"
	r.Trail = []*audit.Record{
		{Kind: audit.KindSampling, TenantID: "t1", ModelAnswered: "offline-scorer", Tier: "high", Status: audit.StatusInvalidAnswer,
			RequestSummary: fmt.Sprintf("prompt %d", n), ResponseSummary: "not json", InputTokens: 10, OutputTokens: 2},
		{Kind: audit.KindToolCall, Tool: "transaction_history", Status: audit.StatusOK},
		{Kind: audit.KindSampling, TenantID: "t1", ModelAnswered: "offline-scorer", Tier: "high", Status: audit.StatusOK,
			RequestSummary: "[tool result]", ResponseSummary: fmt.Sprintf("answer %d", n), InputTokens: 100, OutputTokens: 20, TokensEstimated: true},
		{Kind: audit.KindDecision, AuditID: fmt.Sprintf("audit-%d", n)},
	}
	return r
}

func near(got, want float64) bool { return math.Abs(got-want) <= 1e-9+1e-6*math.Abs(want) }

// The per-second counts roll out of the window; totals stay.
func TestWindowRolls(t *testing.T) {
	c := newClock()
	a := New(Options{Now: c.now})
	c.add(60 * time.Second) // a full window after start
	for range 120 {
		a.Add(decision(pipeline.PathRule, "transaction", time.Millisecond))
	}
	for range 30 {
		a.Add(decision(pipeline.PathSampled, "document", time.Second))
	}
	s := a.Snapshot()
	if s.Decisions != 150 || s.ByPath["rule"] != 120 || s.ByType["document"] != 30 {
		t.Fatalf("totals: %+v", s)
	}
	if s.WindowS != 59 { // 59 completed seconds and the current one, at its start
		t.Fatalf("window %v s", s.WindowS)
	}
	if !near(s.Rate.DecisionsPerS, 150/59.0) || !near(s.Rate.ByPath["sampled"], 30/59.0) || !near(s.Rate.LLMShare, 0.2) {
		t.Fatalf("rates: %+v", s.Rate)
	}
	if len(s.Series) != seconds-1 {
		t.Fatalf("series has %d seconds", len(s.Series))
	}

	// 30 s on: still in the window, and visible in the series now that
	// their second is complete.
	c.add(30 * time.Second)
	s = a.Snapshot()
	if !near(s.Rate.DecisionsPerS, 150/59.0) || s.Series[len(s.Series)-30] != 150 {
		t.Fatalf("30 s later: rate %v, series %v", s.Rate.DecisionsPerS, s.Series)
	}
	// A minute on: out of the window; the totals remain.
	c.add(30 * time.Second)
	a.Add(decision(pipeline.PathCache, "document", time.Millisecond))
	s = a.Snapshot()
	if !near(s.Rate.DecisionsPerS, 1/59.0) || s.Rate.CacheShare != 1 || s.Decisions != 151 {
		t.Fatalf("a minute later: %+v, decisions %d", s.Rate, s.Decisions)
	}
	for _, n := range s.Series {
		if n != 0 {
			t.Fatalf("series still holds old seconds: %v", s.Series)
		}
	}
	// Hours without results: one pass over the ring, not one per second.
	c.add(10 * time.Hour)
	if s = a.Snapshot(); s.Rate.DecisionsPerS != 0 || len(s.Latency) != 0 {
		t.Fatalf("after 10 h: %+v %v", s.Rate, s.Latency)
	}
}

// Soon after start the rate is over the time run, not a whole window.
func TestRateSoonAfterStart(t *testing.T) {
	c := newClock()
	a := New(Options{Now: c.now})
	c.add(4 * time.Second)
	for range 40 {
		a.Add(decision(pipeline.PathRule, "transaction", time.Millisecond))
	}
	if s := a.Snapshot(); s.WindowS != 4 || s.Rate.DecisionsPerS != 10 {
		t.Fatalf("window %v s, rate %v", s.WindowS, s.Rate.DecisionsPerS)
	}
}

// A clock that steps back counts into the current second.
func TestClockStepsBack(t *testing.T) {
	c := newClock()
	a := New(Options{Now: c.now})
	c.add(10 * time.Second)
	a.Add(decision(pipeline.PathRule, "transaction", time.Millisecond))
	c.add(-5 * time.Second)
	a.Add(decision(pipeline.PathRule, "transaction", time.Millisecond))
	c.add(6 * time.Second)
	if s := a.Snapshot(); s.Series[len(s.Series)-1] != 2 || s.Decisions != 2 {
		t.Fatalf("series %v, decisions %d", s.Series, s.Decisions)
	}
}

func TestPercentiles(t *testing.T) {
	c := newClock()
	a := New(Options{Now: c.now})
	for i := 1; i <= 100; i++ {
		a.Add(decision(pipeline.PathSampled, "transaction", time.Duration(i)*time.Millisecond))
		a.Add(decision(pipeline.PathRule, "transaction", time.Duration(i)*time.Microsecond))
	}
	check := func(when string, path string, count int64, p50, p99, maxMS float64) {
		t.Helper()
		p, ok := a.Snapshot().Latency[path]
		if !ok {
			t.Fatalf("%s: no %s latency", when, path)
		}
		// HDR buckets: within 0.1 %.
		within := func(got, want float64) bool { return math.Abs(got-want) <= want/1000+1e-9 }
		if p.Count != count || !within(p.P50, p50) || !within(p.P99, p99) || !within(p.Max, maxMS) {
			t.Fatalf("%s: %s = %+v, want n=%d p50=%v p99=%v max=%v", when, path, p, count, p50, p99, maxMS)
		}
	}
	check("now", "sampled", 100, 50, 99, 100)
	check("now", "rule", 100, 0.05, 0.099, 0.1)

	// Later slots merge with the earlier ones while they are in the window.
	c.add(25 * time.Second)
	for range 100 {
		a.Add(decision(pipeline.PathSampled, "transaction", time.Second))
	}
	check("25 s later", "sampled", 200, 100, 1000, 1000)
	c.add(30 * time.Second) // a new slot: the cached merge is rebuilt
	check("55 s later", "sampled", 200, 100, 1000, 1000)
	// The first slot leaves the window after 70 s, the second after 90 s.
	c.add(20 * time.Second)
	check("75 s later", "sampled", 100, 1000, 1000, 1000)
	c.add(20 * time.Second)
	if s := a.Snapshot(); len(s.Latency) != 0 {
		t.Fatalf("95 s later: %+v", s.Latency)
	}
}

func TestRecentBounded(t *testing.T) {
	c := newClock()
	a := New(Options{Now: c.now, Recent: 5})
	for i := range 12 {
		a.Add(sampled(i, 200*time.Millisecond))
		a.Add(decision(pipeline.PathRule, "transaction", time.Millisecond)) // not kept
	}
	s := a.Snapshot()
	if len(s.Recent) != 5 {
		t.Fatalf("%d recent decisions, want 5", len(s.Recent))
	}
	for i, r := range s.Recent {
		n := 11 - i // newest first
		if r.AuditID != fmt.Sprintf("audit-%d", n) || r.EventID != fmt.Sprintf("e%d", n) {
			t.Fatalf("recent[%d] = %+v, want decision %d", i, r, n)
		}
		// The first attempt's prompt, the last one's answer.
		if r.Prompt != fmt.Sprintf("prompt %d", n) || r.Answer != fmt.Sprintf("answer %d", n) || r.Status != "ok" ||
			r.Attempts != 2 || r.ToolCalls != 1 || r.Model != "offline-scorer" || r.Tier != "high" || r.LatencyMS != 200 {
			t.Fatalf("recent[%d] = %+v", i, r)
		}
	}
	if len(s.Tokens) != 1 || s.Tokens[0] != (TokenRow{Tenant: "t1", Model: "offline-scorer", Tier: "high", Attempts: 24, Input: 1320, Output: 264, Estimated: 12}) {
		t.Fatalf("tokens: %+v", s.Tokens)
	}
	if len(s.ToolCalls) != 1 || s.ToolCalls[0] != (ToolRow{Tool: "transaction_history", Status: "ok", Count: 12}) {
		t.Fatalf("tool calls: %+v", s.ToolCalls)
	}
}

func TestFallbacksAndRefusals(t *testing.T) {
	a := New(Options{})
	for _, reason := range []string{pipeline.FallbackTimeout, pipeline.FallbackTimeout, sampling.FallbackRateLimited, pipeline.FallbackNoSampler} {
		r := decision(pipeline.PathFallback, "document", time.Second)
		r.Decision.Reason = reason
		r.Trail = []*audit.Record{{Kind: audit.KindDecision, AuditID: "x"}}
		a.Add(r)
	}
	a.Add(pipeline.Result{DLQReason: "bad_json"})
	s := a.Snapshot()
	if s.Fallbacks["timeout"] != 2 || s.Fallbacks["no_sampler"] != 1 || s.DLQ != 1 || s.Decisions != 4 {
		t.Fatalf("fallbacks %v, dlq %d", s.Fallbacks, s.DLQ)
	}
	want := map[string]int64{"rate_limited": 1, "budget_exceeded": 0, "policy": 0}
	if fmt.Sprint(s.Refused) != fmt.Sprint(want) {
		t.Fatalf("refused %v, want %v", s.Refused, want)
	}
	if r := s.Recent[0]; r.Path != "fallback" || r.Prompt != "" || r.Reason != "no_sampler" || r.Attempts != 0 {
		t.Fatalf("recent fallback: %+v", r)
	}
}

// Keys from event data are capped: a flood of tenants, outcomes or types
// lands under Other instead of growing memory.
func TestCaps(t *testing.T) {
	a := New(Options{})
	for i := range 1000 {
		r := sampled(i, time.Millisecond)
		r.Decision.Type = fmt.Sprintf("type%d", i)
		r.Decision.Outcome = fmt.Sprintf("outcome%d", i)
		r.Trail[2].TenantID = fmt.Sprintf("tenant%d", i)
		r.Trail[1].Tool = fmt.Sprintf("tool%d", i)
		a.Add(r)
	}
	s := a.Snapshot()
	if len(s.ByType) != maxTypes+1 || s.ByType[Other] != 1000-maxTypes {
		t.Fatalf("%d types, %d other", len(s.ByType), s.ByType[Other])
	}
	if len(s.ByOutcome) != maxKeys || s.ByOutcome[Other] != 1000-maxKeys+1 || s.ByOutcome["outcome0"] != 1 {
		t.Fatalf("%d outcomes, %d other", len(s.ByOutcome), s.ByOutcome[Other])
	}
	if len(s.Tokens) > maxTokens+1 || len(s.ToolCalls) > maxKeys+1 {
		t.Fatalf("%d token rows, %d tool rows", len(s.Tokens), len(s.ToolCalls))
	}
	var attempts int64
	for _, r := range s.Tokens {
		attempts += r.Attempts
	}
	if attempts != 2000 {
		t.Fatalf("token rows count %d attempts, want 2000", attempts)
	}
}

func TestClip(t *testing.T) {
	long := ""
	for len(long) <= maxSummary {
		long += "€"
	}
	got := clip(long)
	if len(got) > maxSummary || len(got)%3 != 0 {
		t.Fatalf("clip cut a rune: %d bytes", len(got))
	}
	if clip("short") != "short" {
		t.Fatal("clip changed a short string")
	}
}

// A rule decision costs no allocation on the result path.
func TestAddRuleAllocs(t *testing.T) {
	c := newClock()
	a := New(Options{Now: c.now})
	r := decision(pipeline.PathRule, "transaction", time.Millisecond)
	a.Add(r) // the slot's histogram is allocated once
	if n := testing.AllocsPerRun(1000, func() { a.Add(r) }); n != 0 {
		t.Fatalf("%v allocations per rule decision", n)
	}
}

// Add and Snapshot run concurrently (the race detector checks).
func TestConcurrent(t *testing.T) {
	a := New(Options{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				if i%10 == 0 {
					a.Add(sampled(w*10000+i, time.Millisecond))
				} else {
					a.Add(decision(pipeline.PathRule, "transaction", time.Microsecond))
				}
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			_ = a.Snapshot()
		}
	})
	wg.Wait()
	if s := a.Snapshot(); s.Decisions != 8000 || len(s.Recent) != 20 {
		t.Fatalf("decisions %d, recent %d", s.Decisions, len(s.Recent))
	}
}

func BenchmarkAddRule(b *testing.B) {
	a := New(Options{})
	r := decision(pipeline.PathRule, "transaction", time.Millisecond)
	b.ReportAllocs()
	for b.Loop() {
		a.Add(r)
	}
}

func BenchmarkSnapshot(b *testing.B) {
	a := New(Options{})
	for i := range 10000 {
		a.Add(decision(pipeline.PathRule, "transaction", time.Duration(i)*time.Microsecond))
		if i%10 == 0 {
			a.Add(sampled(i, time.Duration(i)*time.Millisecond))
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = a.Snapshot()
	}
}
