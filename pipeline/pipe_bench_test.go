package pipeline_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/internal/kafkatest"
	"github.com/triage-dev/triage/internal/latency"
	"github.com/triage-dev/triage/internal/loadgen"
	"github.com/triage-dev/triage/pipeline"
)

// BenchmarkPipe holds the rule path against its limit on the shared Apache
// Kafka broker (scripts/kafka): a plain franz-go consume → produce of the
// same records with two outputs per record (the decision and the audit
// record's sizes: the record's value to each), produced asynchronously and
// committed by the group's autocommit, the least a pipeline can do. Both
// read b.N rule-decided events as a backlog (records/s), then the same
// events produced at steady rates (end-to-end latency, produce timestamp to
// the last output's acknowledgement). The ratios are what to read; run it
// with scripts/bench pipe.
func BenchmarkPipe(b *testing.B) {
	brokers := kafkatest.ApacheKafka(b)
	n := max(b.N, 1000)
	in := []string{kafkatest.Name(b, "tx"), kafkatest.Name(b, "doc")}
	out := []string{kafkatest.Name(b, "decisions"), kafkatest.Name(b, "audit"), kafkatest.Name(b, "dlq")}
	kafkatest.CreateTopics(b, brokers, 4, append(in, out...)...)
	gen, err := loadgen.NewGenerator(loadgen.Config{Seed: 5, Ambiguous: map[string]float64{loadgen.AllTypes: 0},
		Topics: map[string]string{loadgen.TypeTransaction: in[0], loadgen.TypeDocument: in[1]}})
	if err != nil {
		b.Fatal(err)
	}
	cl := kafkatest.Client(b, brokers, loadgen.ProducerClientOpts()...)
	produce := func(events int, rate float64) {
		rep, err := loadgen.Produce(b.Context(), cl, gen, loadgen.ProduceOptions{Events: events, Rate: rate})
		if err != nil || rep.Acked != events {
			b.Fatalf("produced %d of %d: %v", rep.Acked, events, err)
		}
	}
	produce(n, 0)

	// Each run reads the topics from the start with a fresh group until
	// want records are through, returning how long the last want took and
	// the latency of those produced after skip.
	runRaw := func(backlog, extra int, during func()) (time.Duration, *latency.Histogram) {
		return pipe(b, backlog, extra, during, func(ctx context.Context, group string, done func(*kgo.Record)) error {
			return rawPipe(ctx, brokers, group, in, out[:2], done)
		})
	}
	runRules := func(delivery string) func(int, int, func()) (time.Duration, *latency.Histogram) {
		return func(backlog, extra int, during func()) (time.Duration, *latency.Histogram) {
			return pipe(b, backlog, extra, during, func(ctx context.Context, group string, done func(*kgo.Record)) error {
				p, err := pipeline.New(pipeline.Config{
					Brokers: brokers, Group: group, Topics: in, DecisionsTopic: out[0], AuditTopic: out[1], DLQTopic: out[2],
					Rules: defaultRules(b), Delivery: delivery, Logger: testLogger(b),
					OnResult: func(r pipeline.Result) {
						done(&kgo.Record{Timestamp: time.Now().Add(-r.Latency)})
					},
				})
				if err != nil {
					return err
				}
				return p.Run(ctx)
			})
		}
	}
	runs := []struct {
		name string
		run  func(int, int, func()) (time.Duration, *latency.Histogram)
	}{
		{"raw", runRaw},
		{"rules_at_least_once", runRules(pipeline.DeliveryAtLeastOnce)},
		{"rules_exactly_once", runRules(pipeline.DeliveryExactlyOnce)},
	}
	b.ResetTimer()
	rate, cpu := map[string]float64{}, map[string]float64{}
	for _, r := range runs {
		before := cpuTime(b)
		took, _ := r.run(n, 0, nil)
		rate[r.name] = float64(n) / took.Seconds()
		cpu[r.name] = float64((cpuTime(b) - before).Microseconds()) / float64(n)
	}
	steady := map[string]map[int]*latency.Histogram{}
	total := n
	for _, eps := range []int{2000, 5000, 10000} {
		events := eps * 5
		for _, r := range runs {
			if steady[r.name] == nil {
				steady[r.name] = map[int]*latency.Histogram{}
			}
			// The backlog goes first (not measured), then events at eps.
			_, h := r.run(total, events, func() { produce(events, float64(eps)) })
			steady[r.name][eps] = h
			total += events
		}
	}
	b.StopTimer()
	for _, r := range runs {
		b.ReportMetric(rate[r.name], r.name+"_rec/s")
		b.ReportMetric(cpu[r.name], r.name+"_cpu_us/rec")
		if r.name != "raw" {
			b.ReportMetric(rate[r.name]/rate["raw"], r.name+"_ratio")
		}
		for eps, h := range steady[r.name] {
			b.ReportMetric(float64(h.Quantile(0.5).Microseconds())/1000, fmt.Sprintf("%s_%dk_p50_ms", r.name, eps/1000))
			b.ReportMetric(float64(h.Quantile(0.99).Microseconds())/1000, fmt.Sprintf("%s_%dk_p99_ms", r.name, eps/1000))
		}
	}
	b.ReportMetric(0, "ns/op")
}

// pipe runs one consumer (start) as a fresh group over the input topics:
// it reads the backlog, then, when during is not nil, runs it (it produces
// extra records) and waits for those too. The duration is the backlog's
// (from its first record done) without during, the extra records' with it;
// the latency histogram is the extra records'.
func pipe(b *testing.B, backlog, extra int, during func(), start func(ctx context.Context, group string, done func(*kgo.Record)) error) (time.Duration, *latency.Histogram) {
	b.Helper()
	var (
		mu        sync.Mutex
		h         latency.Histogram
		count     atomic.Int64
		measuring atomic.Bool
		first     atomic.Int64 // unix nanoseconds of the first record done
		caught    = make(chan struct{})
		all       = make(chan struct{})
	)
	done := func(r *kgo.Record) {
		if measuring.Load() {
			mu.Lock()
			h.Record(time.Since(r.Timestamp))
			mu.Unlock()
		}
		switch count.Add(1) {
		case 1:
			first.Store(time.Now().UnixNano())
		case int64(backlog):
			close(caught)
		case int64(backlog + extra):
			if extra > 0 {
				close(all)
			}
		}
	}
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- start(ctx, kafkatest.Name(b, "g"), done) }()
	wait := func(ch chan struct{}, what string) {
		select {
		case <-ch:
		case err := <-errc:
			b.Fatalf("%s: the consumer ended: %v", what, err)
		case <-time.After(5 * time.Minute):
			b.Fatalf("%s: %d of %d after 5 minutes", what, count.Load(), backlog+extra)
		}
	}
	wait(caught, "backlog")
	// From the first record through, not from the start: joining the group
	// is not the pipe's speed.
	took := time.Since(time.Unix(0, first.Load()))
	if during != nil {
		measuring.Store(true)
		began := time.Now()
		during()
		wait(all, "steady records")
		took = time.Since(began)
	}
	cancel()
	if err := <-errc; err != nil && ctx.Err() == nil {
		b.Fatal(err)
	}
	return took, &h
}

// rawPipe is the limit the rule path is held against: consume the topics as
// group, produce each record's value to both outputs asynchronously (keyed
// as it was), and call done once both are acknowledged. Offsets are
// autocommitted: nothing here is exactly-once, or audited, or decided.
func rawPipe(ctx context.Context, brokers []string, group string, topics, outputs []string, done func(*kgo.Record)) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fetches := cl.PollRecords(ctx, 1000)
		if ctx.Err() != nil {
			return nil
		}
		if err := fetches.Err0(); err != nil {
			return err
		}
		fetches.EachRecord(func(in *kgo.Record) {
			var pending atomic.Int32
			pending.Store(int32(len(outputs)))
			for _, topic := range outputs {
				cl.Produce(ctx, &kgo.Record{Topic: topic, Key: in.Key, Value: in.Value}, func(_ *kgo.Record, err error) {
					if err == nil && pending.Add(-1) == 0 {
						done(in)
					}
				})
			}
		})
	}
}

// cpuTime is the CPU time this process has used so far (user and
// system): the pipe's own cost per record, without the broker's.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
