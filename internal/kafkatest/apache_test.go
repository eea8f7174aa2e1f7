package kafkatest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/internal/kafka"
	"github.com/triage-dev/triage/internal/kafkatest"
)

func produce(ctx context.Context, t *testing.T, cl *kgo.Client, topic, prefix string, n int) {
	t.Helper()
	var rs []*kgo.Record
	for i := range n {
		rs = append(rs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "%s%d", prefix, i)})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

func TestApacheKafkaGroupConsume(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.ApacheKafka(t)
	ctx, cancel := context.WithTimeout(t.Context(), kafkatest.Wait)
	defer cancel()
	adm := kadm.NewClient(kafkatest.Client(t, brokers))

	topic, group := kafkatest.Name(t, "topic"), kafkatest.Name(t, "group")
	kafkatest.CreateTopics(t, brokers, 3, topic)
	const n = 30
	produce(ctx, t, kafkatest.Client(t, brokers), topic, "v", n)

	cl := kafkatest.Client(t, brokers, kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	seen := map[string]bool{}
	for len(seen) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(seen), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	committed, end, err := kafka.CommittedAndEnd(ctx, adm, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	if committed != n || end != n {
		t.Fatalf("group %s: committed %d, end %d; want %d and %d", group, committed, end, n, n)
	}
}

// TestApacheKafkaGroupTransactSession runs the consume-transform-produce
// loop the pipeline relies on against the real broker: a GroupTransactSession
// consumes its input with read_committed, produces its output and commits the
// group's offsets in one transaction; a read_committed consumer sees the
// output, and not the records of a transaction aborted before it.
func TestApacheKafkaGroupTransactSession(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.ApacheKafka(t)
	ctx, cancel := context.WithTimeout(t.Context(), kafkatest.Wait)
	defer cancel()
	adm := kadm.NewClient(kafkatest.Client(t, brokers))

	in, out, group := kafkatest.Name(t, "in"), kafkatest.Name(t, "out"), kafkatest.Name(t, "group")
	kafkatest.CreateTopics(t, brokers, 3, in, out)
	const n = 5
	produce(ctx, t, kafkatest.Client(t, brokers), in, "in", n)

	// An aborted transaction on the output topic first: read_committed must
	// skip its records.
	aborter := kafkatest.Client(t, brokers, kgo.TransactionalID(kafkatest.Name(t, "aborter")))
	if err := aborter.BeginTransaction(); err != nil {
		t.Fatalf("begin: %v", err)
	}
	produce(ctx, t, aborter, out, "aborted", n)
	if err := aborter.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatalf("abort: %v", err)
	}

	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(brokers...),
		kgo.TransactionalID(kafkatest.Name(t, "txn")),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	for done := 0; done < n; {
		fs := sess.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("transformed %d of %d records: %v", done, n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			t.Fatalf("begin: %v", err)
		}
		var outs []*kgo.Record
		for _, r := range recs {
			outs = append(outs, &kgo.Record{Topic: out, Key: r.Key, Value: append([]byte("out:"), r.Value...)})
		}
		if err := sess.ProduceSync(ctx, outs...).FirstErr(); err != nil {
			t.Fatalf("produce in the transaction: %v", err)
		}
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil {
			t.Fatalf("end: %v", err)
		}
		if committed {
			done += len(recs)
		}
	}

	// EndTxn returns once the commit is decided; the markers that make the
	// group's offsets visible are written after it.
	for {
		committed, end, err := kafka.CommittedAndEnd(ctx, adm, group, in)
		if err != nil {
			t.Fatal(err)
		}
		if committed == n && end == n {
			break
		}
		if ctx.Err() != nil || committed > n || end != n {
			t.Fatalf("group %s on %s: committed %d, end %d; want %d and %d", group, in, committed, end, n, n)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The output holds both transactions' records; read_committed sees the
	// committed ones only. The abort ended before the commit began, so on
	// every partition its records come first: by the time the committed
	// records are all read, an aborted one would have been seen.
	if got := consume(ctx, t, brokers, out, kgo.ReadUncommitted(), 2*n); len(got) != 2*n {
		t.Fatalf("%s read uncommitted: %v, want %d records (aborted and committed)", out, got, 2*n)
	}
	seen := consume(ctx, t, brokers, out, kgo.ReadCommitted(), n)
	for v := range seen {
		if !strings.HasPrefix(v, "out:in") {
			t.Errorf("read_committed consumer got %q", v)
		}
	}
	for i := range n {
		if want := fmt.Sprintf("out:in%d", i); !seen[want] {
			t.Errorf("read_committed consumer did not see %q (saw %v)", want, seen)
		}
	}
}

// consume reads topic from the start with the isolation level until it has
// seen n distinct values, and returns them.
func consume(ctx context.Context, t *testing.T, brokers []string, topic string, level kgo.IsolationLevel, n int) map[string]bool {
	t.Helper()
	cl := kafkatest.Client(t, brokers, kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(level))
	seen := map[string]bool{}
	for len(seen) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("%s: %d of %d records (%v): %v", topic, len(seen), n, seen, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	return seen
}
