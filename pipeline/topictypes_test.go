package pipeline_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/pipeline"
)

// TestTopicTypes: with the types each topic carries configured, an event
// of another type on a topic is dead-lettered as wrong_topic instead of
// being decided; an event of the topic's type is decided as usual.
func TestTopicTypes(t *testing.T) {
	brokers := startBroker(t)
	produce(t, brokers, []*kgo.Record{
		record("events.transactions", doc("stray", "invoice_v2", "Invoice")),
		record("events.transactions", txn("fine", 10, "DE", "DE")),
	})
	res := newResults()
	stop := runPipeline(t, pipeline.Config{Brokers: brokers, Group: "topic-types", OnResult: res.add,
		TopicTypes: map[string][]string{"events.transactions": {"transaction"}, "events.documents": {"document"}}})
	got := res.waitFor(t, 2)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var wrongTopic, transactions int
	for _, r := range got {
		switch {
		case r.DLQReason == pipeline.ReasonWrongTopic:
			wrongTopic++
		case r.Decision != nil && r.Decision.Type == "transaction":
			transactions++
		default:
			t.Errorf("unexpected result %+v", r)
		}
	}
	if wrongTopic != 1 || transactions != 1 {
		t.Errorf("%d dead-lettered as %s and %d transactions decided, want 1 and 1", wrongTopic, pipeline.ReasonWrongTopic, transactions)
	}

	if _, err := pipeline.New(pipeline.Config{Brokers: brokers, Rules: defaultRules(t),
		TopicTypes: map[string][]string{"events.transactions": {"wire_v9"}}}); err == nil {
		t.Error("a topic configured with a type the rules do not define was accepted")
	}
}
