package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/deploy"
	"github.com/triage-dev/triage/internal/chtest"
	"github.com/triage-dev/triage/internal/deadletter"
	"github.com/triage-dev/triage/internal/embedded"
	"github.com/triage-dev/triage/internal/kafkatest"
	"github.com/triage-dev/triage/internal/loadgen"
	"github.com/triage-dev/triage/internal/testrun"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
)

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

func startBroker(t *testing.T) []string {
	t.Helper()
	_, addrs := startCluster(t)
	return addrs
}

// startCluster starts an embedded broker and returns its kfake cluster, for
// tests that watch or delay requests, with its addresses.
func startCluster(t *testing.T) (*kfake.Cluster, []string) {
	t.Helper()
	b, err := embedded.Start(embedded.Config{Partitions: 4, Topics: []string{
		"events.transactions", "events.documents", "decisions", "audit", "events.dlq",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b.Cluster(), b.Addrs()
}

// runSink starts a sink and returns it with a stop function that cancels it
// and returns Run's error.
func runSink(t *testing.T, conn driver.Conn, opts audit.SinkOptions) (*audit.Sink, func() error) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	s, err := audit.NewSink(conn, opts)
	if err != nil {
		t.Fatal(err)
	}
	stop := testrun.Background(t, "sink", audit.WaitTimeout, s.Run)
	return s, stop
}

func waitCaughtUp(t *testing.T, s *audit.Sink) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), audit.WaitTimeout)
	defer cancel()
	if err := s.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
}

// sampler answers every ambiguous event with one sampling attempt, so the
// LLM dashboards have rows.
type sampler struct{}

func (sampler) Decide(_ context.Context, it pipeline.Item) (pipeline.Verdict, error) {
	return pipeline.Verdict{
		Outcome: it.Type.Outcomes[0], Model: "test-model", Reason: "test",
		Attempts: []audit.Record{{
			Kind: audit.KindSampling, Path: pipeline.PathSampled, RuleID: it.Rule.RuleID, Status: audit.StatusOK,
			Mode: "direct", ModelRequested: "test", ModelAnswered: "test-model",
			InputTokens: 100, OutputTokens: 7, LatencyMS: 3.5, At: time.Now(),
		}},
	}, nil
}

// decide runs n generated events through a pipeline and returns its
// results by event_id.
func decide(t *testing.T, brokers []string, n int) map[string]pipeline.Result {
	t.Helper()
	gen, err := loadgen.NewGenerator(loadgen.Config{Seed: 7, Ambiguous: map[string]float64{loadgen.AllTypes: 0.25}})
	if err != nil {
		t.Fatal(err)
	}
	results := map[string]pipeline.Result{}
	for _, r := range runPipeline(t, brokers, n, func(cl *kgo.Client) {
		rep, err := loadgen.Produce(t.Context(), cl, gen, loadgen.ProduceOptions{Events: n})
		if err != nil || rep.Acked != n {
			t.Fatalf("produced %d of %d: %v %s", rep.Acked, n, err, rep.FirstError)
		}
	}) {
		results[r.Decision.EventID] = r
	}
	return results
}

// runPipeline runs a pipeline with the default rules and sampler, calls
// produce with a producing client, and returns the first n results.
func runPipeline(t *testing.T, brokers []string, n int, produce func(*kgo.Client)) []pipeline.Result {
	t.Helper()
	set, err := rules.Parse("default.yaml", rules.Default, rules.WithMaskKey(rules.RandomMaskKey()))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var results []pipeline.Result
	all := make(chan struct{})
	p, err := pipeline.New(pipeline.Config{
		Brokers: brokers, Rules: rules.Static(set), Decider: sampler{}, Logger: testLogger(),
		OnResult: func(r pipeline.Result) {
			mu.Lock()
			defer mu.Unlock()
			results = append(results, r)
			if len(results) == n {
				close(all)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("pipeline: %v", err)
		}
	}()

	produce(kafkatest.Client(t, brokers, loadgen.ProducerClientOpts()...))
	select {
	case <-all:
	case <-time.After(audit.WaitTimeout):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("waited %s for %d decisions, have %d", audit.WaitTimeout, n, len(results))
	}
	mu.Lock()
	defer mu.Unlock()
	return results[:n]
}

// runQuery runs one deploy/ query and returns its rows as column → value.
func runQuery(t *testing.T, conn driver.Conn, name string, values map[string]string) []map[string]string {
	t.Helper()
	return audit.QueryRows(t, conn, name, values)
}

func sumColumn(t *testing.T, rows []map[string]string, col string) int {
	t.Helper()
	total := 0
	for _, r := range rows {
		n, err := strconv.Atoi(r[col])
		if err != nil {
			t.Fatalf("column %s: %v", col, err)
		}
		total += n
	}
	return total
}

func report(t *testing.T, conn driver.Conn, values map[string]string) string {
	t.Helper()
	queries, err := audit.LoadQueries(deploy.Queries, deploy.QueriesDir)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := audit.Report(t.Context(), conn, queries, values, &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestSinkStoresPipelineOutput runs N events through the pipeline into
// ClickHouse: the decisions query counts exactly N, every event has one
// audit trail with its sampling attempts, and a replay of both topics by a
// second sink group changes no query result.
func TestSinkStoresPipelineOutput(t *testing.T) {
	const n = 2000
	conn, _ := audit.MigratedDB(t)
	brokers := startBroker(t)
	results := decide(t, brokers, n)

	reg := prometheus.NewRegistry()
	metrics, err := audit.NewSinkMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	s, stop := runSink(t, conn, audit.SinkOptions{Brokers: brokers, Group: "sink-a", Metrics: metrics})
	waitCaughtUp(t, s)
	if err := stop(); err != nil {
		t.Fatalf("sink: %v", err)
	}

	if got := sumColumn(t, runQuery(t, conn, "01_decisions_per_minute", nil), "decisions"); got != n {
		t.Errorf("decisions per minute add up to %d, want %d", got, n)
	}
	attempts, sampled := 0, map[string]int{}
	for _, r := range results {
		attempts += r.SamplingAttempts
		if r.SamplingAttempts > 0 {
			sampled[r.Decision.Type]++
		}
	}
	if attempts == 0 {
		t.Fatal("no event was sampled; the LLM queries test nothing")
	}
	if got := sumColumn(t, runQuery(t, conn, "03_sampling_latency", nil), "attempts"); got != attempts {
		t.Errorf("sampling latency counts %d attempts, want %d", got, attempts)
	}
	for _, r := range runQuery(t, conn, "02_llm_share", nil) {
		if r["reached_llm"] != strconv.Itoa(sampled[r["type"]]) {
			t.Errorf("type %s: %s reached the LLM, want %d", r["type"], r["reached_llm"], sampled[r["type"]])
		}
	}

	// One trail per event: its decision record and its sampling attempts.
	trails := map[string][2]uint64{}
	rows, err := conn.Query(t.Context(), `SELECT event_id, countIf(kind = 'decision'), countIf(kind = 'sampling_attempt')
		FROM (SELECT event_id, audit_id, any(kind) AS kind FROM audit GROUP BY event_id, audit_id)
		GROUP BY event_id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var dec, att uint64
		if err := rows.Scan(&id, &dec, &att); err != nil {
			t.Fatal(err)
		}
		trails[id] = [2]uint64{dec, att}
	}
	rows.Close()
	if len(trails) != n {
		t.Errorf("%d events have an audit trail, want %d", len(trails), n)
	}
	var indexed, stored uint64
	if err := conn.QueryRow(t.Context(), `SELECT (SELECT uniqExact(event_id, audit_id) FROM audit_by_event),
		(SELECT uniqExact(event_id, audit_id) FROM audit)`).Scan(&indexed, &stored); err != nil || indexed != stored {
		t.Errorf("audit_by_event indexes %d audit rows of %d (%v)", indexed, stored, err)
	}
	var example string
	for id, r := range results {
		if got, want := trails[id], [2]uint64{1, uint64(r.SamplingAttempts)}; got != want {
			t.Errorf("event %s: trail has %d decisions and %d attempts, want %v", id, got[0], got[1], want)
		}
		if r.SamplingAttempts > 0 {
			example = id
		}
	}
	trail := runQuery(t, conn, "08_event_trail", map[string]string{"event_id": example})
	if len(trail) != 2 || trail[0]["kind"] != "sampling_attempt" || trail[1]["kind"] != "decision" {
		t.Errorf("trail of %s: %v", example, trail)
	}

	// The replay: a second group reads both topics from the start into the
	// same tables.
	values := map[string]string{"event_id": example, "threshold": "0"}
	before := report(t, conn, values)
	reg2 := prometheus.NewRegistry()
	metrics2, err := audit.NewSinkMetrics(reg2)
	if err != nil {
		t.Fatal(err)
	}
	replay, stopReplay := runSink(t, conn, audit.SinkOptions{Brokers: brokers, Group: "sink-replay", Metrics: metrics2})
	waitCaughtUp(t, replay)
	if err := stopReplay(); err != nil {
		t.Fatalf("replaying sink: %v", err)
	}
	if got, want := gauge(t, reg2, "triage_sink_rows_inserted_total"), gauge(t, reg, "triage_sink_rows_inserted_total"); got != want || got < n {
		t.Fatalf("the replay inserted %v rows, the first run %v", got, want)
	}
	if after := report(t, conn, values); after != before {
		t.Errorf("the replay changed the report:\nbefore\n%s\nafter\n%s", before, after)
	}
	t.Logf("report:\n%s", before)
}

// gauge sums the samples of a metric family.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return total
}

// produceAudit writes recs to the audit topic keyed by chain, and a decision
// for each, as the pipeline would.
func produceAudit(t *testing.T, brokers []string, recs []audit.Record) {
	t.Helper()
	var krs []*kgo.Record
	for _, r := range recs {
		a, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		d, err := json.Marshal(pipeline.Decision{EventID: r.EventID, Type: r.Type, TenantID: r.TenantID, Key: r.Key,
			Outcome: r.Outcome, Path: r.Path, RuleID: r.RuleID, LatencyMS: r.LatencyMS, DecidedAt: r.At})
		if err != nil {
			t.Fatal(err)
		}
		krs = append(krs, &kgo.Record{Topic: "audit", Key: []byte(r.Chain), Value: a},
			&kgo.Record{Topic: "decisions", Key: []byte(r.Key), Value: d})
	}
	ctx, cancel := context.WithTimeout(context.Background(), audit.WaitTimeout)
	defer cancel()
	if err := kafkatest.Client(t, brokers).ProduceSync(ctx, krs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func countStored(conn driver.Conn) (auditRows, decisions uint64, err error) {
	err = conn.QueryRow(context.Background(),
		"SELECT (SELECT uniqExact(audit_id) FROM audit), (SELECT uniqExact(tenant_id, event_id) FROM decisions)").Scan(&auditRows, &decisions)
	return auditRows, decisions, err
}

// TestSinkSurvivesClickHouseOutage stops ClickHouse for 30 s while records
// keep arriving: the sink pauses, retries, and stores everything once the
// server is back; the chains verify.
func TestSinkSurvivesClickHouseOutage(t *testing.T) {
	ch := chtest.Dedicated(t)
	dsn := audit.WithDatabase(t, ch.DSN(), "outage")
	if err := audit.CreateDatabase(t.Context(), dsn); err != nil {
		t.Fatal(err)
	}
	conn, err := audit.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := audit.Migrate(t.Context(), conn); err != nil {
		t.Fatal(err)
	}
	brokers := startBroker(t)
	recs := audit.LinkedRecords(4, 500)
	half := len(recs) / 2

	reg := prometheus.NewRegistry()
	metrics, err := audit.NewSinkMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	s, stop := runSink(t, conn, audit.SinkOptions{
		Brokers: brokers, FlushInterval: 100 * time.Millisecond, MaxBackoff: 2 * time.Second,
		InsertTimeout: 5 * time.Second, Metrics: metrics,
	})
	produceAudit(t, brokers, recs[:half])
	waitCaughtUp(t, s)

	ch.Stop(t)
	produceAudit(t, brokers, recs[half:])
	audit.Await(t, "the sink to pause", func() (bool, error) {
		return gauge(t, reg, "triage_sink_paused") == 1, nil
	})
	outage := time.NewTimer(30 * time.Second) // the scenario's length, not a synchronisation
	<-outage.C
	if got := gauge(t, reg, "triage_sink_insert_errors_total"); got < 2 {
		t.Errorf("%v failed inserts in 30 s: the sink did not retry", got)
	}
	ch.Start(t)

	waitCaughtUp(t, s)
	// The commit that makes the sink caught up comes just before flush
	// resumes fetching, so the gauge is awaited, not read at once.
	audit.Await(t, "fetching to resume after the insert succeeded", func() (bool, error) {
		return gauge(t, reg, "triage_sink_paused") == 0, nil
	})
	auditRows, decisions, err := countStored(conn)
	if err != nil {
		t.Fatal(err)
	}
	if auditRows != uint64(len(recs)) || decisions != uint64(len(recs)) {
		t.Fatalf("stored %d audit rows and %d decisions, want %d of each", auditRows, decisions, len(recs))
	}
	st, err := audit.VerifyTable(t.Context(), conn, nil, func(b audit.Break) { t.Errorf("break: %+v", b) })
	if err != nil || st.Rows < int64(len(recs)) {
		t.Fatalf("verify: %+v, %v", st, err)
	}
	if err := stop(); err != nil {
		t.Fatalf("sink: %v", err)
	}
}

// TestSinkDeadLettersBadRecords: records that cannot be stored go to the
// sink's DLQ topic with their original key, bytes and headers and headers
// saying why and where from; their offsets are committed with the good
// ones, and not before the broker has acknowledged the dead letters.
func TestSinkDeadLettersBadRecords(t *testing.T) {
	conn, _ := audit.MigratedDB(t)
	cluster, brokers := startCluster(t)
	recs := audit.LinkedRecords(2, 50)
	produceAudit(t, brokers, recs[:50])
	origin := kgo.RecordHeader{Key: "origin", Value: []byte("hand-made")}
	bad := []struct {
		rec    *kgo.Record
		reason string
	}{
		{&kgo.Record{Topic: "audit", Key: []byte("garbage"), Value: []byte("not json"), Headers: []kgo.RecordHeader{origin}}, "invalid_json"},
		{&kgo.Record{Topic: "audit", Value: []byte(`{"kind":"decision"}`)}, "missing_field"}, // no audit_id
		{&kgo.Record{Topic: "audit", Value: []byte(`{"audit_id":"x","at":"1900-01-01T00:00:00Z"}`)}, "out_of_range"},
		{&kgo.Record{Topic: "decisions", Value: []byte(`[1,2,3]`)}, "wrong_type"},
		{&kgo.Record{Topic: "decisions", Value: []byte(`{"outcome":"allow"}`)}, "missing_field"}, // no event_id
	}
	ctx, cancel := context.WithTimeout(context.Background(), audit.WaitTimeout)
	defer cancel()
	for _, b := range bad {
		if err := kafkatest.Client(t, brokers).ProduceSync(ctx, b.rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produceAudit(t, brokers, recs[50:])

	// From here only the sink produces: its dead letters. The first
	// produce waits until the test has looked at the group's commits.
	held, release := make(chan struct{}), make(chan struct{})
	var holdOnce sync.Once
	cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		holdOnce.Do(func() {
			close(held)
			cluster.SleepControl(func() { <-release })
		})
		return nil, nil, false
	})

	reg := prometheus.NewRegistry()
	metrics, err := audit.NewSinkMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	s, stop := runSink(t, conn, audit.SinkOptions{Brokers: brokers, Metrics: metrics, FlushInterval: 50 * time.Millisecond})
	select {
	case <-held:
	case <-time.After(audit.WaitTimeout):
		t.Fatalf("no dead letter produced in %s", audit.WaitTimeout)
	}
	offs, err := kadm.NewClient(kafkatest.Client(t, brokers)).FetchOffsets(ctx, "triage-clickhouse")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		if o, ok := offs.Lookup(b.rec.Topic, b.rec.Partition); ok && o.At > b.rec.Offset {
			t.Errorf("%s/%d committed at %d, past the bad record at %d, before its dead letter was acknowledged",
				b.rec.Topic, b.rec.Partition, o.At, b.rec.Offset)
		}
	}
	close(release)
	waitCaughtUp(t, s) // the bad records' offsets are committed too
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	if got := gauge(t, reg, "triage_sink_bad_records_total"); got != float64(len(bad)) {
		t.Errorf("%v bad records counted, want %d", got, len(bad))
	}
	if got := gauge(t, reg, "triage_sink_dead_letters_total"); got != float64(len(bad)) {
		t.Errorf("%v dead letters counted, want %d", got, len(bad))
	}
	dlq := kafkatest.ReadTopic(t, brokers, "audit.dlq")
	if len(dlq) != len(bad) {
		t.Fatalf("%d dead letters, want %d", len(dlq), len(bad))
	}
	for _, b := range bad {
		var dead *kgo.Record
		for _, d := range dlq {
			if kafkatest.Header(d, deadletter.HeaderTopic) == b.rec.Topic &&
				kafkatest.Header(d, deadletter.HeaderPartition) == strconv.Itoa(int(b.rec.Partition)) &&
				kafkatest.Header(d, deadletter.HeaderOffset) == strconv.FormatInt(b.rec.Offset, 10) {
				dead = d
			}
		}
		switch {
		case dead == nil:
			t.Errorf("no dead letter for %s/%d/%d %q", b.rec.Topic, b.rec.Partition, b.rec.Offset, b.rec.Value)
		case !bytes.Equal(dead.Value, b.rec.Value) || !bytes.Equal(dead.Key, b.rec.Key):
			t.Errorf("dead letter %q/%q, want the original %q/%q", dead.Key, dead.Value, b.rec.Key, b.rec.Value)
		case kafkatest.Header(dead, deadletter.HeaderReason) != b.reason || kafkatest.Header(dead, deadletter.HeaderError) == "":
			t.Errorf("dead letter of %q: reason %q (%s), want %q", b.rec.Value,
				kafkatest.Header(dead, deadletter.HeaderReason), kafkatest.Header(dead, deadletter.HeaderError), b.reason)
		case len(b.rec.Headers) > 0 && kafkatest.Header(dead, origin.Key) != string(origin.Value):
			t.Errorf("dead letter of %q lost the original's headers: %v", b.rec.Value, dead.Headers)
		}
	}
	auditRows, decisions, err := countStored(conn)
	if err != nil {
		t.Fatal(err)
	}
	if auditRows != uint64(len(recs)) || decisions != uint64(len(recs)) {
		t.Fatalf("stored %d audit rows and %d decisions, want %d of each", auditRows, decisions, len(recs))
	}
}

// TestSinkGroupRebalance: a second member joins while records flow; the
// partitions move, both members store records, and everything is stored.
func TestSinkGroupRebalance(t *testing.T) {
	conn, _ := audit.MigratedDB(t)
	brokers := startBroker(t)
	recs := audit.LinkedRecords(8, 1000)
	regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
	var sinks []*audit.Sink
	var stops []func() error
	for _, reg := range regs {
		m, err := audit.NewSinkMetrics(reg)
		if err != nil {
			t.Fatal(err)
		}
		s, stop := runSink(t, conn, audit.SinkOptions{Brokers: brokers, FlushInterval: 50 * time.Millisecond, Metrics: m})
		sinks, stops = append(sinks, s), append(stops, stop)
		if len(sinks) == 1 {
			produceAudit(t, brokers, recs[:100])
			waitCaughtUp(t, s)
		}
	}
	// Records keep coming, 50 at a time, until the newcomer has its share.
	sent := 100
	audit.Await(t, "the second member to consume", func() (bool, error) {
		if sent < len(recs) {
			produceAudit(t, brokers, recs[sent:sent+50])
			sent += 50
		}
		return gauge(t, regs[1], "triage_sink_records_consumed_total") > 0, nil
	})
	produceAudit(t, brokers, recs[sent:])
	waitCaughtUp(t, sinks[0])
	for _, stop := range stops {
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	auditRows, decisions, err := countStored(conn)
	if err != nil {
		t.Fatal(err)
	}
	if auditRows != uint64(len(recs)) || decisions != uint64(len(recs)) {
		t.Fatalf("stored %d audit rows and %d decisions, want %d of each", auditRows, decisions, len(recs))
	}
	t.Logf("consumed: first %v, second %v records (of %d, replays included)",
		gauge(t, regs[0], "triage_sink_records_consumed_total"), gauge(t, regs[1], "triage_sink_records_consumed_total"), 2*len(recs))
}
