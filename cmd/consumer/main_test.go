package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triage-dev/triage/internal/config"
	"github.com/triage-dev/triage/internal/config/configtest"
	"github.com/triage-dev/triage/internal/demo"
)

// TestDemo runs the README's main command, scaled down, through the same
// wiring as the binary: an embedded broker, the generator, the pipeline and
// the builtin MCP sampler; and again with no sampler, where ambiguous events
// get the fallback.
func TestDemo(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		paths []string
	}{
		{"builtin sampler", nil, []string{"rule", "sampled"}},
		{"no sampler", []string{"--sampler", "none", "--queue-wait", "20ms"}, []string{"rule", "fallback"}},
		{"direct", []string{"--llm", "direct", "--provider", "offline"}, []string{"rule", "sampled"}},
	} {
		t.Run(tc.name, func(t *testing.T) { testDemo(t, tc.args, tc.paths) })
	}
}

func testDemo(t *testing.T, extra, paths []string) {
	out := filepath.Join(t.TempDir(), "summary.json")
	code := run(context.Background(), append([]string{
		"--embedded", "--embedded-port", "0", "--demo", "3000", "--demo-bad", "0.02",
		"--summary-json", out, "--http-listen", "", "--mcp-listen", "", "--log-level", "warn",
	}, extra...))
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
	if s.EventsIn != 3000 || s.EventsIn != s.Decisions+s.DLQ || s.AuditRecords != s.Decisions+s.Attempts+s.DLQ+s.Handoffs {
		t.Fatalf("summary does not add up: %s", data)
	}
	for _, p := range paths {
		if s.ByPath[p] == 0 {
			t.Fatalf("want path %s present: %s", p, data)
		}
	}
	if s.DLQ == 0 {
		t.Fatalf("no DLQ records: %s", data)
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

// TestConfigExitCodes runs the binary's entry point with configuration
// from each source; internal/config's tests cover the layering itself.
func TestConfigExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		code int
	}{
		{"help", []string{"--help"}, nil, 0},
		{"sink help", []string{"sink", "-h"}, nil, 0},
		{"report help", []string{"report", "--help"}, nil, 0},
		{"bad flag value", []string{"--workers", "zero"}, nil, 2},
		{"bad env value", nil, map[string]string{"TRIAGE_WORKERS": "zero"}, 2},
		{"unknown key in file", []string{"--config", "FILE:grup: typo\n"}, nil, 2},
		{"bad value in file", []string{"--config", "FILE:workers: 0\n"}, nil, 2},
		{"both mask keys", []string{"--mask-key", "k", "--mask-key-file", "/k"}, nil, 2},
		{"report: unknown key in file", []string{"report", "--config", "FILE:clickhouse: clickhouse://x\nevent: e\n"}, nil, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			configtest.Env(t, tc.env)
			if code := run(context.Background(), configtest.Files(t, tc.args)); code != tc.code {
				t.Fatalf("exit code %d, want %d", code, tc.code)
			}
		})
	}
}

// The hash mask fails closed: off --embedded, a consumer without a mask key
// does not start on rules that hash ids, and a short key is refused; a key
// file is read without its line break.
func TestMaskKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "mask.key")
	if err := os.WriteFile(file, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name    string
		cfg     func(*config.Config)
		keyed   bool
		wantErr string
	}{
		{"none, brokers", func(*config.Config) {}, false, ""},
		{"none, embedded", func(c *config.Config) { c.Embedded = true }, true, ""},
		{"flag", func(c *config.Config) { c.MaskKey = "0123456789abcdef0123456789abcdef" }, true, ""},
		{"file", func(c *config.Config) { c.MaskKeyFile = file }, true, ""},
		{"short", func(c *config.Config) { c.MaskKey = "too short" }, false, "32"},
		{"missing file", func(c *config.Config) { c.MaskKeyFile = file + ".missing" }, false, "mask-key-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			tc.cfg(&cfg)
			key, err := maskKey(cfg, log)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, err = loadRules(context.Background(), "", key, log)
			switch {
			case tc.keyed && err != nil:
				t.Fatalf("default rules with a key: %v", err)
			case !tc.keyed && (err == nil || !strings.Contains(err.Error(), "mask key")):
				t.Fatalf("default rules without a key: err = %v, want a missing mask key", err)
			}
		})
	}
	// The file's key is the flag's key: the same pseudonyms.
	a := config.Default()
	a.MaskKey = "0123456789abcdef0123456789abcdef"
	b := config.Default()
	b.MaskKeyFile = file
	sa, _ := a.MaskSecret()
	sb, _ := b.MaskSecret()
	if string(sa) != string(sb) {
		t.Fatalf("key file gives %q, flag %q", sb, sa)
	}
}
