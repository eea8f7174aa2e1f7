package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage/internal/testrun"
	"github.com/triage-dev/triage/pipeline"
)

// mcpClientDir is where scripts/mcpclient installed the TypeScript MCP
// SDK for testdata/mcpclient/package.json; the test fails, never skips,
// when it is not there.
func mcpClientDir(t *testing.T) string {
	t.Helper()
	pkg, err := os.ReadFile("testdata/mcpclient/package.json")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(pkg)
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(home, ".cache", "triage", "mcpclient-"+hex.EncodeToString(sum[:])[:12])
	if _, err := os.Stat(filepath.Join(dir, ".installed")); err != nil {
		t.Fatalf("no TypeScript MCP client in %s: run scripts/mcpclient install (scripts/test does): %v", dir, err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("no node on PATH: %v", err)
	}
	// The script runs beside the installed packages, so that node
	// resolves them.
	run := t.TempDir()
	script, err := os.ReadFile("testdata/mcpclient/decide.mjs")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, "decide.mjs"), script, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "node_modules"), filepath.Join(run, "node_modules")); err != nil {
		t.Fatal(err)
	}
	return run
}

// TestTypeScriptClientDecides: an outside MCP client, the official
// TypeScript SDK's (1.32.2, protocol 2025-11-25), calls the consumer's
// decide tool. Declaring sampling, it answers the event's sampling request
// itself (the consumer sends it back to the caller); declaring none, the
// consumer's own builtin sampler answers; an invalid event is a tool
// error naming the field.
func TestTypeScriptClientDecides(t *testing.T) {
	client := mcpClientDir(t)
	bin := binaries(t)
	addr := testrun.FreeAddr(t)
	consumer := start(t, "consumer", bin["consumer"], "--embedded", "--embedded-port", "0", "--mcp-listen", addr,
		"--http-listen", "", "--log-format", "text")
	poll(t, "the MCP endpoint", func() bool {
		consumer.FailIfExited(t)
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
	decide := func(event map[string]any, mode string) (res struct {
		Result  pipeline.SyncAnswer `json:"result"`
		Sampled int                 `json:"sampled"`
		Error   string              `json:"error"`
	}) {
		t.Helper()
		ev, _ := json.Marshal(event)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "node", "decide.mjs", "http://"+addr+"/mcp", "", string(ev), mode)
		cmd.Dir = client
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || json.Unmarshal(out, &res) != nil {
			t.Fatalf("node decide.mjs: %v\n%s\n%s\nconsumer:\n%s", err, out, stderr.String(), consumer.Output())
		}
		return res
	}
	event := func(id string, amount float64) map[string]any {
		return map[string]any{"type": "transaction", "event_id": id, "tenant_id": "t1", "occurred_at": "2026-12-02T10:00:00Z",
			"account_id": "a1", "user_id": "u1", "amount": amount, "currency": "EUR", "country": "NG", "ip_country": "DE",
			"merchant": "m", "mcc": "5411", "channel": "ecommerce", "device_id": "d1",
			"txn_count_24h": 1, "avg_amount_30d": 50.0, "account_age_days": 400, "chargebacks_90d": 0}
	}

	got := decide(event("ts-1", 9000), "")
	if got.Error != "" || got.Sampled != 1 || got.Result.Path != pipeline.PathSampled || got.Result.Model != "ts-client-model" || got.Result.Outcome != "block" {
		t.Fatalf("a client that samples: %+v: want its own model's block, sampled once", got)
	}
	got = decide(event("ts-2", 9100), "pool")
	if got.Error != "" || got.Sampled != 0 || got.Result.Path != pipeline.PathSampled || !strings.Contains(got.Result.Model, "offline") {
		t.Fatalf("a client without sampling: %+v: want the builtin sampler's decision", got)
	}
	again := decide(event("ts-2", 9100), "pool")
	if !again.Result.Replayed || again.Result.AuditID != got.Result.AuditID {
		t.Fatalf("the retry: %+v, want the first decision replayed", again)
	}
	bad := event("ts-3", 9000)
	delete(bad, "currency")
	if got := decide(bad, "pool"); !strings.Contains(got.Error, "currency") {
		t.Fatalf("an invalid event: %+v, want a tool error naming currency", got)
	}
}
