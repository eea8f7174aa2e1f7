package pipeline_test

import (
	"context"
	"math/rand/v2"
	"sync"
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

// TestStalledPartitionResumesWhileFetchesRaceTheWorker: with one worker and
// a queue of one, every slot the worker frees must move the stalled event
// into the queue, even when the slot is freed while the poll loop is busy
// with records of another topic. Each round releases one decision while a
// burst of rule-decided documents is being consumed, waits until the burst
// is done (after that nothing else arrives to wake the poll loop), then
// releases the next decision: the stalled event must reach the decider.
// Before the wake goroutine was joined, a goroutine left over from an
// earlier poll could take the worker's signal, and the partition stayed
// paused.
func TestStalledPartitionResumesWhileFetchesRaceTheWorker(t *testing.T) {
	const rounds, burst = 20, 8
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
	res := newResults()
	var mu sync.Mutex
	trigger := "" // the document whose decision releases the decider
	onResult := func(r pipeline.Result) {
		if r.Decision != nil {
			mu.Lock()
			if r.Decision.EventID == trigger {
				s.release <- struct{}{}
			}
			mu.Unlock()
		}
		res.add(r)
	}
	p, stop := startPipeline(t, pipeline.Config{Brokers: brokers, Group: "wake", Decider: s, Workers: 1, QueueSize: 1, OnResult: onResult})
	s.expect(t, 0, "start")
	waitFor(t, "a paused partition", func() bool { return len(p.Paused()) == 1 })

	// Invariant at the start of round r: the worker holds event 2r, the
	// queue holds 2r+1 and 2r+2 is stalled.
	cl := newClient(t, brokers)
	docs := 0
	for r := range rounds {
		i := 2 * r
		mu.Lock()
		trigger = eventID(docs+rand.IntN(burst), "clear")
		mu.Unlock()
		for range burst {
			d := record("events.documents", doc(eventID(docs, "clear"), "payslip_v1", "Salary"))
			if err := cl.ProduceSync(t.Context(), d).FirstErr(); err != nil {
				t.Fatalf("round %d: produce: %v", r, err)
			}
			docs++
		}
		s.expect(t, i+1, "released during the burst")
		res.waitFor(t, docs+i+1)
		s.release <- struct{}{}
		s.expect(t, i+2, "released after the burst (the stalled event)")
	}
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
