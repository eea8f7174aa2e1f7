package chaos_test

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/triage-dev/triage/internal/chaos"
	"github.com/triage-dev/triage/internal/chtest"
	"github.com/triage-dev/triage/internal/kafkatest"
	"github.com/triage-dev/triage/internal/testrun"
)

// TestChaos runs the harness on each broker: 20,000 events at 450/s
// through two consumer processes and a sampler process (50 ms per answer),
// five consumer SIGKILLs (a third of them taking the sampler along), and on
// Apache Kafka a broker restart midway, with a transactional id per
// consumer slot that its restarts keep. Nothing may be lost, decided twice,
// left without an audit record, decided outside its type's outcomes or
// unmatched, and no process may exit on its own. On kfake the consumers
// also run the ClickHouse sink and sign checkpoints: the audit table must
// hold unbroken, correctly signed chains and exactly one decision or dead
// letter per source offset.
func TestChaos(t *testing.T) {
	bin := testrun.Binaries(t)
	for _, b := range kafkatest.Brokers() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			var brokers []string
			var faults []chaos.Fault
			var clickhouse, stableIDs bool
			switch b.Name {
			case "apache":
				// The suite's broker is shared by test packages running in
				// parallel: restart a private one instead.
				var restart func(context.Context) error
				brokers, restart = privateKafka(t)
				faults = append(faults, chaos.Fault{Name: "broker restart", At: 20 * time.Second, Inject: restart})
				// As a StatefulSet runs them (README): the kfake run
				// keeps the default, a new id per process.
				stableIDs = true
			default:
				// kfake lives in this test process and keeps its log in
				// memory: it cannot restart without losing what it holds,
				// so it gets the kills only. It is the cheaper run, so it
				// carries the ClickHouse verification.
				brokers, clickhouse = b.Seeds(t), true
			}
			runChaos(t, bin, brokers, faults, clickhouse, stableIDs)
		})
	}
}

// runChaos runs the harness on brokers with faults and checks the report;
// with clickhouse, the consumers store the audit trail in a fresh database
// and sign it, and the report's ClickHouse figures are checked too; with
// stableIDs, each consumer slot keeps its transactional id.
func runChaos(t *testing.T, bin map[string]string, brokers []string, faults []chaos.Fault, clickhouse, stableIDs bool) {
	topics := chaos.Topics{
		Transactions: kafkatest.Name(t, "events.transactions"),
		Documents:    kafkatest.Name(t, "events.documents"),
		Decisions:    kafkatest.Name(t, "decisions"),
		Audit:        kafkatest.Name(t, "audit"),
		DLQ:          kafkatest.Name(t, "events.dlq"),
		SinkDLQ:      kafkatest.Name(t, "audit.dlq"),
		Sampling:     kafkatest.Name(t, "sampling.requests"),
		Group:        kafkatest.Name(t, "group"),
	}
	kafkatest.CreateTopics(t, brokers, 4, topics.All()...)
	dir := t.TempDir()
	// CHAOS_DIR keeps the processes' logs after the test, to read why a
	// run failed.
	if d := os.Getenv("CHAOS_DIR"); d != "" {
		dir = filepath.Join(d, strings.ReplaceAll(t.Name(), "/", "_"))
	}
	// CHAOS_SEED replays a failed run's kill schedule (its log prints the
	// seed).
	var seed int64
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("CHAOS_SEED: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Second)
	defer cancel()
	cfg := chaos.Config{
		Consumer: bin["consumer"], Producer: bin["producer"], Sampler: bin["sampler"],
		Brokers: brokers, Topics: topics, Dir: dir,
		Events: 20000, Rate: 450, Bad: 0.01,
		Consumers:      2,
		SamplerLatency: 50 * time.Millisecond,
		Kills:          5, KillMin: 6 * time.Second, KillMax: 9 * time.Second,
		SamplerKillChance:      0.3,
		Seed:                   seed,
		StableTransactionalIDs: stableIDs,
		Faults:                 faults,
		SettleTimeout:          60 * time.Second,
		Logger:                 testLogger(t),
	}
	var ch driver.Conn
	if clickhouse {
		cfg.ClickHouse, ch = freshClickHouse(t)
		cfg.AuditKeyFile = filepath.Join(t.TempDir(), "audit.key")
		if err := os.WriteFile(cfg.AuditKeyFile, []byte(rand.Text()+rand.Text()+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := chaos.Run(ctx, cfg)
	var table strings.Builder
	_ = rep.WriteTable(&table)
	t.Logf("run directory %s\n%s", rep.Dir, table.String())
	if err != nil {
		t.Fatal(err)
	}
	v := rep.Verification
	t.Logf("produced %d, decided %d, dead-lettered %d, duplicated %d after %d kills, %d sampler kills, %d restarts",
		v.Produced, v.Decided, v.DeadLettered, v.Duplicated, rep.Kills, rep.SamplerKills, rep.Restarts)
	if v.Produced != 20000 {
		t.Errorf("produced %d records, want 20000 (producer: %v)", v.Produced, rep.ProducerErr)
	}
	if v.Lost != 0 || v.AuditMissing != 0 || v.Outside != 0 || v.Unmatched != 0 {
		t.Errorf("lost %d, audit missing %d, outside %d, unmatched %d; want none (examples: %v)",
			v.Lost, v.AuditMissing, v.Outside, v.Unmatched, v.Examples)
	}
	if v.Duplicated != 0 {
		t.Errorf("%d source records decided or dead-lettered more than once", v.Duplicated)
	}
	if rep.Kills != 5 {
		t.Errorf("%d kills, want 5", rep.Kills)
	}
	if len(rep.StopErrors) != 0 {
		t.Errorf("stop errors %v: see the logs in %s", rep.StopErrors, rep.Dir)
	}
	if rep.UnexpectedExits != 0 {
		t.Errorf("%d processes exited on their own; their errors:", rep.UnexpectedExits)
		logTails(t, dir)
	}
	for _, f := range rep.Faults {
		if !f.Injected || f.Err != nil {
			t.Errorf("fault %s: injected %v, err %v", f.Name, f.Injected, f.Err)
		}
	}
	if clickhouse {
		checkClickHouse(t, rep, ch)
	}
	if t.Failed() && rep.UnexpectedExits == 0 {
		logTails(t, dir)
	}
}

// checkClickHouse checks the ClickHouse figures of a run with ClickHouse
// and an audit key: every source offset reconciled once, no break, and
// signed checkpoints among the rows.
func checkClickHouse(t *testing.T, rep chaos.Report, conn driver.Conn) {
	t.Helper()
	c := rep.ClickHouse
	if c == nil || !c.Verified {
		t.Errorf("ClickHouse not verified: %+v", c)
		return
	}
	t.Logf("ClickHouse: %d rows in %d chains, %d segments, %d breaks; %d offsets reconciled, %d missing, %d decided twice; sink caught up in %s",
		c.Table.Rows, c.Table.Chains, c.Table.Segments, c.Table.Breaks, c.Reconciled.Offsets, c.Reconciled.Missing, c.Reconciled.Twice, c.CatchUp)
	if !c.CaughtUp || c.Table.Rows == 0 {
		t.Errorf("sink caught up %v, %d rows: want the end of the outputs stored", c.CaughtUp, c.Table.Rows)
	}
	if c.Table.Breaks != 0 || c.Reconciled.Missing != 0 || c.Reconciled.Twice != 0 {
		t.Errorf("%d chain breaks, %d offsets missing, %d decided twice in ClickHouse; want none (examples: %v)",
			c.Table.Breaks, c.Reconciled.Missing, c.Reconciled.Twice, c.Examples)
	}
	// The sources are the event topics' records and the sampling topic's
	// handoffs.
	if produced := int64(rep.Verification.Produced); c.Reconciled.Offsets <= produced {
		t.Errorf("%d source offsets reconciled, want every produced record (%d) and the handoffs", c.Reconciled.Offsets, produced)
	}
	var checkpoints uint64
	if err := conn.QueryRow(t.Context(), "SELECT count() FROM audit WHERE kind = 'checkpoint'").Scan(&checkpoints); err != nil {
		t.Fatal(err)
	}
	if c.KeyID == "" || checkpoints == 0 {
		t.Errorf("signatures checked with key %q over %d checkpoints: want a key and checkpoints", c.KeyID, checkpoints)
	}
}

// freshClickHouse returns the DSN of a fresh database on the test
// ClickHouse server, dropped when the test ends, and a connection to it.
func freshClickHouse(t *testing.T) (string, driver.Conn) {
	t.Helper()
	return chtest.FreshDSN(t)
}

// privateKafka starts an Apache Kafka broker of the test's own (work
// directory and ports), stopped when the test ends, and returns its seeds
// and a restart (stop, then start) for a fault. It never fetches the jars:
// scripts/test has, or the test fails saying what to run.
func privateKafka(t *testing.T) ([]string, func(context.Context) error) {
	t.Helper()
	port := func() string {
		_, p, err := net.SplitHostPort(testrun.FreeAddr(t))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	kafkaDir := filepath.Join(t.TempDir(), "kafka")
	if d := os.Getenv("CHAOS_DIR"); d != "" {
		kafkaDir = filepath.Join(d, "private-kafka") // its server log, kept with the processes'
	}
	env := []string{"KAFKA_NO_INSTALL=1", "KAFKA_DIR=" + kafkaDir,
		"KAFKA_PORT=" + port(), "KAFKA_CONTROLLER_PORT=" + port()}
	script := func(arg string) (string, error) {
		out, stderr, err := testrun.Script("kafka", 3*time.Minute, env, arg)
		if err != nil {
			return "", err
		}
		t.Logf("scripts/kafka %s: %s", arg, stderr)
		return out, nil
	}
	start := time.Now()
	out, err := script("start")
	var ue *testrun.UnavailableError
	switch {
	case errors.As(err, &ue):
		t.Fatalf("a private Apache Kafka broker: %v\nrun ./scripts/test or scripts/kafka start once, which fetch the jars", err)
	case err != nil:
		t.Fatalf("a private Apache Kafka broker: %v", err)
	}
	t.Logf("private Apache Kafka broker %s started in %s", out, time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if _, err := script("stop"); err != nil {
			t.Errorf("stop the private broker: %v", err)
		}
	})
	restart := func(context.Context) error {
		if _, err := script("stop"); err != nil {
			return err
		}
		_, err := script("start")
		return err
	}
	return strings.Split(out, ","), restart
}

// logTails logs, for every process log of a failed run, its starts, exits
// and errors, then its last lines.
func logTails(t *testing.T, dir string) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err != nil {
			t.Error(err)
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		var marks []string
		for _, line := range lines {
			if strings.HasPrefix(line, "=== chaos") || strings.Contains(line, "level=ERROR") {
				marks = append(marks, line)
			}
		}
		t.Logf("--- %s: starts, exits and errors ---\n%s\n--- last lines ---\n%s", filepath.Base(l),
			strings.Join(marks, "\n"), strings.Join(lines[max(0, len(lines)-15):], "\n"))
	}
}

// testLogger sends the harness's progress to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, nil))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
