package kafka_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/internal/kafka"
	"github.com/triage-dev/triage/internal/kafkatest"
)

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	l := kafka.Logger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), "sink: kafka: ")
	if l.Level() != kgo.LogLevelWarn {
		t.Errorf("level %v, want warn", l.Level())
	}
	l.Log(kgo.LogLevelError, "fetch failed", "broker", 1)
	l.Log(kgo.LogLevelWarn, "slow", "n", 2)
	out := buf.String()
	for _, want := range []string{`level=ERROR msg="sink: kafka: fetch failed" broker=1`, `level=WARN msg="sink: kafka: slow" n=2`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestNewClientNeedsAMember(t *testing.T) {
	settle := func(context.Context, *kgo.Client, map[string][]int32) {}
	ok := kafka.Member{Brokers: []string{"127.0.0.1:1"}, Group: "g", Topics: []string{"t"}, OnRevoked: settle, OnLost: settle}
	for name, edit := range map[string]func(*kafka.Member){
		"no brokers":   func(m *kafka.Member) { m.Brokers = nil },
		"no group":     func(m *kafka.Member) { m.Group = "" },
		"no topics":    func(m *kafka.Member) { m.Topics = nil },
		"no OnRevoked": func(m *kafka.Member) { m.OnRevoked = nil },
		"no OnLost":    func(m *kafka.Member) { m.OnLost = nil },
	} {
		m := ok
		edit(&m)
		if cl, err := kafka.NewClient(m); err == nil {
			cl.Close()
			t.Errorf("%s: no error", name)
		}
	}
	cl, err := kafka.NewClient(ok)
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()
}

// TestBatchLimitPerTopic runs on Apache Kafka, whose topics refuse a batch
// above max.message.bytes (1 MiB by default). A backlog of small records
// piles up behind the one produce request in flight; with one large batch
// limit for every topic it went out as a batch of several MiB, which the
// audit topic refused (MESSAGE_TOO_LARGE: the pipeline ended). Ordinary
// topics now batch within the broker's default, and a dead-letter topic
// configured for large records still takes a record above it.
func TestBatchLimitPerTopic(t *testing.T) {
	brokers := kafkatest.ApacheKafka(t)
	auditTopic, dlqTopic := kafkatest.Name(t, "audit"), kafkatest.Name(t, "dlq")
	kafkatest.CreateTopics(t, brokers, 1, auditTopic)
	ctx, cancel := context.WithTimeout(context.Background(), kafkatest.Wait)
	defer cancel()
	adm := kadm.NewClient(kafkatest.Client(t, brokers))
	big := "8388608"
	resp, err := adm.CreateTopics(ctx, 1, 1, map[string]*string{"max.message.bytes": &big}, dlqTopic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = adm.DeleteTopics(context.Background(), dlqTopic) })

	cl, err := kafka.NewClient(kafka.Member{
		Brokers: brokers, Group: kafkatest.Name(t, "group"), Topics: []string{auditTopic},
		OnRevoked:        func(context.Context, *kgo.Client, map[string][]int32) {},
		OnLost:           func(context.Context, *kgo.Client, map[string][]int32) {},
		DeadLetterTopics: []string{dlqTopic},
	}, kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	// 4,000 incompressible records of 1 KiB, produced at once: 4 MiB
	// queued behind the first request.
	const n = 4000
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []error
	for i := range n {
		v := make([]byte, 1024)
		_, _ = rand.Read(v)
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Topic: auditTopic, Key: []byte(strconv.Itoa(i)), Value: v}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				failed = append(failed, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d of %d audit records refused, first: %v", len(failed), n, failed[0])
	}

	// A 2 MiB dead letter goes to the topic that allows it.
	large := bytes.Repeat([]byte("x"), 2<<20)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: dlqTopic, Value: large}).FirstErr(); err != nil {
		t.Fatalf("a 2 MiB dead letter: %v", err)
	}
	// The same record to an ordinary topic is refused by the client
	// itself, before any batch can grow past the broker's limit.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: auditTopic, Value: large}).FirstErr(); !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("a 2 MiB audit record: %v, want MESSAGE_TOO_LARGE from the client", err)
	}
}
