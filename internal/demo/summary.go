package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/internal/latency"
	"github.com/triage-dev/triage/internal/loadgen"
	"github.com/triage-dev/triage/pipeline"
)

// Summary aggregates pipeline results for one demo run and checks them
// against two observations the pipeline does not make itself: the events
// the generator produced (SetProduced) and the audit records read back from
// the audit topic (ReadAudit). Latencies go into fixed-size histograms; the
// check keeps a few counters per event, so a summary is for bounded runs.
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
	latency   map[string]*latency.Histogram

	// events holds every source record that has a result or was produced,
	// by its position; tracked and auditRead say whether SetProduced and
	// ReadAudit ran.
	events    map[source]*account
	tracked   bool
	accounted int // produced events with at least one result
	auditRead bool
}

// source is an input record's position, which results, dead letters and
// audit records all carry.
type source struct {
	topic     string
	partition int32
	offset    int64
}

// account is what was observed for one source record.
type account struct {
	produced bool // the generator's producer had it acknowledged in this run
	results  int  // decisions and dead letters the pipeline reported
	decided  bool
	attempts int // sampling attempts its decision reported
	// Audit records read back from the audit topic: decision records and
	// the others (sampling attempts and tool calls).
	auditDecisions, auditOthers int
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
		latency:   map[string]*latency.Histogram{},
		events:    map[source]*account{},
	}
}

func (s *Summary) event(pos source) *account {
	a := s.events[pos]
	if a == nil {
		a = &account{}
		s.events[pos] = a
	}
	return a
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
	a := s.event(source{r.Topic, r.Partition, r.Offset})
	a.results++
	if a.results == 1 && a.produced {
		s.accounted++
	}
	if d := r.Decision; d != nil {
		a.decided = true
		a.attempts = r.SamplingAttempts
		s.decisions++
		s.byPath[d.Path]++
		s.byOutcome[d.Outcome]++
		s.byType[d.Type]++
		if d.Path == pipeline.PathFallback {
			s.byReason[d.Reason]++
		}
		h := s.latency[d.Path]
		if h == nil {
			h = &latency.Histogram{}
			s.latency[d.Path] = h
		}
		h.Record(r.Latency)
	} else {
		s.dlq++
		s.byDLQ[r.DLQReason]++
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// SetProduced records the events the generator produced for the run and
// whose produce the broker acknowledged: loadgen.Report.Produced of a run
// with ProduceOptions.Track. Each must end up with exactly one decision or
// dead letter for Report.Complete to hold.
func (s *Summary) SetProduced(sent []loadgen.Sent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tracked = true
	s.eventsIn = len(sent)
	for _, e := range sent {
		a := s.event(source{e.Topic, e.Partition, e.Offset})
		if !a.produced && a.results > 0 {
			s.accounted++
		}
		a.produced = true
	}
}

// Done returns how many of the run's produced events have a decision or a
// dead letter (before SetProduced: how many records do), and a channel
// closed on the next change.
func (s *Summary) Done() (int, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tracked {
		return s.accounted, s.changed
	}
	return s.decisions + s.dlq, s.changed
}

// AddAudit counts one audit record read back from the audit topic. Records
// for source records this run did not produce are ignored.
func (s *Summary) AddAudit(r audit.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.events[source{r.Topic, r.Partition, r.Offset}]
	if a == nil || !a.produced {
		return
	}
	if r.Kind == audit.KindDecision {
		a.auditDecisions++
	} else {
		a.auditOthers++
	}
}

// auditGrace bounds how long ReadAudit waits for a record below the end
// offsets it listed; a transaction marker can hold the last offset of a
// partition, and no record arrives for it.
const auditGrace = 10 * time.Second

// ReadAudit reads the audit topic from the summary's start (NewSummary or
// Restart) through its end offsets at the time of the call, counts each
// record with AddAudit, and marks the audit trail as read back. Call it once
// every event has its result: the pipeline reports an event only after all
// of its audit records are acknowledged, so they lie below those offsets.
func (s *Summary) ReadAudit(ctx context.Context, brokers []string, topic string) error {
	s.mu.Lock()
	// The pipeline's clock may run behind this one; records of earlier runs
	// that the slack lets in match none of this run's events.
	since := s.start.Add(-time.Minute)
	s.mu.Unlock()
	adm, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return fmt.Errorf("demo: read audit: kafka client: %w", err)
	}
	defer adm.Close()
	starts, ends, err := auditRange(ctx, kadm.NewClient(adm), topic, since)
	if err != nil {
		return err
	}
	from := map[int32]kgo.Offset{}
	for p, end := range ends {
		if starts[p] < end {
			from[p] = kgo.NewOffset().At(starts[p])
		} else {
			delete(ends, p)
		}
	}
	if len(ends) > 0 {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}))
		if err != nil {
			return fmt.Errorf("demo: read audit: kafka client: %w", err)
		}
		defer cl.Close()
		if err := s.readAudit(ctx, cl, topic, ends); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auditRead = true
	return nil
}

// auditRange lists, per partition of topic, the first offset written at or
// after since and the end offset.
func auditRange(ctx context.Context, adm *kadm.Client, topic string, since time.Time) (starts, ends map[int32]int64, err error) {
	listed, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("demo: read audit: end offsets of %s: %w", topic, err)
	}
	ends = map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
	listed, err = adm.ListOffsetsAfterMilli(ctx, since.UnixMilli(), topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("demo: read audit: offsets of %s since %s: %w", topic, since.Format(time.RFC3339), err)
	}
	starts = map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) { starts[o.Partition] = o.Offset })
	return starts, ends, nil
}

// readAudit polls cl until it has passed ends in every partition or
// auditGrace passes without a record.
func (s *Summary) readAudit(ctx context.Context, cl *kgo.Client, topic string, ends map[int32]int64) error {
	var firstErr error
	for len(ends) > 0 {
		pctx, cancel := context.WithTimeout(ctx, auditGrace)
		fs := cl.PollFetches(pctx)
		idle := pctx.Err() != nil
		cancel()
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("demo: read audit: %w", err)
		}
		fs.EachError(func(t string, p int32, err error) {
			if firstErr == nil && !errors.Is(err, context.DeadlineExceeded) {
				firstErr = fmt.Errorf("demo: read audit: fetch %s[%d]: %w", t, p, err)
			}
		})
		if firstErr != nil {
			return firstErr
		}
		if idle && fs.NumRecords() == 0 {
			return nil // the rest is markers or gone; the check counts what came
		}
		fs.EachRecord(func(r *kgo.Record) {
			var rec audit.Record
			if err := json.Unmarshal(r.Value, &rec); err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("demo: read audit: %s[%d] offset %d: %w", topic, r.Partition, r.Offset, err)
				}
			} else {
				s.AddAudit(rec)
			}
			if end, ok := ends[r.Partition]; ok && r.Offset >= end-1 {
				delete(ends, r.Partition)
			}
		})
	}
	return firstErr
}

// Report is the JSON form of a summary (written by --summary-json).
type Report struct {
	EventsIn     int                `json:"events_in"`
	Decisions    int                `json:"decisions"`
	DLQ          int                `json:"dlq"`
	AuditRecords int                `json:"audit_records"`
	Attempts     int                `json:"sampling_attempts"`
	ByPath       map[string]int     `json:"by_path"`
	ByOutcome    map[string]int     `json:"by_outcome"`
	ByType       map[string]int     `json:"by_type"`
	ByDLQReason  map[string]int     `json:"by_dlq_reason"`
	ByFallback   map[string]int     `json:"by_fallback_reason"`
	DurationS    float64            `json:"duration_s"`
	RecordsPerS  float64            `json:"records_per_s"`
	LatencyMS    map[string]float64 `json:"latency_ms"`
	// Missing counts produced events with neither a decision nor a dead
	// letter; Duplicates counts results beyond the first for an event.
	Missing    int `json:"missing"`
	Duplicates int `json:"duplicates"`
	// AuditRead counts the audit records of this run's events read back
	// from the audit topic; AuditMismatched counts events whose records
	// there are not one decision record plus one per sampling attempt (none
	// for a dead letter).
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
		r.LatencyMS[path+"_p50"] = ms(s.latency[path].Quantile(0.50))
		r.LatencyMS[path+"_p99"] = ms(s.latency[path].Quantile(0.99))
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
		r.AuditRead += a.auditDecisions + a.auditOthers
		want := 0
		if a.decided {
			want = 1
		}
		if a.auditDecisions != want || a.auditOthers != want*a.attempts {
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
		check = "INCOMPLETE: " + strings.Join(r.Problems, "; ")
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
