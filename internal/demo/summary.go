package demo

import (
	"sync"
	"time"

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
	// decide is the Decider's time by path: what a cache hit costs against
	// a sampled decision.
	decide map[string]*latency.Histogram
	// From the audit topic: tokens by tenant, model and tier, and tool
	// calls by tool and status.
	tokens    map[tokenKey]*tokenCount
	toolCalls map[string]int
	handoffs  int // events the rule stage handed off to the sampling stage

	// events holds every source record that has a result or was produced,
	// by its position; tracked and auditRead say whether SetProduced and
	// ReadAudit ran.
	events map[source]*account
	// byEvent finds a decided event's source record by tenant and event
	// id: the sampling stage's audit records carry the position of the
	// handoff in the sampling topic, not the source's.
	byEvent   map[string]source
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
	dead     bool // the pipeline reported a dead letter for it
	attempts int  // sampling attempts its decision reported
	// Audit records read back from the audit topic: decision records,
	// dead_letter records, handoff records (the rule stage's, when a
	// sampling stage decided the event) and the others (sampling
	// attempts and tool calls).
	auditDecisions, auditDeadLetters, auditHandoffs, auditOthers int
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
		decide:    map[string]*latency.Histogram{},
		tokens:    map[tokenKey]*tokenCount{},
		toolCalls: map[string]int{},
		events:    map[source]*account{},
		byEvent:   map[string]source{},
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
	if r.HandedOff {
		// Not the event's result: the sampling stage's carries it.
		s.handoffs++
		return
	}
	s.attempts += r.SamplingAttempts
	a := s.event(source{r.Topic, r.Partition, r.Offset})
	a.results++
	if a.results == 1 && a.produced {
		s.accounted++
	}
	if d := r.Decision; d != nil {
		s.byEvent[d.TenantID+"/"+d.EventID] = source{r.Topic, r.Partition, r.Offset}
		a.decided = true
		a.attempts = r.SamplingAttempts
		s.decisions++
		s.byPath[d.Path]++
		s.byOutcome[d.Outcome]++
		s.byType[d.Type]++
		if d.Path == pipeline.PathFallback {
			s.byReason[d.Reason]++
		}
		record(s.latency, d.Path, r.Latency)
		switch {
		case r.SharedCache:
			record(s.decide, pathCacheShared, r.DecideTime)
		case d.Path != pipeline.PathRule:
			record(s.decide, d.Path, r.DecideTime)
		}
	} else {
		a.dead = true
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
	if a == nil && r.EventID != "" {
		if pos, ok := s.byEvent[r.TenantID+"/"+r.EventID]; ok {
			a = s.events[pos]
		}
	}
	if a == nil || !a.produced {
		return
	}
	switch r.Kind {
	case audit.KindDecision:
		a.auditDecisions++
	case audit.KindDeadLetter:
		a.auditDeadLetters++
	case audit.KindHandoff:
		a.auditHandoffs++
	default:
		a.auditOthers++
	}
	switch r.Kind {
	case audit.KindSampling:
		model := r.ModelAnswered
		if model == "" {
			model = r.ModelRequested
		}
		k := tokenKey{r.TenantID, model, r.Tier}
		c := s.tokens[k]
		if c == nil {
			c = &tokenCount{}
			s.tokens[k] = c
		}
		c.attempts++
		c.tokens += r.InputTokens + r.OutputTokens
		if r.TokensEstimated {
			c.estimated++
		}
	case audit.KindToolCall:
		s.toolCalls[r.Tool+" "+string(r.Status)]++
	}
}

// pathCacheShared is the decide-time row of cache decisions that waited
// for an identical request in flight, apart from stored hits.
const pathCacheShared = pipeline.PathCache + "_shared"

// tokenKey groups sampling attempts for the tokens table.
type tokenKey struct{ tenant, model, tier string }

type tokenCount struct {
	attempts, estimated int
	tokens              int64
}

func record(hs map[string]*latency.Histogram, path string, d time.Duration) {
	h := hs[path]
	if h == nil {
		h = &latency.Histogram{}
		hs[path] = h
	}
	h.Record(d)
}
