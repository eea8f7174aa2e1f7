// Package status is the consumer's live status page: an aggregator fed by
// the pipeline's OnResult hook, and an HTTP handler that serves the page
// at / and its figures at /status.json.
//
// The aggregator runs on the result path of every event, tens of thousands
// a second, so it is a mutex and fixed counters: a rule decision costs no
// allocation, and memory does not grow with the events seen. Throughput
// counts per second over the last Window; latency percentiles come from
// latency.Histogram (the demo summary's histogram, so both mean the same
// thing) in 10 s slots; maps keyed by configuration or by event data
// (types, outcomes, reasons, tenants, models, tools) are capped, and what
// does not fit is counted under Other.
package status

import (
	"sync"
	"time"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/internal/latency"
	"github.com/triage-dev/triage/pipeline"
)

// Window is the span of the sliding figures: decisions/s, the shares and
// the latency percentiles.
const Window = 60 * time.Second

// LatencyDefinition says what a latency on the page measures: the same
// interval as triage_decision_latency_seconds and the demo summary.
const LatencyDefinition = "produce → decision acknowledged"

// Other is the key that counts what no longer fits a capped table.
const Other = "(other)"

// Caps of the keyed tables. Types and tools come from configuration;
// tenants and outcomes can come from event data, so a flood of distinct
// values must not grow memory.
const (
	maxTypes   = 16
	maxKeys    = 64  // outcomes, fallback reasons, tool calls
	maxTokens  = 256 // tenant × model × tier rows
	maxSummary = 4096
)

// Options configure an Aggregator. The zero value means the defaults.
type Options struct {
	// Recent is how many of the latest LLM-stage decisions (sampled,
	// cache, fallback) are kept with their prompt and answer. Default 20.
	Recent int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Aggregator keeps the status page's figures. Add is the pipeline's
// OnResult hook; Snapshot reads them. It is safe for concurrent use.
type Aggregator struct {
	now func() time.Time

	mu      sync.Mutex
	started time.Time
	win     window
	totals  totals
	recent  []Recent // ring of len Options.Recent
	next    int      // where the next recent decision goes
	kept    int      // recent decisions kept, up to len(recent)

	// merged caches the completed slots' latencies merged by path, for
	// the slot mergedFor (valid once mergedOK): they change only when a
	// slot completes, so snapshots in between merge just the current one.
	merged    [numPaths]*latency.Histogram
	mergedFor int64
	mergedOK  bool
}

// totals are the counters since start.
type totals struct {
	decisions, dlq int64
	byPath         [numPaths]int64
	byType         [maxTypes + 1]int64 // the last is Other
	types          []string            // index → name, in order of first sight
	typeIndex      map[string]int
	byOutcome      map[string]int64
	fallbacks      map[string]int64
	tokens         map[tokenKey]*TokenRow
	toolCalls      map[toolKey]int64
}

type tokenKey struct{ tenant, model, tier string }

type toolKey struct{ tool, status string }

// New returns an empty Aggregator whose clock starts now.
func New(opts Options) *Aggregator {
	if opts.Recent <= 0 {
		opts.Recent = 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	now := opts.Now()
	return &Aggregator{
		now:     opts.Now,
		started: now,
		win:     newWindow(now),
		recent:  make([]Recent, opts.Recent),
		totals: totals{
			typeIndex: map[string]int{},
			byOutcome: map[string]int64{},
			fallbacks: map[string]int64{},
			tokens:    map[tokenKey]*TokenRow{},
			toolCalls: map[toolKey]int64{},
		},
	}
}

// Add records one result; it is meant as pipeline.Config.OnResult.
func (a *Aggregator) Add(r pipeline.Result) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.win.advance(now)
	d := r.Decision
	switch {
	case r.HandedOff:
		// The sampling stage reports the event's decision.
		return
	case d == nil:
		a.totals.dlq++
		return
	}
	path := pathIndex(d.Path)
	typ := a.typeIndexLocked(d.Type)
	a.totals.decisions++
	a.totals.byPath[path]++
	a.totals.byType[typ]++
	bump(a.totals.byOutcome, d.Outcome, maxKeys)
	a.win.add(path, typ, r.Latency)
	if path == pathRule {
		return
	}
	if path == pathFallback {
		bump(a.totals.fallbacks, d.Reason, maxKeys)
	}
	a.trailLocked(r, d, now)
}

// trailLocked counts an LLM-stage decision's tokens and tool calls and
// keeps it among the recent ones.
func (a *Aggregator) trailLocked(r pipeline.Result, d *pipeline.Decision, now time.Time) {
	rec := Recent{
		At: now, EventID: d.EventID, Type: d.Type, Tenant: d.TenantID, Path: d.Path, Outcome: d.Outcome,
		Reason: d.Reason, Model: d.Model, Tier: d.Tier, LatencyMS: ms(r.Latency), DecideMS: ms(r.DecideTime),
	}
	for _, t := range r.Trail {
		switch t.Kind {
		case audit.KindSampling:
			rec.Attempts++
			// The first attempt's request is the rendered prompt (later
			// ones carry a tool result or a corrective follow-up); the
			// last attempt's answer is the one that decided.
			if rec.Attempts == 1 {
				rec.Prompt = clip(t.RequestSummary)
			}
			rec.Answer, rec.Status = clip(t.ResponseSummary), string(t.Status)
			a.tokensLocked(t)
		case audit.KindToolCall:
			rec.ToolCalls++
			k := toolKey{t.Tool, string(t.Status)}
			if _, ok := a.totals.toolCalls[k]; !ok && len(a.totals.toolCalls) >= maxKeys {
				k = toolKey{Other, Other}
			}
			a.totals.toolCalls[k]++
		case audit.KindDecision:
			rec.AuditID, rec.SourceAuditID = t.AuditID, t.SourceAuditID
		}
	}
	a.recent[a.next] = rec
	a.next = (a.next + 1) % len(a.recent)
	a.kept = min(a.kept+1, len(a.recent))
}

func (a *Aggregator) tokensLocked(t *audit.Record) {
	model := t.ModelAnswered
	if model == "" {
		model = t.ModelRequested
	}
	k := tokenKey{t.TenantID, model, t.Tier}
	row := a.totals.tokens[k]
	if row == nil {
		if len(a.totals.tokens) >= maxTokens {
			k = tokenKey{Other, Other, Other}
		}
		if row = a.totals.tokens[k]; row == nil {
			row = &TokenRow{Tenant: k.tenant, Model: k.model, Tier: k.tier}
			a.totals.tokens[k] = row
		}
	}
	row.Attempts++
	row.Input += t.InputTokens
	row.Output += t.OutputTokens
	if t.TokensEstimated {
		row.Estimated++
	}
}

// typeIndexLocked is the counter index of an event type: its own up to
// maxTypes types, Other's after.
func (a *Aggregator) typeIndexLocked(name string) int {
	if i, ok := a.totals.typeIndex[name]; ok {
		return i
	}
	if len(a.totals.types) >= maxTypes {
		return maxTypes
	}
	i := len(a.totals.types)
	a.totals.types = append(a.totals.types, name)
	a.totals.typeIndex[name] = i
	return i
}

// bump counts key in m, or Other when a new key would make m hold more
// than limit keys, Other included.
func bump(m map[string]int64, key string, limit int) {
	if _, ok := m[key]; !ok && len(m) >= limit-1 {
		key = Other
	}
	m[key]++
}

// clip bounds a summary on a rune boundary without copying it. Audit
// summaries are clipped upstream already; this keeps the page bounded
// whatever a Decider puts in them.
func clip(s string) string {
	if len(s) <= maxSummary {
		return s
	}
	n := maxSummary
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
