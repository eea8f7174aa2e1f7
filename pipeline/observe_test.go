package pipeline_test

import (
	"slices"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
)

// TestObserve: Config.Observe sees every valid event, decided by a rule or
// sent to sampling, with its type and decoded fields, and no record that
// is not a valid event.
func TestObserve(t *testing.T) {
	brokers := startBroker(t)
	recs := []*kgo.Record{
		record("events.transactions", txn("ok-1", 25, "DE", "DE")),   // rule
		record("events.transactions", txn("ok-2", 9000, "NG", "NG")), // sampled
		{Topic: "events.transactions", Key: []byte("bad"), Value: []byte(`{"event_id":`)},
		record("events.transactions", txn("ok-3", 25, "KP", "KP")), // rule
	}
	produce(t, brokers, recs)

	var (
		mu   sync.Mutex
		seen []string
	)
	observe := func(typ *rules.Type, ev pipeline.Event) {
		mu.Lock()
		defer mu.Unlock()
		if typ.Name != ev.Type || ev.Key != ev.Fields["account_id"] || ev.TenantID != "t1" {
			t.Errorf("observed %s with type %s: %+v", ev.ID, typ.Name, ev)
		}
		seen = append(seen, ev.ID)
	}
	res := newResults()
	stop := runPipeline(t, pipeline.Config{Brokers: brokers, Group: "observe", OnResult: res.add, Observe: observe})
	res.waitFor(t, len(recs))
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(seen)
	if want := []string{"ok-1", "ok-2", "ok-3"}; !slices.Equal(seen, want) {
		t.Errorf("observed %v, want %v", seen, want)
	}
}
