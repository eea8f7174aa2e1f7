package pipeline_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/internal/embedded"
	"github.com/triage-dev/triage/internal/kafka"
	"github.com/triage-dev/triage/internal/kafkatest"
	"github.com/triage-dev/triage/internal/testrun"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
)

// waitTimeout bounds every wait in these tests; it is a hang guard, not a
// performance assertion.
const waitTimeout = 60 * time.Second

var inputTopics = []string{"events.transactions", "events.documents"}

func startBroker(t *testing.T, extraTopics ...string) []string {
	t.Helper()
	topics := append([]string{"decisions", "audit", "events.dlq"}, inputTopics...)
	return kafkatest.EmbeddedWith(t, embedded.Config{Partitions: 4, Topics: append(topics, extraTopics...)})
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func defaultRules(t testing.TB) *rules.Live {
	t.Helper()
	set, err := rules.Parse("default.yaml", rules.Default, rules.WithMaskKey(rules.RandomMaskKey()))
	if err != nil {
		t.Fatal(err)
	}
	return rules.Static(set)
}

// results collects OnResult callbacks and lets a test wait for a count.
type results struct {
	mu      sync.Mutex
	all     []pipeline.Result
	changed chan struct{}
}

func newResults() *results { return &results{changed: make(chan struct{})} }

func (r *results) add(res pipeline.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, res)
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *results) snapshot() ([]pipeline.Result, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]pipeline.Result(nil), r.all...), r.changed
}

func (r *results) waitFor(t *testing.T, n int) []pipeline.Result {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		all, ch := r.snapshot()
		if len(all) >= n {
			return all
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("waited %s for %d results, have %d", waitTimeout, n, len(all))
		}
	}
}

// runPipeline starts a pipeline and returns a stop function that cancels it
// and returns Run's error.
func runPipeline(t *testing.T, cfg pipeline.Config) (stop func() error) {
	t.Helper()
	_, stop = startPipeline(t, cfg)
	return stop
}

// startPipeline is runPipeline that also returns the pipeline.
func startPipeline(t *testing.T, cfg pipeline.Config) (*pipeline.Pipeline, func() error) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.Rules == nil {
		cfg.Rules = defaultRules(t)
	}
	if len(cfg.Topics) == 0 {
		cfg.Topics = inputTopics
	}
	p, err := pipeline.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop := testrun.Background(t, "pipeline", waitTimeout, p.Run)
	return p, stop
}

func newClient(t *testing.T, brokers []string, opts ...kgo.Opt) *kgo.Client {
	return kafkatest.Client(t, brokers, opts...)
}

// produce writes records synchronously and returns them with their offsets.
func produce(t *testing.T, brokers []string, recs []*kgo.Record) []*kgo.Record {
	t.Helper()
	cl := newClient(t, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	return recs
}

func readTopic(t *testing.T, brokers []string, topic string) []*kgo.Record {
	return kafkatest.ReadTopic(t, brokers, topic)
}

func committedAndEnd(t *testing.T, brokers []string, group string, topics ...string) (committed, end int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	committed, end, err := kafka.CommittedAndEnd(ctx, kadm.NewClient(newClient(t, brokers)), group, topics...)
	if err != nil {
		t.Fatal(err)
	}
	return committed, end
}

func decodeDecision(t *testing.T, r *kgo.Record) pipeline.Decision {
	t.Helper()
	var d pipeline.Decision
	if err := json.Unmarshal(r.Value, &d); err != nil {
		t.Fatalf("decision record at %s/%d/%d: %v", r.Topic, r.Partition, r.Offset, err)
	}
	return d
}

func header(r *kgo.Record, key string) string { return kafkatest.Header(r, key) }

func loadDefault() (*rules.Set, error) {
	return rules.Parse("default.yaml", rules.Default, rules.WithMaskKey(rules.RandomMaskKey()))
}
