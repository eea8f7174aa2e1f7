package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/internal/chtest"
	"github.com/triage-dev/triage/internal/demo"
	"github.com/triage-dev/triage/internal/embedded"
	"github.com/triage-dev/triage/internal/kafkatest"
	"github.com/triage-dev/triage/internal/testrun"
)

// captureStdout runs f with os.Stdout going to a buffer.
func captureStdout(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	orig := os.Stdout
	os.Stdout = w
	defer func() { os.Stdout = orig }()
	out := make(chan string)
	go func() {
		var b bytes.Buffer
		_, _ = io.Copy(&b, r)
		out <- b.String()
	}()
	f()
	w.Close()
	return <-out
}

// TestDemoClickHouse runs the demo with --clickhouse: the sink runs in the
// process, the report at the end counts every decision, and audit verify
// passes, then fails naming the row once one is edited.
func TestDemoClickHouse(t *testing.T) {
	server := chtest.Server(t)
	admin := chtest.Open(t, server)
	db := chtest.FreshDatabase(t, admin)
	u, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + db
	dsn := u.String()

	summary := filepath.Join(t.TempDir(), "summary.json")
	var code int
	stdout := captureStdout(t, func() {
		code = run(context.Background(), []string{
			"--embedded", "--embedded-port", "0", "--demo", "2000", "--demo-bad", "0.01",
			"--summary-json", summary, "--http-listen", "", "--mcp-listen", "", "--log-level", "warn",
			"--clickhouse", dsn,
		})
	})
	if code != 0 {
		t.Fatalf("exit code %d\n%s", code, stdout)
	}
	data, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	var s demo.Report
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"== Decisions per minute by path and outcome", "== Audit trail of one event", "== Top rules by hits",
		"== LLM controls by type", "== Tool calls inside sampling", "== LLM tokens by tenant, model and risk tier",
		"LLM requests saved by the cache", "tool calls inside sampling"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the demo's output has no %q:\n%s", want, stdout)
		}
	}
	conn := chtest.Open(t, dsn)
	var decisions, auditRows uint64
	if err := conn.QueryRow(t.Context(), "SELECT (SELECT uniqExact(tenant_id, event_id) FROM decisions), (SELECT uniqExact(audit_id) FROM audit)").Scan(&decisions, &auditRows); err != nil {
		t.Fatal(err)
	}
	if decisions != uint64(s.Decisions) || auditRows != uint64(s.AuditRecords) {
		t.Fatalf("ClickHouse has %d decisions and %d audit records; the demo made %d and %d", decisions, auditRows, s.Decisions, s.AuditRecords)
	}
	// The controls reach storage as the summary counted them: cached
	// decisions, tool calls (the shipped policy offers document_metadata to
	// every sampled document), and tiers on the sampled decisions.
	var cached, toolCalls, tiered uint64
	if err := conn.QueryRow(t.Context(), `SELECT
		(SELECT uniqExactIf(tenant_id, event_id, path = 'cache') FROM decisions),
		(SELECT uniqExactIf(audit_id, kind = 'tool_call') FROM audit),
		(SELECT uniqExactIf(tenant_id, event_id, tier != '') FROM decisions WHERE path = 'sampled')`).Scan(&cached, &toolCalls, &tiered); err != nil {
		t.Fatal(err)
	}
	calls := 0
	for _, n := range s.ToolCalls {
		calls += n
	}
	if cached != uint64(s.ByPath["cache"]) || toolCalls != uint64(calls) || toolCalls == 0 || tiered != uint64(s.ByPath["sampled"]) {
		t.Errorf("ClickHouse has %d cached decisions, %d tool calls, %d sampled decisions with a tier; the demo made %d, %d and %d",
			cached, toolCalls, tiered, s.ByPath["cache"], calls, s.ByPath["sampled"])
	}

	var out, errOut bytes.Buffer
	if code, _ := subcommand(t.Context(), []string{"audit", "verify", "--clickhouse", dsn}, &out, &errOut); code != 0 {
		t.Fatalf("verify of an intact table: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "0 breaks") {
		t.Errorf("verify: %s", out.String())
	}

	var victim string
	if err := conn.QueryRow(t.Context(), "SELECT audit_id FROM audit WHERE kind = 'decision' ORDER BY chain, seq LIMIT 1").Scan(&victim); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(t.Context(), "ALTER TABLE audit UPDATE reason = 'nothing to see' WHERE audit_id = ?", victim); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for tick := time.NewTicker(50 * time.Millisecond); ; <-tick.C {
		var pending uint64
		if err := conn.QueryRow(t.Context(), "SELECT count() FROM system.mutations WHERE database = ? AND is_done = 0", db).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the mutation did not finish within a minute")
		}
	}
	out.Reset()
	if code, _ := subcommand(t.Context(), []string{"audit", "verify", "--clickhouse", dsn}, &out, &errOut); code != 1 {
		t.Fatalf("verify of an edited table: exit %d, want 1\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "audit_id="+victim+` problem="edited"`) || !strings.Contains(out.String(), "1 break") {
		t.Errorf("verify does not name the edited row %s:\n%s", victim, out.String())
	}

	out.Reset()
	if code, _ := subcommand(t.Context(), []string{"report", "--clickhouse", dsn, "--event-id", "no-such-event", "--spike-threshold", "0"}, &out, &errOut); code != 0 {
		t.Fatalf("report: exit %d\n%s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "event_id=no-such-event)\n(no rows)") || !strings.Contains(out.String(), "threshold=0") {
		t.Errorf("report:\n%s", out.String())
	}
}

func TestSubcommandUsage(t *testing.T) {
	for _, args := range [][]string{
		{"audit"}, {"audit", "frobnicate"}, {"audit", "verify"}, {"report", "--bogus"},
		{"report", "--clickhouse", "clickhouse://x", "extra"}, {"sink", "--brokers", "x"},
		{"sink", "--clickhouse", "clickhouse://x", "--embedded"},
	} {
		t.Setenv("TRIAGE_CLICKHOUSE", "")
		var out, errOut bytes.Buffer
		code, ok := subcommand(context.Background(), args, &out, &errOut)
		if !ok || code != 2 {
			t.Errorf("%q: exit %d (subcommand %v), want 2", args, code, ok)
		}
	}
	if _, ok := subcommand(context.Background(), []string{"--demo", "1"}, io.Discard, io.Discard); ok {
		t.Error("flags were taken for a subcommand")
	}
}

// TestVerifyReconciles runs the demo against a broker that outlives it,
// with the sink in-process, then verifies with reconciliation against the
// group's committed offsets: the intact table verifies clean; once a whole
// segment of one chain and the tail of another are deleted, the chains
// still verify, and reconciliation names both offset ranges and exits 1.
func TestVerifyReconciles(t *testing.T) {
	server := chtest.Server(t)
	db := chtest.FreshDatabase(t, chtest.Open(t, server))
	dsn := withDatabase(t, server, db)
	brokers := strings.Join(kafkatest.EmbeddedWith(t, embedded.Config{Partitions: 3, Topics: []string{"events.transactions", "events.documents", "decisions", "audit", "events.dlq", "audit.dlq"}}), ",")

	keyFile, otherKey := filepath.Join(t.TempDir(), "audit.key"), filepath.Join(t.TempDir(), "other.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("a", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(otherKey, []byte(strings.Repeat("b", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	var code int
	stdout := captureStdout(t, func() {
		code = run(context.Background(), []string{
			"--brokers", brokers, "--group", "reconciled", "--mask-key", strings.Repeat("k", 32),
			"--demo", "600", "--demo-bad", "0.05", "--audit-key-file", keyFile,
			"--http-listen", "", "--mcp-listen", "", "--log-level", "warn", "--clickhouse", dsn,
		})
	})
	if code != 0 {
		t.Fatalf("exit code %d\n%s", code, stdout)
	}
	conn := chtest.Open(t, dsn)
	var deadLetters uint64
	if err := conn.QueryRow(t.Context(), "SELECT uniqExact(audit_id) FROM audit WHERE kind = 'dead_letter'").Scan(&deadLetters); err != nil {
		t.Fatal(err)
	}
	if deadLetters == 0 {
		t.Fatal("no dead_letter audit records stored")
	}

	verify := func(args ...string) (int, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		code, _ := subcommand(t.Context(), append([]string{"audit", "verify", "--clickhouse", dsn}, args...), &out, &errOut)
		t.Logf("verify %q: exit %d\n%s%s", args, code, out.String(), errOut.String())
		return code, out.String()
	}
	if code, out := verify(); code != 0 || !strings.Contains(out, "reconciliation not done") {
		t.Fatalf("verify without --brokers: exit %d\n%s", code, out)
	}
	code, out := verify("--brokers", brokers, "--group", "reconciled")
	if code != 0 || !strings.Contains(out, "0 breaks") || !strings.Contains(out, " 0 without a terminal audit record, 0 decided twice") {
		t.Fatalf("verify of an intact table with reconciliation: exit %d\n%s", code, out)
	}
	// The checkpoints carry the key's signatures: they check with it, and
	// with another key every one of them is a break.
	if code, out := verify("--audit-key-file", keyFile); code != 0 || !strings.Contains(out, "0 breaks") || !strings.Contains(out, "checkpoint signatures checked") {
		t.Fatalf("verify with the signing key: exit %d\n%s", code, out)
	}
	var checkpoints uint64
	if err := conn.QueryRow(t.Context(), "SELECT uniqExact(audit_id) FROM audit WHERE kind = 'checkpoint'").Scan(&checkpoints); err != nil {
		t.Fatal(err)
	}
	if code, out := verify("--audit-key-file", otherKey); code != 1 || checkpoints == 0 ||
		strings.Count(out, `problem="bad signature"`) != int(checkpoints) {
		t.Fatalf("verify with another key: exit %d, want 1 and %d bad signatures\n%s", code, checkpoints, out)
	}
	if code, _ := verify("--brokers", brokers, "--group", "no-such-group"); code != 1 {
		t.Errorf("verify against a group without commits: exit %d, want 1", code)
	}

	// The first segment of one chain goes whole, and the last five rows of
	// another's last segment.
	type segment struct {
		chain, segment string
		offsets        [2]int64
	}
	var segs []segment
	rows, err := conn.Query(t.Context(), `SELECT chain, segment, min(offset), max(offset) FROM audit
		WHERE kind IN ('decision', 'dead_letter') GROUP BY chain, segment ORDER BY chain, min(offset)`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s segment
		if err := rows.Scan(&s.chain, &s.segment, &s.offsets[0], &s.offsets[1]); err != nil {
			t.Fatal(err)
		}
		segs = append(segs, s)
	}
	rows.Close()
	if len(segs) < 2 || segs[0].chain == segs[len(segs)-1].chain {
		t.Fatalf("want segments of two chains at least: %+v", segs)
	}
	whole, tail := segs[0], segs[len(segs)-1]
	// The tail's seqs follow decision order, not offset order (a sampled
	// event is decided after the rule-decided ones behind it), so the
	// offsets cut are collected rather than assumed contiguous.
	var cutSeq int64
	var cut []int64
	rows, err = conn.Query(t.Context(), `SELECT seq, offset FROM audit WHERE chain = ? AND segment = ? AND kind IN ('decision', 'dead_letter')
		ORDER BY seq DESC LIMIT 5`, tail.chain, tail.segment)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var off int64
		if err := rows.Scan(&cutSeq, &off); err != nil {
			t.Fatal(err)
		}
		cut = append(cut, off)
	}
	rows.Close()
	slices.Sort(cut)
	if err := conn.Exec(t.Context(), "ALTER TABLE audit DELETE WHERE chain = ? AND segment = ?", whole.chain, whole.segment); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(t.Context(), "ALTER TABLE audit DELETE WHERE chain = ? AND segment = ? AND seq >= ?", tail.chain, tail.segment, cutSeq); err != nil {
		t.Fatal(err)
	}
	awaitMutations(t, conn, db)

	if code, out := verify(); code != 0 {
		t.Fatalf("the chains alone should not see a deleted segment or a cut tail: exit %d\n%s", code, out)
	}
	code, out = verify("--brokers", brokers, "--group", "reconciled")
	if code != 1 {
		t.Fatalf("verify with reconciliation after the deletes: exit %d, want 1\n%s", code, out)
	}
	want := []audit.Discrepancy{{Chain: whole.chain, From: whole.offsets[0], To: whole.offsets[1], Problem: audit.ProblemMissing}}
	for _, off := range cut {
		if last := &want[len(want)-1]; last.Chain == tail.chain && last.To == off-1 {
			last.To = off
		} else {
			want = append(want, audit.Discrepancy{Chain: tail.chain, From: off, To: off, Problem: audit.ProblemMissing})
		}
	}
	for _, d := range want {
		if !strings.Contains(out, "MISSING "+d.String()+"\n") {
			t.Errorf("verify does not say %q", "MISSING "+d.String())
		}
	}
	if !strings.Contains(out, fmt.Sprintf(" %d without a terminal audit record", whole.offsets[1]-whole.offsets[0]+1+int64(len(cut)))) {
		t.Errorf("verify counts other missing offsets than the deleted ones")
	}
}

// awaitMutations waits until every mutation of db is done.
func awaitMutations(t *testing.T, conn driver.Conn, db string) {
	t.Helper()
	testrun.Until(t, "the mutations", time.Minute, 50*time.Millisecond, func() bool {
		var pending uint64
		if err := conn.QueryRow(t.Context(), "SELECT count() FROM system.mutations WHERE database = ? AND is_done = 0", db).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		return pending == 0
	})
}
