package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/triage-dev/triage/pipeline"
)

// Report is the JSON form of a summary (written by --summary-json).
type Report struct {
	EventsIn     int `json:"events_in"`
	Decisions    int `json:"decisions"`
	DLQ          int `json:"dlq"`
	AuditRecords int `json:"audit_records"`
	// Handoffs counts the ambiguous events the rule stage handed off to
	// the sampling stage (0 with --stage inline).
	Handoffs    int            `json:"handoffs"`
	Attempts    int            `json:"sampling_attempts"`
	ByPath      map[string]int `json:"by_path"`
	ByOutcome   map[string]int `json:"by_outcome"`
	ByType      map[string]int `json:"by_type"`
	ByDLQReason map[string]int `json:"by_dlq_reason"`
	ByFallback  map[string]int `json:"by_fallback_reason"`
	DurationS   float64        `json:"duration_s"`
	RecordsPerS float64        `json:"records_per_s"`
	// LatencyMS is each decision's latency from its event's produce
	// timestamp to the broker's acknowledgement of the decision, by path:
	// the definition of triage_decision_latency_seconds and the status
	// page. With a ProduceRate of 0 (a burst) it includes the wait behind
	// every event produced before.
	LatencyMS map[string]float64 `json:"latency_ms"`
	// ProduceRate is the rate events were produced at, events/s; 0 means
	// as fast as the broker acknowledged them (a burst).
	ProduceRate float64 `json:"produce_rate"`
	// DecideMS is the Decider's time (sampling, or the guards' answer) by
	// path, p50 and p99: what a cache hit costs against a sampled decision.
	DecideMS map[string]float64 `json:"decide_ms"`
	// DecideCount counts the decisions behind DecideMS, by row: sampled,
	// cache (a stored answer), cache_shared (waited for an identical
	// request in flight), fallback.
	DecideCount map[string]int `json:"decide_count"`
	// CacheShare is the share of would-be LLM requests the result cache
	// answered: cache / (cache + sampled) decisions.
	CacheShare float64 `json:"cache_share"`
	// Refused counts the fallbacks the guards chose instead of a request,
	// by reason: rate_limited, budget_exceeded, policy.
	Refused map[string]int `json:"refused"`
	// ToolCalls counts the tool calls made inside sampling by "tool status".
	ToolCalls map[string]int `json:"tool_calls"`
	// Tokens are the sampling attempts' tokens by tenant, model and tier,
	// from the audit records read back.
	Tokens []TokenRow `json:"tokens"`
	// Missing counts produced events with neither a decision nor a dead
	// letter; Duplicates counts results beyond the first for an event.
	Missing    int `json:"missing"`
	Duplicates int `json:"duplicates"`
	// AuditRead counts the audit records of this run's events read back
	// from the audit topic; AuditMismatched counts events whose records
	// there are not one decision record plus one per sampling attempt, or,
	// for a dead letter, exactly one dead_letter record.
	AuditRead       int `json:"audit_read"`
	AuditMismatched int `json:"audit_mismatched"`
	// Complete says every produced event has exactly one decision or dead
	// letter; AuditComplete that the audit topic holds exactly the records
	// the decisions call for. Problems says why either is false.
	Complete      bool     `json:"complete"`
	AuditComplete bool     `json:"audit_complete"`
	Problems      []string `json:"problems,omitempty"`
	Sampler       string   `json:"sampler"`
}

// TokenRow is one row of Report.Tokens.
type TokenRow struct {
	Tenant   string `json:"tenant"`
	Model    string `json:"model"`
	Tier     string `json:"tier"`
	Attempts int    `json:"attempts"`
	Tokens   int64  `json:"tokens"`
	// Estimated counts the attempts whose tokens were estimated from the
	// text's length because the sampler reported none.
	Estimated int `json:"estimated"`
}

// decidePaths are the rows of the decider-time table.
var decidePaths = []string{pipeline.PathSampled, pipeline.PathCache, pathCacheShared, pipeline.PathFallback}

// guardReasons are the fallback reasons of the guards' refusals.
var guardReasons = []string{"rate_limited", "budget_exceeded", "policy"}

// Report snapshots the summary. sampler names what decided ambiguous events.
func (s *Summary) Report(sampler string) Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	end := s.last
	if end.IsZero() {
		end = time.Now()
	}
	dur := end.Sub(s.start).Seconds()
	r := Report{
		EventsIn: s.eventsIn, Decisions: s.decisions, DLQ: s.dlq, AuditRecords: s.audit, Handoffs: s.handoffs, Attempts: s.attempts,
		ByPath: maps.Clone(s.byPath), ByOutcome: maps.Clone(s.byOutcome), ByType: maps.Clone(s.byType),
		ByDLQReason: maps.Clone(s.byDLQ), ByFallback: maps.Clone(s.byReason),
		DurationS: dur, LatencyMS: map[string]float64{}, DecideMS: map[string]float64{}, DecideCount: map[string]int{}, Sampler: sampler,
		Refused: map[string]int{}, ToolCalls: maps.Clone(s.toolCalls),
	}
	for _, reason := range guardReasons {
		r.Refused[reason] = s.byReason[reason]
	}
	if n := s.byPath[pipeline.PathCache] + s.byPath[pipeline.PathSampled]; n > 0 {
		r.CacheShare = float64(s.byPath[pipeline.PathCache]) / float64(n)
	}
	for k, c := range s.tokens {
		r.Tokens = append(r.Tokens, TokenRow{Tenant: k.tenant, Model: k.model, Tier: k.tier, Attempts: c.attempts, Tokens: c.tokens, Estimated: c.estimated})
	}
	slices.SortFunc(r.Tokens, func(a, b TokenRow) int {
		if a.Tokens != b.Tokens {
			return int(b.Tokens - a.Tokens)
		}
		return strings.Compare(a.Tenant+a.Model+a.Tier, b.Tenant+b.Model+b.Tier)
	})
	if dur > 0 {
		r.RecordsPerS = float64(s.decisions+s.dlq) / dur
	}
	for _, path := range []string{pipeline.PathRule, pipeline.PathSampled, pipeline.PathCache, pipeline.PathFallback} {
		r.LatencyMS[path+"_p50"] = ms(s.latency[path].Quantile(0.50))
		r.LatencyMS[path+"_p99"] = ms(s.latency[path].Quantile(0.99))
	}
	for _, path := range decidePaths {
		r.DecideMS[path+"_p50"] = ms(s.decide[path].Quantile(0.50))
		r.DecideMS[path+"_p99"] = ms(s.decide[path].Quantile(0.99))
		r.DecideCount[path] = int(s.decide[path].Count())
	}
	s.check(&r)
	return r
}

// check compares what the pipeline reported with what was produced and
// what the audit topic holds.
func (s *Summary) check(r *Report) {
	for _, a := range s.events {
		if !a.produced {
			continue
		}
		switch {
		case a.results == 0:
			r.Missing++
		case a.results > 1:
			r.Duplicates += a.results - 1
		}
		r.AuditRead += a.auditDecisions + a.auditDeadLetters + a.auditHandoffs + a.auditOthers
		// What the pipeline reported for the event is what its audit trail
		// must hold: a decision's record and its attempts', or one
		// dead_letter record. An event decided and dead-lettered both is
		// already a duplicate above; its trail is expected to hold both.
		decisions, deadLetters := 0, 0
		if a.decided {
			decisions = 1
		}
		if a.dead {
			deadLetters = 1
		}
		// A decided event may also have one handoff record: the rule
		// stage's, when the sampling stage decided it.
		if a.auditDecisions != decisions || a.auditDeadLetters != deadLetters || a.auditOthers != decisions*a.attempts ||
			a.auditHandoffs > decisions {
			r.AuditMismatched++
		}
	}
	if !s.tracked {
		r.Problems = append(r.Problems, "the produced events were not tracked, so none can be checked")
	}
	if r.Missing > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d of %d events have no decision or DLQ record", r.Missing, s.eventsIn))
	}
	if r.Duplicates > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d decision or DLQ records repeat an event", r.Duplicates))
	}
	if !s.auditRead {
		r.Problems = append(r.Problems, "the audit topic was not read back")
	}
	if r.AuditMismatched > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d events lack audit records, or have extra ones, on the audit topic", r.AuditMismatched))
	}
	r.Complete = s.tracked && r.Missing == 0 && r.Duplicates == 0
	r.AuditComplete = s.tracked && s.auditRead && r.AuditMismatched == 0
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// WriteTable prints the report for people.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "events in\t%d\n", r.EventsIn)
	fmt.Fprintf(tw, "decisions\t%d\n", r.Decisions)
	fmt.Fprintf(tw, "dead-lettered\t%d\n", r.DLQ)
	fmt.Fprintf(tw, "audit records\t%d (%d decisions + %d sampling attempts and tool calls + %d dead letters + %d handoffs to the sampling stage)\n", r.AuditRecords, r.Decisions, r.Attempts, r.DLQ, r.Handoffs)
	fmt.Fprintf(tw, "duration\t%.2f s (%.0f records/s)\n", r.DurationS, r.RecordsPerS)
	fmt.Fprintf(tw, "ambiguous events decided by\t%s\n", r.Sampler)
	writeCounts(tw, "by path", r.ByPath, r.Decisions)
	writeCounts(tw, "by type", r.ByType, r.Decisions)
	writeCounts(tw, "by outcome", r.ByOutcome, r.Decisions)
	writeCounts(tw, "fallback reason", r.ByFallback, r.Decisions)
	writeCounts(tw, "DLQ reason", r.ByDLQReason, r.DLQ)
	if r.ProduceRate > 0 {
		fmt.Fprintf(tw, "decision latency: produce → decision acknowledged, events produced at a steady %.0f/s\n", r.ProduceRate)
	} else {
		fmt.Fprintln(tw, "decision latency: produce → decision acknowledged; BURST, all events produced at once, so it includes the wait behind them")
	}
	fmt.Fprintln(tw, "  by path\tp50 ms\tp99 ms")
	for _, path := range []string{pipeline.PathRule, pipeline.PathSampled, pipeline.PathCache, pipeline.PathFallback} {
		if r.ByPath[path] > 0 {
			fmt.Fprintf(tw, "  %s\t%.1f\t%.1f\n", path, r.LatencyMS[path+"_p50"], r.LatencyMS[path+"_p99"])
		}
	}
	r.writeControls(tw)
	check := "OK: every event has a decision or a DLQ record; every decision, sampling attempt and dead letter an audit record"
	if !r.Complete || !r.AuditComplete {
		check = "INCOMPLETE: " + strings.Join(r.Problems, "; ")
	}
	fmt.Fprintf(tw, "check\t%s\n", check)
	return tw.Flush()
}

// maxTokenRows bounds the tokens table the summary prints.
const maxTokenRows = 12

// writeControls prints what the LLM stage's controls did: the cache's
// share, the guards' refusals, the tool calls, the decider's time by path
// and the tokens by tenant, model and tier.
func (r Report) writeControls(w io.Writer) {
	saved := r.ByPath[pipeline.PathCache]
	fmt.Fprintf(w, "LLM requests saved by the cache\t%d of %d\t%.1f %%\n", saved, saved+r.ByPath[pipeline.PathSampled], 100*r.CacheShare)
	fmt.Fprintf(w, "refused by the guards\t\t\n")
	for _, reason := range guardReasons {
		fmt.Fprintf(w, "  %s\t%d\t\n", reason, r.Refused[reason])
	}
	calls := 0
	for _, n := range r.ToolCalls {
		calls += n
	}
	writeCounts(w, "tool calls inside sampling", r.ToolCalls, calls)
	fmt.Fprintln(w, "decider time: an ambiguous event's time in the LLM stage (guards, cache, queue, sampling)")
	fmt.Fprintln(w, "  by path\tp50 ms\tp99 ms")
	for _, path := range decidePaths {
		if n := r.DecideCount[path]; n > 0 {
			fmt.Fprintf(w, "  %s (%d)\t%.3f\t%.3f\n", strings.ReplaceAll(path, "_", ", "), n, r.DecideMS[path+"_p50"], r.DecideMS[path+"_p99"])
		}
	}
	fmt.Fprintln(w, "tokens by tenant, model, tier\tattempts\ttokens (estimated attempts)")
	for i, t := range r.Tokens {
		if i == maxTokenRows {
			fmt.Fprintf(w, "  … %d more rows in --summary-json\t\t\n", len(r.Tokens)-i)
			break
		}
		tier := t.Tier
		if tier == "" {
			tier = "-"
		}
		fmt.Fprintf(w, "  %s %s %s\t%d\t%d (%d)\n", t.Tenant, t.Model, tier, t.Attempts, t.Tokens, t.Estimated)
	}
}

func writeCounts(w io.Writer, title string, m map[string]int, total int) {
	keys := slices.Collect(maps.Keys(m))
	sort.Strings(keys)
	fmt.Fprintf(w, "%s\t\t\n", title)
	for _, k := range keys {
		share := 0.0
		if total > 0 {
			share = 100 * float64(m[k]) / float64(total)
		}
		fmt.Fprintf(w, "  %s\t%d\t%.1f %%\n", k, m[k], share)
	}
}

// WriteJSON writes the report to path.
func (r Report) WriteJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("demo: encode summary: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("demo: write summary: %w", err)
	}
	return nil
}
