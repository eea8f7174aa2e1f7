package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/internal/testrun"
	"github.com/triage-dev/triage/pipeline"
)

// gate is a Decider that holds every item until released.
type gate struct{ release chan struct{} }

func (g gate) Decide(ctx context.Context, it pipeline.Item) (pipeline.Verdict, error) {
	select {
	case <-g.release:
		return pipeline.Verdict{Outcome: it.Type.Outcomes[0], Model: "gate"}, nil
	case <-ctx.Done():
		return pipeline.Verdict{}, ctx.Err()
	}
}

// TestQueueFullPausesOnlyTheStalledPartition: with one worker and a queue of
// one, the third ambiguous event of a partition pauses that partition; rule
// decisions on other partitions keep flowing; releasing the decider drains
// everything and resumes fetching.
func TestQueueFullPausesOnlyTheStalledPartition(t *testing.T) {
	brokers := startBroker(t)
	var recs []*kgo.Record
	for i := range 10 {
		r := record("events.transactions", txn(eventID(i, "amb"), 9000, "NG", "NG"))
		r.Key = []byte("one-account") // one partition
		recs = append(recs, r)
	}
	produce(t, brokers, recs)

	g := gate{release: make(chan struct{})}
	res := newResults()
	p, stop := startPipeline(t, pipeline.Config{Brokers: brokers, Group: "bp", Decider: g, Workers: 1, QueueSize: 1, OnResult: res.add})
	waitFor(t, "a paused partition", func() bool { return len(p.Paused()) == 1 })

	var docs []*kgo.Record
	for i := range 50 {
		docs = append(docs, record("events.documents", doc(eventID(i, "clear"), "payslip_v1", "Salary")))
	}
	produce(t, brokers, docs)
	got := res.waitFor(t, 50)
	for _, r := range got[:50] {
		if r.Decision == nil || r.Decision.Path != pipeline.PathRule {
			t.Fatalf("while stalled, got %+v; want only rule decisions of the other topic", r.Decision)
		}
	}
	if paused := p.Paused(); len(paused["events.transactions"]) != 1 {
		t.Fatalf("paused = %v, want one transactions partition", paused)
	}

	close(g.release)
	got = res.waitFor(t, 60)
	sampled := 0
	for _, r := range got {
		if r.Decision != nil && r.Decision.Path == pipeline.PathSampled {
			sampled++
		}
	}
	if sampled != 10 {
		t.Fatalf("%d sampled decisions after release, want 10", sampled)
	}
	waitFor(t, "fetching to resume", func() bool { return len(p.Paused()) == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond; it is a hang guard for state that has no event to
// wait on (the client's pause set).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testrun.Until(t, what, waitTimeout, 10*time.Millisecond, cond)
}
