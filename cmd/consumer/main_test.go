package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/triage-dev/triage/internal/demo"
)

// TestDemo runs the README's main command, scaled down, through the same
// wiring as the binary: an embedded broker, the generator and the pipeline.
func TestDemo(t *testing.T) {
	out := filepath.Join(t.TempDir(), "summary.json")
	code := run(context.Background(), []string{
		"--embedded", "--embedded-port", "0", "--demo", "3000", "--demo-bad", "0.02",
		"--summary-json", out, "--http-listen", "", "--log-level", "warn",
	})
	if code != 0 {
		t.Fatalf("exit code %d", code)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// The issue fixes these key names: check them on the raw JSON.
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"events_in", "decisions", "dlq", "audit_records", "by_path", "by_outcome", "duration_s", "latency_ms"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("summary has no %q", k)
		}
	}
	var s demo.Report
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	if s.EventsIn != 3000 || s.EventsIn != s.Decisions+s.DLQ || s.AuditRecords != s.Decisions {
		t.Fatalf("summary does not add up: %s", data)
	}
	if s.ByPath["rule"] == 0 || s.ByPath["fallback"] == 0 || s.DLQ == 0 {
		t.Fatalf("want rule, fallback and DLQ paths all present: %s", data)
	}
	for _, k := range []string{"rule_p50", "rule_p99", "sampled_p50", "sampled_p99"} {
		if _, ok := s.LatencyMS[k]; !ok {
			t.Errorf("latency_ms.%s missing", k)
		}
	}
	if s.LatencyMS["rule_p50"] <= 0 || s.DurationS <= 0 || len(s.ByOutcome) == 0 {
		t.Errorf("empty figures: %s", data)
	}
}

func TestBadFlagExits2(t *testing.T) {
	if code := run(context.Background(), []string{"--workers", "zero"}); code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
}
