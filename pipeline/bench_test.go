package pipeline_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/triage-dev/triage/internal/embedded"
	"github.com/triage-dev/triage/internal/kafkatest"
	"github.com/triage-dev/triage/internal/latency"
	"github.com/triage-dev/triage/internal/loadgen"
	"github.com/triage-dev/triage/pipeline"
)

// sleeper is a sampler that takes a fixed time and answers the type's
// first outcome.
type sleeper time.Duration

func (s sleeper) Decide(ctx context.Context, it pipeline.Item) (pipeline.Verdict, error) {
	select {
	case <-time.After(time.Duration(s)):
		return pipeline.Verdict{Outcome: it.Type.Outcomes[0]}, nil
	case <-ctx.Done():
		return pipeline.Verdict{}, ctx.Err()
	}
}

// BenchmarkRulePath measures what a slow sampler and transactions cost
// the rule-decided events, on the embedded broker: b.N events (5 %
// ambiguous) at a steady 1,000/s, end-to-end latency by path (produce
// timestamp to the decision being acknowledged, or with exactly-once to
// its transaction committing, when read_committed readers see it); and the
// same events as a backlog, decided as fast as the pipeline goes. Run it
// with scripts/bench, which prints the table, e.g. -benchtime 5000x.
func BenchmarkRulePath(b *testing.B) {
	for _, delivery := range []string{pipeline.DeliveryExactlyOnce, pipeline.DeliveryAtLeastOnce} {
		for _, sampler := range []time.Duration{0, time.Second} {
			b.Run(fmt.Sprintf("%s/sampler=%s", delivery, sampler), func(b *testing.B) {
				benchRulePath(b, delivery, sampler)
			})
		}
	}
}

func benchRulePath(b *testing.B, delivery string, sampler time.Duration) {
	topics := append([]string{"decisions", "audit", "events.dlq"}, inputTopics...)
	brokers := kafkatest.EmbeddedWith(b, embedded.Config{Partitions: 4, Topics: topics})
	gen, err := loadgen.NewGenerator(loadgen.Config{Seed: 1, Ambiguous: map[string]float64{loadgen.AllTypes: 0.05}})
	if err != nil {
		b.Fatal(err)
	}
	produce := func(rate float64) {
		cl := kafkatest.Client(b, brokers, loadgen.ProducerClientOpts()...)
		rep, err := loadgen.Produce(b.Context(), cl, gen, loadgen.ProduceOptions{Events: b.N, Rate: rate})
		if err != nil || rep.Acked != b.N {
			b.Fatalf("produced %d of %d: %v", rep.Acked, b.N, err)
		}
	}
	// run decides b.N events as group g, calling produce once the member
	// is polling, and returns the latency by path and how long it took.
	run := func(group string, produce func()) (map[string]*latency.Histogram, time.Duration) {
		var mu sync.Mutex
		byPath := map[string]*latency.Histogram{}
		n := 0
		all := make(chan struct{})
		p, err := pipeline.New(pipeline.Config{
			Brokers: brokers, Group: group, Topics: inputTopics, Rules: defaultRules(b),
			Decider: sleeper(sampler), Delivery: delivery, Logger: testLogger(b),
			OnResult: func(r pipeline.Result) {
				mu.Lock()
				defer mu.Unlock()
				if r.Decision != nil {
					if byPath[r.Decision.Path] == nil {
						byPath[r.Decision.Path] = &latency.Histogram{}
					}
					byPath[r.Decision.Path].Record(r.Latency)
				}
				if n++; n == b.N {
					close(all)
				}
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(b.Context())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		<-p.Ready()
		start := time.Now()
		produce()
		select {
		case <-all:
		case <-time.After(5 * time.Minute):
			b.Fatalf("%d of %d results after 5 minutes", n, b.N)
		}
		took := time.Since(start)
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		return byPath, took
	}

	b.ResetTimer()
	byPath, _ := run("steady", func() { produce(1000) })
	// The backlog: the same events once more, all produced before a
	// fresh group starts reading.
	_, took := run("backlog", func() {})
	b.StopTimer()
	rule := byPath[pipeline.PathRule]
	b.ReportMetric(float64(rule.Quantile(0.5).Microseconds())/1000, "rule_p50_ms")
	b.ReportMetric(float64(rule.Quantile(0.99).Microseconds())/1000, "rule_p99_ms")
	if s := byPath[pipeline.PathSampled]; s != nil {
		b.ReportMetric(float64(s.Quantile(0.99).Microseconds())/1000, "sampled_p99_ms")
	}
	b.ReportMetric(float64(b.N)/took.Seconds(), "backlog_events/s")
	b.ReportMetric(0, "ns/op")
}
