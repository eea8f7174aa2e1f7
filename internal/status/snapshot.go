package status

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/triage-dev/triage/internal/latency"
	"github.com/triage-dev/triage/sampling"
)

// Snapshot is the status page's figures at one moment, as /status.json
// serves them. Figures named "since start" count from the aggregator's
// start; Rate, Series and Latency cover the sliding window.
type Snapshot struct {
	Now     time.Time `json:"now"`
	Started time.Time `json:"started"`
	// Decider names what decides ambiguous events (Sources.Decider).
	Decider string `json:"decider,omitempty"`

	// Decisions and DLQ count since start; ByPath, ByType and ByOutcome
	// split the decisions.
	Decisions int64            `json:"decisions"`
	DLQ       int64            `json:"dlq"`
	ByPath    map[string]int64 `json:"by_path"`
	ByType    map[string]int64 `json:"by_type"`
	ByOutcome map[string]int64 `json:"by_outcome"`

	// WindowS is how many seconds Rate covers: Window, or less so soon
	// after start.
	WindowS float64 `json:"window_s"`
	Rate    Rates   `json:"rate"`
	// Series is decisions per second for each completed second of the
	// window, oldest first.
	Series []int64 `json:"series"`

	// LatencyDefinition says what Latency measures (LatencyDefinition).
	LatencyDefinition string `json:"latency_definition"`
	// LatencyWindowS is how many seconds Latency covers: 60 to 70 once
	// the consumer has run that long (the window moves in 10 s steps).
	LatencyWindowS float64 `json:"latency_window_s"`
	// Latency holds percentiles by path, for the paths with decisions in
	// the window.
	Latency map[string]Percentiles `json:"latency_ms"`

	// Fallbacks counts fallback decisions by reason since start; Refused
	// is the guards' share of them (rate_limited, budget_exceeded,
	// policy), always listed.
	Fallbacks map[string]int64 `json:"fallbacks"`
	Refused   map[string]int64 `json:"refused"`
	// Tokens are the sampling attempts' tokens since start by tenant,
	// model and tier, most tokens first.
	Tokens []TokenRow `json:"tokens"`
	// ToolCalls are the tool calls inside sampling since start.
	ToolCalls []ToolRow `json:"tool_calls"`
	// Recent are the latest LLM-stage decisions, newest first.
	Recent []Recent `json:"recent"`

	// Read from Sources when the snapshot is served.

	// SamplingItems is the ambiguous items in the sampling stage, queued
	// or leased (triage_sampling_items); nil when unknown.
	SamplingItems *int64 `json:"sampling_items"`
	// Paused lists the partitions whose fetching is paused, "topic/N".
	Paused []string `json:"paused_partitions"`
	// FetchLag is records behind the high watermarks as of the last fetch
	// (triage_consumer_fetch_lag_records).
	FetchLag int64 `json:"fetch_lag"`
	// Samplers are the connected sampler sessions; nil without a pool
	// (direct mode).
	Samplers []Sampler `json:"samplers"`
}

// Rates are the window's throughput and shares.
type Rates struct {
	DecisionsPerS float64            `json:"decisions_per_s"`
	ByPath        map[string]float64 `json:"by_path"`
	ByType        map[string]float64 `json:"by_type"`
	// LLMShare is the share of decisions the rules left to the LLM stage
	// (sampled, cache and fallback paths).
	LLMShare float64 `json:"llm_share"`
	// CacheShare is the share of would-be LLM requests the result cache
	// answered: cache / (cache + sampled).
	CacheShare float64 `json:"cache_share"`
}

// Percentiles summarise one path's latencies in the window, in ms.
type Percentiles struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// TokenRow is the tokens of one tenant, model and tier.
type TokenRow struct {
	Tenant   string `json:"tenant"`
	Model    string `json:"model"`
	Tier     string `json:"tier"`
	Attempts int64  `json:"attempts"`
	Input    int64  `json:"input"`
	Output   int64  `json:"output"`
	// Estimated counts the attempts whose tokens were estimated from the
	// text's length because the sampler reported none.
	Estimated int64 `json:"estimated"`
}

// ToolRow counts the calls of one tool that ended with one status.
type ToolRow struct {
	Tool   string `json:"tool"`
	Status string `json:"status"`
	Count  int64  `json:"count"`
}

// Recent is one LLM-stage decision with the exchange that led to it. The
// prompt is the sampling request as the audit record keeps it (masked);
// prompt and answer are attacker-influenced text, to be shown escaped.
type Recent struct {
	At      time.Time `json:"at"`
	EventID string    `json:"event_id"`
	Type    string    `json:"type"`
	Tenant  string    `json:"tenant"`
	Path    string    `json:"path"`
	Outcome string    `json:"outcome"`
	Reason  string    `json:"reason,omitempty"`
	Model   string    `json:"model,omitempty"`
	Tier    string    `json:"tier,omitempty"`
	// AuditID is the decision's audit record; SourceAuditID, on a cache
	// decision, the sampled decision whose answer it reuses.
	AuditID       string `json:"audit_id"`
	SourceAuditID string `json:"source_audit_id,omitempty"`
	// Prompt is the first sampling attempt's request summary (the masked
	// prompt); Answer and Status are the last attempt's response summary
	// and status. All are empty without an attempt (cache, most
	// fallbacks).
	Prompt    string  `json:"prompt"`
	Answer    string  `json:"answer"`
	Status    string  `json:"status,omitempty"`
	Attempts  int     `json:"attempts"`
	ToolCalls int     `json:"tool_calls"`
	LatencyMS float64 `json:"latency_ms"`
	DecideMS  float64 `json:"decide_ms"`
}

// Sampler is a connected sampler session (sampling.SamplerInfo).
type Sampler struct {
	Name        string  `json:"name"`
	Protocol    string  `json:"protocol"`
	Mode        string  `json:"mode"`
	Region      string  `json:"region"`
	Tools       bool    `json:"tools"`
	InFlight    int     `json:"in_flight"`
	Quarantined bool    `json:"quarantined"`
	SeenAgoS    float64 `json:"seen_ago_s"`
}

// guardReasons are the fallback reasons of the guards' refusals.
var guardReasons = []string{sampling.FallbackRateLimited, sampling.FallbackBudgetExceeded, sampling.FallbackPolicy}

// Snapshot returns the figures now. The aggregator's lock is held only to
// copy counters; histograms are merged outside it.
func (a *Aggregator) Snapshot() Snapshot {
	now := a.now()
	a.mu.Lock()
	a.win.advance(now)
	s := Snapshot{
		Now: now, Started: a.started, LatencyDefinition: LatencyDefinition,
		Decisions: a.totals.decisions, DLQ: a.totals.dlq,
		ByPath: map[string]int64{}, ByType: map[string]int64{},
		ByOutcome: maps.Clone(a.totals.byOutcome), Fallbacks: maps.Clone(a.totals.fallbacks),
		Refused: map[string]int64{}, Latency: map[string]Percentiles{},
		Rate: Rates{ByPath: map[string]float64{}, ByType: map[string]float64{}},
	}
	types := slices.Clone(a.totals.types)
	for i, n := range a.totals.byPath {
		if n > 0 || i != pathOther {
			s.ByPath[pathNames[i]] = n
		}
	}
	for i, n := range a.totals.byType {
		if n > 0 {
			s.ByType[typeName(types, i)] = n
		}
	}
	for _, row := range a.totals.tokens {
		s.Tokens = append(s.Tokens, *row)
	}
	for k, n := range a.totals.toolCalls {
		s.ToolCalls = append(s.ToolCalls, ToolRow{Tool: k.tool, Status: k.status, Count: n})
	}
	for i := range a.kept {
		s.Recent = append(s.Recent, a.recent[mod(int64(a.next-1-i), len(a.recent))])
	}
	byPath, byType, series := a.win.counts()
	full, cur, latFrom := a.win.histograms()
	curSlot := a.win.cur / slotWidth
	merged, fresh := a.merged, a.mergedOK && a.mergedFor == curSlot
	a.mu.Unlock()

	for _, r := range guardReasons {
		s.Refused[r] = s.Fallbacks[r]
	}
	slices.SortFunc(s.Tokens, func(x, y TokenRow) int {
		return cmp.Or(cmp.Compare(y.Input+y.Output, x.Input+x.Output), cmp.Compare(x.Tenant, y.Tenant),
			cmp.Compare(x.Model, y.Model), cmp.Compare(x.Tier, y.Tier))
	})
	slices.SortFunc(s.ToolCalls, func(x, y ToolRow) int {
		return cmp.Or(cmp.Compare(x.Tool, y.Tool), cmp.Compare(x.Status, y.Status))
	})

	// Rates: per second over the part of the window the consumer ran.
	windowFrom := later(time.Unix(now.Unix()-int64(seconds)+1, 0), s.Started)
	s.WindowS = max(now.Sub(windowFrom).Seconds(), 1e-3)
	var all int64
	for i, n := range byPath {
		all += n
		if n > 0 || i != pathOther {
			s.Rate.ByPath[pathNames[i]] = float64(n) / s.WindowS
		}
	}
	for i, n := range byType {
		if n > 0 {
			s.Rate.ByType[typeName(types, i)] = float64(n) / s.WindowS
		}
	}
	s.Rate.DecisionsPerS = float64(all) / s.WindowS
	if all > 0 {
		s.Rate.LLMShare = float64(all-byPath[pathRule]) / float64(all)
	}
	if n := byPath[pathCache] + byPath[pathSampled]; n > 0 {
		s.Rate.CacheShare = float64(byPath[pathCache]) / float64(n)
	}
	s.Series = series

	if !fresh {
		merged = mergeSlots(full)
		a.mu.Lock()
		if !a.mergedOK || a.mergedFor < curSlot {
			a.merged, a.mergedFor, a.mergedOK = merged, curSlot, true
		}
		a.mu.Unlock()
	}
	s.LatencyWindowS = max(0, now.Sub(later(time.Unix(latFrom, 0), s.Started)).Seconds())
	for p := range numPaths {
		var h latency.Histogram
		h.Merge(merged[p])
		h.Merge(cur[p])
		if n := h.Count(); n > 0 {
			s.Latency[pathNames[p]] = Percentiles{Count: n, P50: ms(h.Quantile(0.5)), P90: ms(h.Quantile(0.9)),
				P99: ms(h.Quantile(0.99)), Max: ms(h.Max())}
		}
	}
	return s
}

// mergeSlots merges completed slots by path. They are not written any
// more, so this runs without the aggregator's lock; the result serves
// every snapshot until the next slot starts.
func mergeSlots(full [][numPaths]*latency.Histogram) (out [numPaths]*latency.Histogram) {
	for _, sl := range full {
		for p, h := range sl {
			if h == nil {
				continue
			}
			if out[p] == nil {
				out[p] = &latency.Histogram{}
			}
			out[p].Merge(h)
		}
	}
	return out
}

func typeName(types []string, i int) string {
	if i < len(types) {
		return types[i]
	}
	return Other
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
