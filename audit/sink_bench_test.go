package audit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/internal/kafkatest"
)

// BenchmarkSinkConsume is the sink end to end, as consumer runs it
// in-process or as consumer sink: a new group of Sink.Run reads an audit
// topic of -sink-rows records (benchRecords' JSON, keyed by chain as the
// pipeline keys them) on Apache Kafka (scripts/kafka) and stores them in
// ClickHouse, BatchSize the sub-benchmark's batch. The clock runs from the
// first fetched batch (the group join is not throughput) until the group
// has committed every offset, which the sink does only after the rows are
// inserted. Each iteration also inserts the same rows, in batches of the
// same size, with a bare row-by-row PrepareBatch/Append/Send of prebuilt
// values: the two alternate (see alternate), so that ClickHouse's
// background merges and the machine's other load weigh on both, and
// sink/raw is the figure to compare.
func BenchmarkSinkConsume(b *testing.B) {
	brokers := kafkatest.ApacheKafka(b)
	for _, n := range benchBatches {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) { benchSinkConsume(b, brokers, n) })
	}
}

func benchSinkConsume(b *testing.B, brokers []string, batchSize int) {
	total := rowsIn(b, batchSize)
	conn, _ := migratedDB(b)
	recs, values := benchRecords(b, total)
	auditTopic, decisionsTopic := kafkatest.Name(b, "audit"), kafkatest.Name(b, "decisions")
	kafkatest.CreateTopics(b, brokers, 4, auditTopic, decisionsTopic)
	krs := make([]*kgo.Record, len(values))
	for i, v := range values {
		krs[i] = &kgo.Record{Topic: auditTopic, Key: []byte(recs[i].Chain), Value: v}
	}
	ctx, cancel := context.WithTimeout(b.Context(), waitTimeout)
	// Batches as large as the pipeline's producer makes them (franz-go's
	// default), not kafkatest.Client's 16 MiB.
	err := kafkatest.Client(b, brokers, kgo.ProducerBatchMaxBytes(1_000_012)).ProduceSync(ctx, krs...).FirstErr()
	cancel()
	if err != nil {
		b.Fatalf("produce: %v", err)
	}

	sink := func() time.Duration {
		return drainSink(b, conn, SinkOptions{
			Brokers: brokers, Group: kafkatest.Name(b, "sink"), BatchSize: batchSize,
			AuditTopic: auditTopic, DecisionsTopic: decisionsTopic, DLQTopic: kafkatest.Name(b, "dlq"),
			Logger: slog.New(slog.DiscardHandler),
		})
	}
	raw := func() time.Duration { return rawInsertBatches(b, conn, values, batchSize) }
	sinkTime, rawTime := alternate(b, conn, sink, raw)
	reportAgainstRaw(b, total, sinkTime, rawTime)
}

// drainSink runs a sink of a new group until it has stored both topics as
// they are, and returns the time from its first fetched batch until then.
func drainSink(b *testing.B, conn driver.Conn, opts SinkOptions) time.Duration {
	b.Helper()
	first := &firstFetch{}
	opts.ClientOpts = append(opts.ClientOpts, kgo.WithHooks(first))
	s, err := NewSink(conn, opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(ctx, waitTimeout)
	err = s.WaitCaughtUp(wctx)
	end := time.Now()
	wcancel()
	cancel()
	if rerr := <-done; err == nil {
		err = rerr
	}
	if err != nil {
		b.Fatalf("sink: %v", err)
	}
	return end.Sub(first.time())
}

// firstFetch records when the client read its first fetched batch.
type firstFetch struct {
	once sync.Once
	at   time.Time
}

func (f *firstFetch) OnFetchBatchRead(kgo.BrokerMetadata, string, int32, kgo.FetchBatchMetrics) {
	f.once.Do(func() { f.at = time.Now() })
}

// time is when the first batch was read; only after WaitCaughtUp, whose
// commits follow that read.
func (f *firstFetch) time() time.Time {
	f.once.Do(func() {}) // orders the read after the hook's write
	return f.at
}
