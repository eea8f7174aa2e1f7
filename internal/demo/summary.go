package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/triage-dev/triage/pipeline"
)

// Summary aggregates pipeline results for one demo run. It keeps every
// latency to compute exact percentiles, so it is for bounded runs only.
type Summary struct {
	mu        sync.Mutex
	start     time.Time
	last      time.Time
	changed   chan struct{}
	eventsIn  int
	decisions int
	dlq       int
	audit     int
	attempts  int
	byPath    map[string]int
	byOutcome map[string]int
	byType    map[string]int
	byDLQ     map[string]int
	byReason  map[string]int
	latency   map[string][]time.Duration
}

// NewSummary starts a summary; its clock starts now.
func NewSummary() *Summary {
	return &Summary{
		start:     time.Now(),
		changed:   make(chan struct{}),
		byPath:    map[string]int{pipeline.PathRule: 0, pipeline.PathSampled: 0, pipeline.PathCache: 0, pipeline.PathFallback: 0},
		byOutcome: map[string]int{},
		byType:    map[string]int{},
		byDLQ:     map[string]int{},
		byReason:  map[string]int{},
		latency:   map[string][]time.Duration{},
	}
}

// Restart resets the clock: the run's duration counts from here.
func (s *Summary) Restart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.start = time.Now()
}

// Add records one result; it is the pipeline's OnResult hook.
func (s *Summary) Add(r pipeline.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = time.Now()
	s.audit += r.AuditRecords
	s.attempts += r.SamplingAttempts
	if d := r.Decision; d != nil {
		s.decisions++
		s.byPath[d.Path]++
		s.byOutcome[d.Outcome]++
		s.byType[d.Type]++
		if d.Path == pipeline.PathFallback {
			s.byReason[d.Reason]++
		}
		s.latency[d.Path] = append(s.latency[d.Path], r.Latency)
	} else {
		s.dlq++
		s.byDLQ[r.DLQReason]++
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// SetEventsIn records how many events were produced for the run.
func (s *Summary) SetEventsIn(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eventsIn = n
}

// Done returns how many records have a decision or a DLQ record, and a
// channel closed on the next change.
func (s *Summary) Done() (int, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.decisions + s.dlq, s.changed
}

// Report is the JSON form of a summary (written by --summary-json).
type Report struct {
	EventsIn      int                `json:"events_in"`
	Decisions     int                `json:"decisions"`
	DLQ           int                `json:"dlq"`
	AuditRecords  int                `json:"audit_records"`
	Attempts      int                `json:"sampling_attempts"`
	ByPath        map[string]int     `json:"by_path"`
	ByOutcome     map[string]int     `json:"by_outcome"`
	ByType        map[string]int     `json:"by_type"`
	ByDLQReason   map[string]int     `json:"by_dlq_reason"`
	ByFallback    map[string]int     `json:"by_fallback_reason"`
	DurationS     float64            `json:"duration_s"`
	RecordsPerS   float64            `json:"records_per_s"`
	LatencyMS     map[string]float64 `json:"latency_ms"`
	Complete      bool               `json:"complete"`
	AuditComplete bool               `json:"audit_complete"`
	Sampler       string             `json:"sampler"`
}

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
		EventsIn: s.eventsIn, Decisions: s.decisions, DLQ: s.dlq, AuditRecords: s.audit, Attempts: s.attempts,
		ByPath: maps.Clone(s.byPath), ByOutcome: maps.Clone(s.byOutcome), ByType: maps.Clone(s.byType),
		ByDLQReason: maps.Clone(s.byDLQ), ByFallback: maps.Clone(s.byReason),
		DurationS: dur, LatencyMS: map[string]float64{}, Sampler: sampler,
	}
	if dur > 0 {
		r.RecordsPerS = float64(s.decisions+s.dlq) / dur
	}
	for _, path := range []string{pipeline.PathRule, pipeline.PathSampled, pipeline.PathCache, pipeline.PathFallback} {
		lat := slices.Clone(s.latency[path])
		slices.Sort(lat)
		r.LatencyMS[path+"_p50"] = ms(percentile(lat, 0.50))
		r.LatencyMS[path+"_p99"] = ms(percentile(lat, 0.99))
	}
	r.Complete = s.eventsIn == s.decisions+s.dlq
	r.AuditComplete = s.audit == s.decisions+s.attempts
	return r
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// WriteTable prints the report for people.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "events in\t%d\n", r.EventsIn)
	fmt.Fprintf(tw, "decisions\t%d\n", r.Decisions)
	fmt.Fprintf(tw, "dead-lettered\t%d\n", r.DLQ)
	fmt.Fprintf(tw, "audit records\t%d (%d decisions + %d sampling attempts)\n", r.AuditRecords, r.Decisions, r.Attempts)
	fmt.Fprintf(tw, "duration\t%.2f s (%.0f records/s)\n", r.DurationS, r.RecordsPerS)
	fmt.Fprintf(tw, "ambiguous events decided by\t%s\n", r.Sampler)
	writeCounts(tw, "by path", r.ByPath, r.Decisions)
	writeCounts(tw, "by type", r.ByType, r.Decisions)
	writeCounts(tw, "by outcome", r.ByOutcome, r.Decisions)
	writeCounts(tw, "fallback reason", r.ByFallback, r.Decisions)
	writeCounts(tw, "DLQ reason", r.ByDLQReason, r.DLQ)
	fmt.Fprintln(tw, "latency (produce → decision acked)\tp50 ms\tp99 ms")
	for _, path := range []string{pipeline.PathRule, pipeline.PathSampled, pipeline.PathCache, pipeline.PathFallback} {
		if r.ByPath[path] > 0 {
			fmt.Fprintf(tw, "  %s\t%.1f\t%.1f\n", path, r.LatencyMS[path+"_p50"], r.LatencyMS[path+"_p99"])
		}
	}
	check := "OK: every event has a decision or a DLQ record; every decision and sampling attempt an audit record"
	if !r.Complete || !r.AuditComplete {
		check = "INCOMPLETE: events_in != decisions + dlq or audit_records != decisions + sampling_attempts"
	}
	fmt.Fprintf(tw, "check\t%s\n", check)
	return tw.Flush()
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
