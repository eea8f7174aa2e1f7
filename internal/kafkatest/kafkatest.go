// Package kafkatest holds the Kafka helpers that triage's tests share:
// reading a topic to its end, comparing a group's commits with the end
// offsets. Tests run them against the embedded (kfake) broker, or against
// the real Apache Kafka broker that ApacheKafka starts with scripts/kafka;
// Brokers lists both, for tests that run on each.
package kafkatest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/internal/kafka"
)

// Wait bounds every wait in these helpers; it is a hang guard, not a
// performance assertion.
const Wait = 90 * time.Second

// Client returns a client closed when the test ends.
func Client(t testing.TB, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ProducerBatchMaxBytes(16 << 20)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// ReadTopic reads a whole topic as a downstream consumer of the
// pipeline's outputs does, read_committed: every record of a transaction
// committed by the time of the call or open then and committed later, none
// of an aborted one.
func ReadTopic(t testing.TB, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	adm := kadm.NewClient(Client(t, brokers))
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	// Wait for the transactions open at call time to end: a member
	// killed mid-transaction leaves its transaction open until the broker
	// aborts it (its transaction timeout), and until then the last stable
	// offset, up to which read_committed readers read, stays behind it.
	high, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var ends kadm.ListedOffsets
	for {
		var open int
		if ends, open, err = kafka.LastStable(ctx, adm, high, topic); err != nil {
			t.Fatal(err)
		}
		if open == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("reading %s: transactions open at the call did not end within %s", topic, Wait)
		case <-time.After(100 * time.Millisecond):
		}
	}
	var out []*kgo.Record
	err = kafka.ReadRange(ctx, []kgo.Opt{kgo.SeedBrokers(brokers...)}, kgo.ReadCommitted(), starts, ends, func(r *kgo.Record) {
		out = append(out, r)
	})
	if err != nil {
		t.Fatalf("reading %s: %v", topic, err)
	}
	return out
}

// ReadJSON reads a whole topic as ReadTopic does and decodes each
// record's value as a T, failing the test on a value that is not one.
func ReadJSON[T any](t testing.TB, brokers []string, topic string) []T {
	t.Helper()
	recs := ReadTopic(t, brokers, topic)
	out := make([]T, len(recs))
	for i, r := range recs {
		if err := json.Unmarshal(r.Value, &out[i]); err != nil {
			t.Fatalf("%s offset %d: %v", topic, r.Offset, err)
		}
	}
	return out
}

// Header returns the value of a record header, or "".
func Header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
