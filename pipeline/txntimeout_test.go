package pipeline_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
)

// TestTransactionTimeoutAborts: a transaction the broker aborts on its
// timeout (the poll loop held up past it, as a slow read of a new
// partition's committed state can) fails the records produced after it
// with INVALID_PRODUCER_EPOCH. The member aborts, recovers its producer and
// processes the transaction's events again (restarting its session when
// the producer cannot recover), instead of exiting: each event
// ends with exactly one decision, read read_committed.
func TestTransactionTimeoutAborts(t *testing.T) {
	brokers := startBroker(t)
	const n = 40
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = record("events.transactions", txn(fmt.Sprintf("tt-%d", i), 25, "DE", "DE"))
	}
	produce(t, brokers, recs)

	// The tenth event holds the poll loop past the transaction timeout,
	// once, with the first nine decided in the open transaction.
	var once sync.Once
	var seen atomic.Int32 // Observe runs on the partitions' goroutines
	observe := func(_ *rules.Type, _ pipeline.Event) {
		if seen.Add(1) == 10 {
			once.Do(func() { time.Sleep(2500 * time.Millisecond) })
		}
	}
	reg := prometheus.NewRegistry()
	metrics, err := pipeline.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	res := newResults()
	stop := runPipeline(t, pipeline.Config{Brokers: brokers, Group: "txn-timeout", OnResult: res.add, Observe: observe,
		TransactionTimeout: time.Second, CommitInterval: 100 * time.Millisecond, MaxPollRecords: n, Metrics: metrics})
	res.waitFor(t, n)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	aborted := counterValue(t, reg, "triage_transactions_total", "result", "aborted")
	restarts := counterValue(t, reg, "triage_consumer_session_restarts_total", "", "")
	if aborted+restarts < 1 {
		t.Fatalf("no transaction aborted and no session restarted: the broker's timeout did not end the open transaction, so the test did not exercise recovery")
	}
	t.Logf("%v transactions aborted, %v sessions restarted", aborted, restarts)
	counts := map[string]int{}
	for _, r := range readTopic(t, brokers, "decisions") {
		counts[decodeDecision(t, r).EventID]++
	}
	for i := range n {
		if id := fmt.Sprintf("tt-%d", i); counts[id] != 1 {
			t.Errorf("event %s has %d decisions, want 1", id, counts[id])
		}
	}
}

// counterValue is the value of the counter name with the label set to
// value in reg (of the unlabelled counter when label is empty), 0 when it
// has none.
func counterValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if label == "" {
				return m.GetCounter().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
