package kafkatest_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/triage-dev/triage/internal/kafkatest"
)

// TestBrokersCreateTopics: on every broker of Brokers, CreateTopics makes
// the topics with the partitions asked for.
func TestBrokersCreateTopics(t *testing.T) {
	for _, b := range kafkatest.Brokers() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			brokers := b.Seeds(t)
			topics := []string{kafkatest.Name(t, "a"), kafkatest.Name(t, "b")}
			kafkatest.CreateTopics(t, brokers, 5, topics...)
			ctx, cancel := context.WithTimeout(t.Context(), kafkatest.Wait)
			defer cancel()
			details, err := kadm.NewClient(kafkatest.Client(t, brokers)).ListTopics(ctx, topics...)
			if err != nil {
				t.Fatal(err)
			}
			for _, topic := range topics {
				d, ok := details[topic]
				if !ok || d.Err != nil || len(d.Partitions) != 5 {
					t.Errorf("%s: listed %v (err %v), %d partitions; want 5", topic, ok, d.Err, len(d.Partitions))
				}
			}
		})
	}
}
