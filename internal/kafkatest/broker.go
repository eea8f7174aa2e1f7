package kafkatest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/triage-dev/triage/internal/embedded"
	"github.com/triage-dev/triage/internal/testrun"
)

// Broker is a kind of broker that the integration and fault tests run
// against. Brokers lists them; a test runs once on each:
//
//	for _, b := range kafkatest.Brokers() {
//		t.Run(b.Name, func(t *testing.T) {
//			brokers := b.Seeds(t)
//			kafkatest.CreateTopics(t, brokers, 4, kafkatest.Name(t, "events"))
//			...
//		})
//	}
//
// Seeds may return a broker that other tests and test binaries share, so a
// test names its topics, groups and transactional IDs with Name and creates
// its topics with CreateTopics before any client can auto-create them.
type Broker struct {
	// Name names the subtest: "kfake" or "apache".
	Name string
	// Seeds returns the seed brokers to run the test against.
	Seeds func(t testing.TB) []string
}

// Brokers returns the brokers every integration and fault test runs on: the
// embedded in-process broker (Embedded: franz-go's kfake, a new one per
// test) and the real Apache Kafka broker (ApacheKafka, shared by the run).
func Brokers() []Broker {
	return []Broker{
		{Name: "kfake", Seeds: Embedded},
		{Name: "apache", Seeds: ApacheKafka},
	}
}

// Embedded starts an embedded broker (internal/embedded, the one
// consumer --embedded runs) with no topics, closed when the test ends, and
// returns its addresses.
func Embedded(t testing.TB) []string { return EmbeddedWith(t, embedded.Config{}) }

// EmbeddedWith is Embedded with the broker's configuration: its topics and
// their partitions, created before it answers.
func EmbeddedWith(t testing.TB, cfg embedded.Config) []string {
	t.Helper()
	b, err := embedded.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b.Addrs()
}

// CreateTopics creates the topics with the partitions and replication
// factor 1, returns once the metadata lists them, and deletes them when the test ends so that the shared broker
// does not grow with every run.
func CreateTopics(t testing.TB, brokers []string, partitions int32, topics ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	adm := kadm.NewClient(Client(t, brokers))
	resp, err := adm.CreateTopics(ctx, partitions, 1, nil, topics...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("kafkatest: create topics %v: %v", topics, err)
	}
	// A broker answers CreateTopics before every broker's metadata has the
	// topics (Apache Kafka just after start: UNKNOWN_TOPIC_OR_PARTITION);
	// return only once they can be used.
	testrun.Until(t, fmt.Sprintf("topics %v in the metadata", topics), Wait, 50*time.Millisecond, func() bool {
		details, err := adm.ListTopics(ctx, topics...)
		if err != nil {
			return false
		}
		for _, topic := range topics {
			if d, ok := details[topic]; !ok || d.Err != nil || len(d.Partitions) != int(partitions) {
				return false
			}
		}
		return true
	})
	// Registered after Client's cleanup, so it runs before the client
	// closes; a deletion that fails leaves uniquely named topics behind,
	// which no other test reads.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), Wait)
		defer cancel()
		resp, err := adm.DeleteTopics(ctx, topics...)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Logf("kafkatest: delete topics %v: %v", topics, err)
		}
	})
}
