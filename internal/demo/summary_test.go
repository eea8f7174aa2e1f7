package demo

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/internal/embedded"
	"github.com/triage-dev/triage/internal/kafkatest"
	"github.com/triage-dev/triage/internal/loadgen"
	"github.com/triage-dev/triage/pipeline"
)

// run is a small demo run: three events produced, one decided by a rule,
// one sampled in two attempts, one dead-lettered (with its dead_letter
// audit record).
type run struct {
	sent    []loadgen.Sent
	results []pipeline.Result
	audit   []audit.Record
}

func newRun() run {
	var r run
	for i, id := range []string{"rule-1", "sampled-1", "bad-1"} {
		r.sent = append(r.sent, loadgen.Sent{EventID: id, Topic: "events.transactions", Partition: 1, Offset: int64(10 + i)})
	}
	at := func(i int) pipeline.Result {
		return pipeline.Result{Topic: r.sent[i].Topic, Partition: r.sent[i].Partition, Offset: r.sent[i].Offset, Latency: time.Duration(i+1) * time.Millisecond}
	}
	rule, sampled, bad := at(0), at(1), at(2)
	rule.Decision = &pipeline.Decision{EventID: "rule-1", Type: "transaction", Path: pipeline.PathRule, Outcome: "allow"}
	rule.AuditRecords = 1
	sampled.Decision = &pipeline.Decision{EventID: "sampled-1", Type: "transaction", Path: pipeline.PathSampled, Outcome: "review"}
	sampled.AuditRecords, sampled.SamplingAttempts = 3, 2
	bad.DLQReason, bad.AuditRecords = "invalid_json", 1
	r.results = []pipeline.Result{rule, sampled, bad}
	rec := func(i int, kind audit.Kind) audit.Record {
		return audit.Record{Kind: kind, EventID: r.sent[i].EventID, Topic: r.sent[i].Topic, Partition: r.sent[i].Partition, Offset: r.sent[i].Offset}
	}
	r.audit = []audit.Record{rec(0, audit.KindDecision), rec(1, audit.KindSampling), rec(1, audit.KindSampling), rec(1, audit.KindDecision), rec(2, audit.KindDeadLetter)}
	return r
}

// summarize feeds a run to a new summary, with the audit records as if
// read back.
func (r run) summarize() *Summary {
	s := NewSummary()
	for _, res := range r.results {
		s.Add(res)
	}
	s.SetProduced(r.sent)
	for _, a := range r.audit {
		s.AddAudit(a)
	}
	s.auditRead = true
	return s
}

func table(t *testing.T, r Report) string {
	t.Helper()
	var b strings.Builder
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestReportCompleteRun(t *testing.T) {
	rep := newRun().summarize().Report("test")
	if !rep.Complete || !rep.AuditComplete || len(rep.Problems) != 0 {
		t.Fatalf("complete run reported incomplete: %+v", rep)
	}
	if rep.EventsIn != 3 || rep.Decisions != 2 || rep.DLQ != 1 || rep.AuditRead != 5 || rep.AuditRecords != 5 {
		t.Errorf("counts: %+v", rep)
	}
	if got := rep.LatencyMS["sampled_p50"]; got < 1.99 || got > 2.01 {
		t.Errorf("sampled p50 = %v ms, want 2", got)
	}
	if out := table(t, rep); !strings.Contains(strings.Join(strings.Fields(out), " "), "check OK: every event") {
		t.Errorf("table:\n%s", out)
	}
}

// TestReportIncomplete: each case breaks one thing that the old check, a
// comparison of counts the pipeline reported itself, could not see.
func TestReportIncomplete(t *testing.T) {
	for name, tc := range map[string]struct {
		change            func(*run)
		complete, audited bool
		problem           string
	}{
		"an event lost and another decided twice": {
			// Counts still add up: 3 events in, 2 decisions + 1 DLQ.
			change:   func(r *run) { r.results[0] = r.results[1] },
			complete: false, audited: false, problem: "1 of 3 events have no decision or DLQ record",
		},
		"an event lost": {
			// With its dead_letter audit record: the audit trail agrees.
			change:   func(r *run) { r.results, r.audit = r.results[:2], r.audit[:4] },
			complete: false, audited: true, problem: "1 of 3 events have no decision or DLQ record",
		},
		"a sampling attempt's audit record missing": {
			// The pipeline still reports 3 audit records for the event.
			change:   func(r *run) { r.audit = append(r.audit[:2:2], r.audit[3:]...) },
			complete: true, audited: false, problem: "1 events lack audit records",
		},
		"a decision's audit record missing": {
			change:   func(r *run) { r.audit = r.audit[1:] },
			complete: true, audited: false, problem: "1 events lack audit records",
		},
		"a decision's audit record for a dead letter": {
			change: func(r *run) {
				r.audit = append(r.audit, audit.Record{Kind: audit.KindDecision, Topic: r.sent[2].Topic, Partition: r.sent[2].Partition, Offset: r.sent[2].Offset})
			},
			complete: true, audited: false, problem: "1 events lack audit records, or have extra ones",
		},
		"a dead letter's audit record missing": {
			change:   func(r *run) { r.audit = r.audit[:4] },
			complete: true, audited: false, problem: "1 events lack audit records",
		},
		"a dead letter's audit record twice": {
			change:   func(r *run) { r.audit = append(r.audit, r.audit[4]) },
			complete: true, audited: false, problem: "1 events lack audit records, or have extra ones",
		},
		"a dead_letter audit record for a decided event": {
			change: func(r *run) {
				r.audit = append(r.audit, audit.Record{Kind: audit.KindDeadLetter, Topic: r.sent[0].Topic, Partition: r.sent[0].Partition, Offset: r.sent[0].Offset})
			},
			complete: true, audited: false, problem: "1 events lack audit records, or have extra ones",
		},
	} {
		t.Run(name, func(t *testing.T) {
			r := newRun()
			tc.change(&r)
			rep := r.summarize().Report("test")
			if rep.Complete != tc.complete || rep.AuditComplete != tc.audited {
				t.Errorf("complete %v, audit complete %v; want %v, %v", rep.Complete, rep.AuditComplete, tc.complete, tc.audited)
			}
			if out := table(t, rep); !strings.Contains(out, "INCOMPLETE: ") || !strings.Contains(out, tc.problem) {
				t.Errorf("table does not say %q:\n%s", tc.problem, out)
			}
		})
	}
}

func TestReportIncompleteWithoutObservations(t *testing.T) {
	r := newRun()
	s := NewSummary()
	for _, res := range r.results {
		s.Add(res)
	}
	rep := s.Report("test")
	if rep.Complete || rep.AuditComplete {
		t.Errorf("a summary that saw neither the produced events nor the audit topic says complete: %+v", rep)
	}
	out := table(t, rep)
	for _, want := range []string{"produced events were not tracked", "audit topic was not read back"} {
		if !strings.Contains(out, want) {
			t.Errorf("table does not say %q:\n%s", want, out)
		}
	}
}

func TestDoneCountsProducedEvents(t *testing.T) {
	r := newRun()
	s := NewSummary()
	s.Add(r.results[0])
	s.Add(pipeline.Result{Topic: "events.transactions", Partition: 5, Offset: 1, DLQReason: "invalid_json"}) // not this run's
	if n, _ := s.Done(); n != 2 {
		t.Errorf("before SetProduced: done %d, want every result (2)", n)
	}
	s.SetProduced(r.sent)
	n, changed := s.Done()
	if n != 1 {
		t.Errorf("after SetProduced: done %d, want 1", n)
	}
	s.Add(r.results[1])
	select {
	case <-changed:
	default:
		t.Error("Add did not signal a change")
	}
	if n, _ := s.Done(); n != 2 {
		t.Errorf("done %d, want 2", n)
	}
}

// TestReadAudit reads the audit records back from a broker: only records
// written since the summary started count, and they make the run's audit
// trail complete.
func TestReadAudit(t *testing.T) {
	addrs := kafkatest.EmbeddedWith(t, embedded.Config{Partitions: 3, Topics: []string{"audit"}})
	r := newRun()
	cl := kafkatest.Client(t, addrs)
	write := func(recs []audit.Record, at time.Time) {
		t.Helper()
		for _, a := range recs {
			v, err := json.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: "audit", Key: []byte(a.EventID), Value: v, Timestamp: at}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	s := NewSummary()
	// An earlier run's record for the same position would be an extra one.
	write(r.audit[:1], time.Now().Add(-time.Hour))
	s.Restart()
	write(r.audit, time.Now())
	for _, res := range r.results {
		s.Add(res)
	}
	s.SetProduced(r.sent)
	if err := s.ReadAudit(t.Context(), addrs, "audit"); err != nil {
		t.Fatal(err)
	}
	rep := s.Report("test")
	if !rep.AuditComplete || rep.AuditRead != len(r.audit) {
		t.Fatalf("audit complete %v, read %d, want true, %d: %v", rep.AuditComplete, rep.AuditRead, len(r.audit), rep.Problems)
	}
}
