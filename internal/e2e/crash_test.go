package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/audit"
	ikafka "github.com/triage-dev/triage/internal/kafka"
	"github.com/triage-dev/triage/internal/kafkatest"
	"github.com/triage-dev/triage/internal/loadgen"
	"github.com/triage-dev/triage/internal/testrun"
	"github.com/triage-dev/triage/pipeline"
)

// produceEvents writes n generated events (some malformed) to the run's
// input topics.
func produceEvents(t *testing.T, k kafka, n int, seed int64) {
	t.Helper()
	gen := k.generator(t, loadgen.Config{Seed: seed, Bad: 0.02})
	cl, err := kgo.NewClient(append(loadgen.ProducerClientOpts(), kgo.SeedBrokers(k.brokers...))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	rep, err := loadgen.Produce(ctx, cl, gen, loadgen.ProduceOptions{Events: n})
	if err != nil || rep.Acked != n {
		t.Fatalf("produced %d of %d: %v", rep.Acked, n, err)
	}
}

// outputs counts decisions per event id, and distinct dead-lettered source
// records (a DLQ record may repeat after a kill, like a decision).
func outputs(t *testing.T, k kafka) (decided map[string]int, dlq int) {
	t.Helper()
	decided, sources := outputSources(t, k)
	return decided, len(sources)
}

// outputSources counts decisions per event id, and returns the source
// positions ("topic/partition/offset") of the dead-lettered records.
func outputSources(t *testing.T, k kafka) (decided map[string]int, dlq map[string]bool) {
	t.Helper()
	decided = map[string]int{}
	for _, r := range kafkatest.ReadTopic(t, k.brokers, k.decisions) {
		var d pipeline.Decision
		if err := json.Unmarshal(r.Value, &d); err != nil {
			t.Fatal(err)
		}
		decided[d.EventID]++
	}
	sources := map[string]bool{}
	for _, r := range kafkatest.ReadTopic(t, k.brokers, k.dlq) {
		var src []string
		for _, h := range r.Headers {
			switch h.Key {
			case pipeline.HeaderDLQTopic, pipeline.HeaderDLQPartition, pipeline.HeaderDLQOffset:
				src = append(src, string(h.Value))
			}
		}
		sources[strings.Join(src, "/")] = true
	}
	return decided, sources
}

// reportMissing logs, per input partition, the offset ranges of the records
// that have neither a decision nor a dead letter, and the group's committed
// offset and metadata for that partition: what a loss looks like from
// outside.
func reportMissing(t *testing.T, k kafka, decided map[string]int, dlq map[string]bool) {
	t.Helper()
	missing := map[string][]int64{}
	for _, topic := range []string{k.transactions, k.documents} {
		for _, r := range kafkatest.ReadTopic(t, k.brokers, topic) {
			pos := fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)
			var ev struct {
				EventID string `json:"event_id"`
			}
			if json.Unmarshal(r.Value, &ev) == nil && decided[ev.EventID] > 0 || dlq[pos] {
				continue
			}
			tp := fmt.Sprintf("%s/%d", r.Topic, r.Partition)
			missing[tp] = append(missing[tp], r.Offset)
		}
	}
	adm := kadm.NewClient(kafkatest.Client(t, k.brokers))
	committed, err := adm.FetchOffsets(context.Background(), k.group)
	if err != nil {
		t.Logf("fetch committed offsets: %v", err)
	}
	for tp, offs := range missing {
		var ranges []string
		for i := 0; i < len(offs); {
			j := i
			for j+1 < len(offs) && offs[j+1] == offs[j]+1 {
				j++
			}
			ranges = append(ranges, fmt.Sprintf("%d-%d", offs[i], offs[j]))
			i = j + 1
		}
		topic, part, _ := strings.Cut(tp, "/")
		p, _ := strconv.ParseInt(part, 10, 32)
		c, _ := committed.Lookup(topic, int32(p))
		t.Logf("missing in %s: %d records, offsets %s; committed %d metadata %q", tp, len(offs), strings.Join(ranges, ","), c.At, c.Metadata)
	}
}

// waitDecisions waits until the decisions topic holds at least n records.
func waitDecisions(t *testing.T, k kafka, n int64, p *testrun.Proc) {
	t.Helper()
	adm := kadm.NewClient(kafkatest.Client(t, k.brokers))
	poll(t, "decisions", func() bool {
		p.FailIfExited(t)
		ends, err := adm.ListEndOffsets(context.Background(), k.decisions)
		var total int64
		ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
		return err == nil && total >= n
	})
}

// waitCommitted waits until the run's group has committed the end of every
// input partition, and then, for up to wait, until the n events have their
// decisions or dead letters (the sampling stage decides the handed-off
// ones after the rule stage is done): the caller checks what is there.
func waitCommitted(t *testing.T, k kafka, p *testrun.Proc, n int) {
	t.Helper()
	adm := kadm.NewClient(kafkatest.Client(t, k.brokers))
	poll(t, "group "+k.group+" to commit the end of its topics", func() bool {
		p.FailIfExited(t)
		committed, end, err := ikafka.CommittedAndEnd(context.Background(), adm, k.group, k.transactions, k.documents)
		return err == nil && committed == end
	})
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(time.Second) {
		p.FailIfExited(t)
		if decided, dlq := outputs(t, k); len(decided)+dlq >= n {
			return
		}
	}
}

// TestConsumerStopAndKillLoseNothing runs the consumer binary against a
// broker that outlives it, stops it with SIGTERM and kills it with SIGKILL
// mid-run: every event ends with exactly one decision or DLQ record, read
// read_committed.
func TestConsumerStopAndKillLoseNothing(t *testing.T) {
	bin := binaries(t)
	for _, b := range kafkatest.Brokers() {
		t.Run(b.Name, func(t *testing.T) { consumerStopAndKillLoseNothing(t, bin, b) })
	}
}

func consumerStopAndKillLoseNothing(t *testing.T, bin map[string]string, b kafkatest.Broker) {
	k := newKafka(t, b)
	const n = 30000
	produceEvents(t, k, n, 7)
	// The builtin sampler (offline scorer over in-memory MCP) decides the
	// ambiguous events, so that the run also exercises the LLM stage. A
	// session timeout of 6 s, the least Apache Kafka accepts by default
	// (group.min.session.timeout.ms), bounds how long the restart after the
	// SIGKILL waits for the killed member's partitions.
	consumer := func() *testrun.Proc {
		return start(t, "consumer", bin["consumer"], k.consumerArgs("--mask-key", maskKey, "--http-listen", "",
			"--mcp-listen", "", "--sampler", "builtin", "--log-format", "text",
			"--drain-timeout", "20s", "--session-timeout", "6s")...)
	}

	// 1. SIGTERM mid-run: exit 0, nothing decided twice afterwards.
	p := consumer()
	waitDecisions(t, k, 2000, p)
	if err := p.Stop(t, syscall.SIGTERM, wait); err != nil {
		t.Fatalf("after SIGTERM: %v", err)
	}
	decidedAfterTerm, _ := outputs(t, k)

	// 2. SIGKILL mid-run: a restart redoes what was not committed.
	p = consumer()
	waitDecisions(t, k, int64(len(decidedAfterTerm))+2000, p)
	_ = p.Stop(t, syscall.SIGKILL, wait)

	// 3. Run to the end and stop gracefully.
	p = consumer()
	waitCommitted(t, k, p, n)
	if err := p.Stop(t, syscall.SIGTERM, wait); err != nil {
		t.Fatalf("final stop: %v", err)
	}

	decided, sources := outputSources(t, k)
	dlq := len(sources)
	if len(decided)+dlq != n {
		reportMissing(t, k, decided, sources)
		t.Fatalf("%d events decided + %d dead-lettered, want %d", len(decided), dlq, n)
	}
	for id, c := range decidedAfterTerm {
		if c != 1 || decided[id] != 1 {
			t.Errorf("event %s decided before the SIGTERM was decided again (%d times in all)", id, decided[id])
		}
	}
	repeats := 0
	for _, c := range decided {
		repeats += c - 1
	}
	// The kill cut one chain segment per partition short; none may show a
	// break: records of a segment reach the audit topic in order.
	segments := map[string][]audit.Record{}
	for _, r := range kafkatest.ReadTopic(t, k.brokers, k.audit) {
		var a audit.Record
		if err := json.Unmarshal(r.Value, &a); err != nil {
			t.Fatal(err)
		}
		segments[a.Chain+" "+a.Segment] = append(segments[a.Chain+" "+a.Segment], a)
	}
	for name, rows := range segments {
		if breaks := audit.Verify(rows, nil); len(breaks) > 0 {
			t.Errorf("segment %s: %d breaks, first %+v", name, len(breaks), breaks[0])
		}
	}
	t.Logf("%d chain segments verified", len(segments))
	if repeats != 0 {
		t.Errorf("%d of %d events decided more than once: the outputs of a killed member's open transaction must abort, and its committed ones be skipped", repeats, n)
	}
}
