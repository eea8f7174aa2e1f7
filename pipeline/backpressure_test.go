package pipeline_test

import (
	"context"
	"fmt"
	"log/slog"
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

// stepper is a Decider that reports each item it is given and holds it
// until one release is sent for it.
type stepper struct {
	entered chan string // event ids, in the order the items reach Decide
	release chan struct{}
}

func newStepper(n int) *stepper {
	return &stepper{entered: make(chan string, n), release: make(chan struct{}, n)}
}

func (s *stepper) Decide(ctx context.Context, it pipeline.Item) (pipeline.Verdict, error) {
	s.entered <- it.Event.ID
	select {
	case <-s.release:
		return pipeline.Verdict{Outcome: it.Type.Outcomes[0], Model: "stepper"}, nil
	case <-ctx.Done():
		return pipeline.Verdict{}, ctx.Err()
	}
}

// expect waits for the next item to reach the decider and checks it is the
// i-th ambiguous event.
func (s *stepper) expect(t *testing.T, i int, what string) {
	t.Helper()
	select {
	case id := <-s.entered:
		if want := eventID(i, "amb"); id != want {
			t.Fatalf("%s: decider got %s, want %s", what, id, want)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("%s: %s did not reach the decider within %s", what, eventID(i, "amb"), waitTimeout)
	}
}

// onLog is a slog.Handler that calls fn in the goroutine that logs.
type onLog struct {
	slog.Handler
	fn func(slog.Record)
}

func (h onLog) Enabled(context.Context, slog.Level) bool { return true }

func (h onLog) Handle(ctx context.Context, r slog.Record) error {
	h.fn(r)
	return h.Handler.Handle(ctx, r)
}

func (h onLog) WithAttrs(as []slog.Attr) slog.Handler { return onLog{h.Handler.WithAttrs(as), h.fn} }
func (h onLog) WithGroup(name string) slog.Handler    { return onLog{h.Handler.WithGroup(name), h.fn} }

// TestStalledPartitionResumesAfterARacingPoll: with one worker and a queue
// of one, a slot the worker frees while the poll loop is busy must still
// move the stalled event into the queue once nothing else arrives.
//
// Each round sends a burst of documents ending in a malformed record. With
// MaxPollRecords 1 every poll of the burst finds its record already
// fetched and returns at once, so the poll's wake goroutine may not have
// started waiting yet when the poll ends. The malformed record is logged as
// dead-lettered from the poll loop itself, after that poll's retryStalled:
// the log hook then releases one decision and waits until the worker has
// taken the next item off the queue, so the worker's signal comes after
// retryStalled looked and before the next poll starts. Once the burst is
// done nothing else arrives, and the next release must find the stalled
// event in the queue. Before stopping a poll joined its wake goroutine,
// that goroutine could take the signal and the partition stayed paused.
func TestStalledPartitionResumesAfterARacingPoll(t *testing.T) {
	const rounds, burst = 16, 4 // before the fix, most runs failed within two rounds
	brokers := startBroker(t)
	n := 2*rounds + 3
	var amb []*kgo.Record
	for i := range n {
		r := record("events.transactions", txn(eventID(i, "amb"), 9000, "NG", "NG"))
		r.Key = []byte("one-account") // one partition
		amb = append(amb, r)
	}
	produce(t, brokers, amb)

	s := newStepper(n)
	taken := make(chan string, 1) // the item the worker took in a hooked round
	hook := func(r slog.Record) {
		if r.Message != "dead-lettered" {
			return
		}
		s.release <- struct{}{}
		select {
		case id := <-s.entered:
			taken <- id
		case <-time.After(waitTimeout):
			taken <- "none"
		}
	}
	res := newResults()
	p, stop := startPipeline(t, pipeline.Config{
		Brokers: brokers, Group: "wake", Decider: s, Workers: 1, QueueSize: 1, MaxPollRecords: 1,
		OnResult: res.add, Logger: slog.New(onLog{testLogger(t).Handler(), hook}),
	})
	s.expect(t, 0, "start")

	// Once the partition is paused in round r, the worker holds event 2r
	// and the queue 2r+1: a stall means the queue was full, and only the
	// worker, held by the decider, takes from it. The hook's release must
	// not need the poll loop it blocks, so each round waits for the pause.
	docs := 0
	for r := range rounds {
		i := 2 * r
		waitFor(t, fmt.Sprintf("round %d: a paused partition", r), func() bool { return len(p.Paused()) == 1 })
		var recs []*kgo.Record
		for range burst {
			d := record("events.documents", doc(eventID(docs, "clear"), "payslip_v1", "Salary"))
			d.Key = []byte("one-document") // one partition, so one fetch, in order
			recs = append(recs, d)
			docs++
		}
		recs = append(recs, &kgo.Record{Topic: "events.documents", Key: []byte("one-document"), Value: []byte("not json")})
		produce(t, brokers, recs)
		select {
		case id := <-taken:
			if want := eventID(i+1, "amb"); id != want {
				t.Fatalf("round %d: the worker took %s after the release, want %s", r, id, want)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("round %d: the malformed record was not dead-lettered within %s", r, waitTimeout)
		}
		res.waitFor(t, (r+1)*(burst+1)+i+1) // the burst, its dead letter and events 0..i
		s.release <- struct{}{}
		s.expect(t, i+2, fmt.Sprintf("round %d: the stalled event after a worker freed the queue", r))
	}
	for range n - 2*rounds {
		s.release <- struct{}{}
	}
	res.waitFor(t, rounds*(burst+1)+n)
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
