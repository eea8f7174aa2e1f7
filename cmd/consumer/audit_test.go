package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage/internal/chtest"
	"github.com/triage-dev/triage/internal/demo"
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
	for _, want := range []string{"== Decisions per minute by path and outcome", "== Audit trail of one event", "== Top rules by hits"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the demo's output has no %q:\n%s", want, stdout)
		}
	}
	conn := chtest.Open(t, dsn)
	var decisions, auditRows uint64
	if err := conn.QueryRow(t.Context(), "SELECT (SELECT uniqExact(event_id) FROM decisions), (SELECT uniqExact(audit_id) FROM audit)").Scan(&decisions, &auditRows); err != nil {
		t.Fatal(err)
	}
	if decisions != uint64(s.Decisions) || auditRows != uint64(s.AuditRecords) {
		t.Fatalf("ClickHouse has %d decisions and %d audit records; the demo made %d and %d", decisions, auditRows, s.Decisions, s.AuditRecords)
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
