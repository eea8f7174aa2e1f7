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

// TestAllLLM: with AllLLM, events the rules would decide go to the Decider
// too, under the rule id all_llm; malformed records are still dead
// letters.
func TestAllLLM(t *testing.T) {
	brokers := startBroker(t)
	recs := []*kgo.Record{
		record("events.transactions", txn("ok-1", 25, "DE", "DE")),   // the rules: allow
		record("events.transactions", txn("ok-2", 25, "KP", "KP")),   // the rules: block
		record("events.transactions", txn("ok-3", 9000, "NG", "NG")), // the rules: sample
		{Topic: "events.transactions", Key: []byte("bad"), Value: []byte(`{"event_id":`)},
	}
	produce(t, brokers, recs)
	res := newResults()
	stop := runPipeline(t, pipeline.Config{Brokers: brokers, Group: "all-llm", OnResult: res.add, Decider: sleeper(0), AllLLM: true})
	got := res.waitFor(t, len(recs))
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	sampled, dead := 0, 0
	for _, r := range got {
		switch {
		case r.Decision == nil:
			dead++
		case r.Decision.Path == pipeline.PathSampled && r.Decision.RuleID == pipeline.AllLLMRuleID:
			sampled++
		default:
			t.Errorf("decision %+v: want every event sampled under %s", r.Decision, pipeline.AllLLMRuleID)
		}
	}
	if sampled != 3 || dead != 1 {
		t.Errorf("%d sampled and %d dead letters, want 3 and 1", sampled, dead)
	}
}
