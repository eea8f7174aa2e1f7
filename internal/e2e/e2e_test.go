package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/internal/kafkatest"
	"github.com/triage-dev/triage/internal/loadgen"
	"github.com/triage-dev/triage/internal/testrun"
	"github.com/triage-dev/triage/pipeline"
)

const wait = 2 * time.Minute

// maskKey is the consumers' --mask-key: the default policy pseudonymises
// ids with a keyed hash, and every run of one test must share the key.
const maskKey = "e2e test mask key, not a secret, 32+ bytes long"

// binaries are the project's binaries, built once per test binary.
func binaries(t testing.TB) map[string]string { return testrun.Binaries(t) }

func start(t testing.TB, name, bin string, args ...string) *testrun.Proc {
	t.Helper()
	return testrun.StartProc(t, name, bin, args...)
}

// kafka is one test's Kafka: the broker and the topics and group it made for
// itself. Every run names them with kafkatest.Name, since the Apache Kafka
// broker outlives the test and other test binaries use it at the same time.
type kafka struct {
	brokers                                                 []string
	group                                                   string
	transactions, documents, decisions, audit, dlq, sinkDLQ string
	sampling                                                string
}

// newKafka starts (kfake) or joins (Apache Kafka) the broker and creates the
// run's topics, four partitions each.
func newKafka(t testing.TB, b kafkatest.Broker) kafka {
	t.Helper()
	k := kafka{
		brokers:      b.Seeds(t),
		group:        kafkatest.Name(t, "group"),
		transactions: kafkatest.Name(t, loadgen.DefaultTransactionsTopic),
		documents:    kafkatest.Name(t, loadgen.DefaultDocumentsTopic),
		decisions:    kafkatest.Name(t, loadgen.DefaultDecisionsTopic),
		audit:        kafkatest.Name(t, "audit"),
		dlq:          kafkatest.Name(t, loadgen.DefaultDLQTopic),
		sinkDLQ:      kafkatest.Name(t, "audit.dlq"),
		sampling:     kafkatest.Name(t, "sampling.requests"),
	}
	kafkatest.CreateTopics(t, k.brokers, 4, k.transactions, k.documents, k.decisions, k.audit, k.dlq, k.sinkDLQ, k.sampling)
	return k
}

// consumerArgs are the consumer's flags for the run's broker, group and
// topics, followed by extra.
func (k kafka) consumerArgs(extra ...string) []string {
	return append([]string{"--brokers", strings.Join(k.brokers, ","), "--group", k.group,
		"--topics", k.transactions + "," + k.documents, "--decisions-topic", k.decisions,
		"--audit-topic", k.audit, "--dlq-topic", k.dlq, "--sink-dlq-topic", k.sinkDLQ, "--sampling-topic", k.sampling}, extra...)
}

// generator returns a generator of cfg's events for the run's input topics.
func (k kafka) generator(t testing.TB, cfg loadgen.Config) *loadgen.Generator {
	t.Helper()
	cfg.Topics = map[string]string{loadgen.TypeTransaction: k.transactions, loadgen.TypeDocument: k.documents}
	gen, err := loadgen.NewGenerator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return gen
}

// poll waits for cond, checking every 50 ms: the processes give the test
// nothing to block on but their output topics.
func poll(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testrun.Until(t, what, wait, 50*time.Millisecond, cond)
}

// decidedOnce reads the run's decisions and fails the test unless each of n
// events, by (tenant_id, event_id), has exactly one.
func decidedOnce(t *testing.T, k kafka, n int) []pipeline.Decision {
	t.Helper()
	counts := map[string]int{}
	var all []pipeline.Decision
	for _, r := range kafkatest.ReadTopic(t, k.brokers, k.decisions) {
		var d pipeline.Decision
		if err := json.Unmarshal(r.Value, &d); err != nil {
			t.Fatal(err)
		}
		counts[d.TenantID+"/"+d.EventID]++
		all = append(all, d)
	}
	if len(counts) != n {
		t.Fatalf("%d events decided, want %d", len(counts), n)
	}
	for id, c := range counts {
		if c != 1 {
			t.Errorf("event %s decided %d times", id, c)
		}
	}
	return all
}

// TestSamplersJoinAndLeave: a consumer with no sampler of its own serves
// /mcp on loopback; cmd/sampler processes join, one leaves with SIGTERM and
// one is killed while events flow; every event is decided exactly once and
// the ambiguous ones by the samplers, over Streamable HTTP.
func TestSamplersJoinAndLeave(t *testing.T) {
	bin := binaries(t)
	for _, b := range kafkatest.Brokers() {
		t.Run(b.Name, func(t *testing.T) { samplersJoinAndLeave(t, bin, b) })
	}
}

func samplersJoinAndLeave(t *testing.T, bin map[string]string, b kafkatest.Broker) {
	k := newKafka(t, b)
	brokers := k.brokers
	addr := testrun.FreeAddr(t)
	url := "http://" + addr + "/mcp"
	consumer := start(t, "consumer", bin["consumer"], k.consumerArgs("--mask-key", maskKey,
		"--sampler", "none", "--mcp-listen", addr, "--mcp-token", "s3cret", "--queue-wait", "60s",
		"--http-listen", "", "--log-format", "text")...)

	// Events flow for the whole test: 6,000 at 1,500/s, ~15 % ambiguous.
	const n = 6000
	gen := k.generator(t, loadgen.Config{Seed: 11, Ambiguous: map[string]float64{"transaction": 0.12, "document": 0.25}})
	produced := make(chan loadgen.Report, 1)
	go func() {
		cl, err := kgo.NewClient(append(loadgen.ProducerClientOpts(), kgo.SeedBrokers(brokers...))...)
		if err != nil {
			t.Error(err)
			produced <- loadgen.Report{}
			return
		}
		defer cl.Close()
		rep, err := loadgen.Produce(context.Background(), cl, gen, loadgen.ProduceOptions{Events: n, Rate: 1500})
		if err != nil {
			t.Error(err)
		}
		produced <- rep
	}()

	// A reader follows the audit topic and counts sampled decisions.
	var sampledN atomic.Int64
	follow := kafkatest.Client(t, brokers, kgo.ConsumeTopics(k.audit), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fctx, stopFollow := context.WithCancel(context.Background())
	defer stopFollow()
	go func() {
		for fctx.Err() == nil {
			follow.PollFetches(fctx).EachRecord(func(r *kgo.Record) {
				var a audit.Record
				if json.Unmarshal(r.Value, &a) == nil && a.Kind == audit.KindDecision && a.Path == pipeline.PathSampled {
					sampledN.Add(1)
				}
			})
		}
	}()
	sampled := func() int { return int(sampledN.Load()) }
	samplerArgs := func() []string {
		return []string{"--server", url, "--token", "s3cret", "--provider", "offline", "--concurrency", "4",
			"--offline-latency", "20ms", "--log-format", "text", "--wait-ms", "500"}
	}
	a := start(t, "sampler-a", bin["sampler"], samplerArgs()...)
	poll(t, "sampler a to decide", func() bool { return sampled() >= 50 })
	bproc := start(t, "sampler-b", bin["sampler"], samplerArgs()...)
	poll(t, "both samplers to decide", func() bool { return sampled() >= 150 })
	if err := a.Stop(t, syscall.SIGTERM, wait); err != nil {
		t.Fatalf("sampler a after SIGTERM: %v", err)
	}
	poll(t, "sampler b alone to decide", func() bool { return sampled() >= 250 })
	if err := bproc.Stop(t, syscall.SIGKILL, wait); err == nil {
		t.Fatal("sampler b survived SIGKILL")
	}
	start(t, "sampler-c", bin["sampler"], samplerArgs()...)

	rep := <-produced
	if rep.Acked != n {
		t.Fatalf("produced %d of %d", rep.Acked, n)
	}
	waitCommitted(t, k, consumer, n)
	if err := consumer.Stop(t, syscall.SIGTERM, wait); err != nil {
		t.Fatalf("consumer after SIGTERM: %v", err)
	}

	paths := map[string]int{}
	for _, d := range decidedOnce(t, k, n) {
		paths[d.Path]++
		if d.Path == pipeline.PathFallback {
			t.Errorf("event %s fell back (%s): a sampler was always there", d.EventID, d.Reason)
		}
	}
	samplers := map[string]int{}
	for _, r := range kafkatest.ReadTopic(t, brokers, k.audit) {
		var a audit.Record
		if json.Unmarshal(r.Value, &a) == nil && a.Kind == audit.KindSampling {
			samplers[a.Mode+" "+string(a.Status)]++
		}
	}
	t.Logf("decisions by path: %v; sampling attempts: %v", paths, samplers)
	if samplers["pull ok"] == 0 {
		t.Fatal("no successful pull attempt in the audit trail")
	}
}

// TestREADMERemoteSamplers is the README's two-terminal run: the embedded
// demo with no sampler of its own, and samplers in other processes over
// Streamable HTTP: one on 2026-07-28 (client-side multi round-trip), one on
// 2025-11-25 pulling through the server-side middleware, and one legacy
// host that only answers pushed requests.
//
// It runs on the consumer's own embedded broker only: that broker is part of
// what the README shows, and --demo produces to the contract's default topic
// names, which a run on the shared Apache Kafka broker must not use.
func TestREADMERemoteSamplers(t *testing.T) {
	bin := binaries(t)
	addr := testrun.FreeAddr(t)
	summary := filepath.Join(t.TempDir(), "summary.json")
	consumer := start(t, "consumer", bin["consumer"], "--embedded", "--embedded-port", "0", "--demo", "3000",
		"--sampler", "none", "--mcp-listen", addr, "--queue-wait", "30s", "--summary-json", summary,
		"--http-listen", "", "--log-format", "text")
	url := "http://" + addr + "/mcp"
	for _, extra := range [][]string{nil, {"--protocol-version", "2025-11-25"}, {"--push-only"}} {
		start(t, "sampler "+strings.Join(extra, " "), bin["sampler"], append([]string{"--server", url, "--provider", "offline", "--log-format", "text"}, extra...)...)
	}
	if exited, err := consumer.Wait(wait); !exited {
		t.Fatalf("demo did not finish within %s", wait)
	} else if err != nil {
		t.Fatalf("demo exited with %v", err)
	}
	data, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		EventsIn  int            `json:"events_in"`
		Decisions int            `json:"decisions"`
		DLQ       int            `json:"dlq"`
		ByPath    map[string]int `json:"by_path"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	if s.EventsIn != s.Decisions+s.DLQ || s.ByPath["sampled"] == 0 || s.ByPath["fallback"] != 0 {
		t.Fatalf("summary: %s", data)
	}
	t.Logf("sampled %d of %d decisions through remote samplers", s.ByPath["sampled"], s.Decisions)
}
