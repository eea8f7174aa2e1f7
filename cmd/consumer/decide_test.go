package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage/internal/chtest"
	"github.com/triage-dev/triage/internal/httpapi"
	"github.com/triage-dev/triage/internal/testrun"
	"github.com/triage-dev/triage/pipeline"
)

// TestSyncDecisionsAudited: synchronous decisions through the consumer's
// POST /v1/decide reach ClickHouse through the sink like streamed ones,
// with their channel and caller, and audit verify checks their chain and
// its signed checkpoints.
func TestSyncDecisionsAudited(t *testing.T) {
	server := chtest.Server(t)
	db := chtest.FreshDatabase(t, chtest.Open(t, server))
	dsn := withDatabase(t, server, db)
	keyFile := filepath.Join(t.TempDir(), "audit.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("a", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, logs, errc := startServe(t, ctx, "--api-token", "tok", "--clickhouse", dsn, "--audit-key-file", keyFile)

	post := func(id string, amount float64, country string) pipeline.SyncAnswer {
		t.Helper()
		ev := fmt.Sprintf(`{"event":{"type":"transaction","event_id":%q,"tenant_id":"t1","occurred_at":"2026-12-02T10:00:00Z",`+
			`"account_id":"a1","user_id":"u1","amount":%g,"currency":"EUR","country":%q,"ip_country":"DE","merchant":"m",`+
			`"mcc":"5411","channel":"ecommerce","device_id":"d1","txn_count_24h":1,"avg_amount_30d":50,"account_age_days":400,"chargebacks_90d":0}}`,
			id, amount, country)
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+httpapi.DecidePath, bytes.NewReader([]byte(ev)))
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var a pipeline.SyncAnswer
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &a) != nil {
			t.Fatalf("POST %s: status %d %s\n%s", id, resp.StatusCode, body, logs)
		}
		return a
	}
	if a := post("s-1", 12.5, "DE"); a.Path != pipeline.PathRule {
		t.Fatalf("s-1: %+v, want a rule decision", a)
	}
	if a := post("s-2", 9000, "NG"); a.Path != pipeline.PathSampled {
		t.Fatalf("s-2: %+v, want a sampled decision (the builtin sampler)", a)
	}
	if a := post("s-2", 9000, "NG"); !a.Replayed {
		t.Fatalf("the retry of s-2: %+v, want it replayed", a)
	}

	conn := chtest.Open(t, dsn)
	var decisions, attempts, stored uint64
	testrun.Until(t, "the synchronous decisions in ClickHouse", time.Minute, 100*time.Millisecond, func() bool {
		err := conn.QueryRow(t.Context(), `SELECT countIf(kind = 'decision'), countIf(kind = 'sampling_attempt') FROM audit FINAL
			WHERE channel = 'http' AND caller = 'api'`).Scan(&decisions, &attempts)
		if err == nil {
			err = conn.QueryRow(t.Context(), `SELECT count() FROM decisions FINAL WHERE event_id IN ('s-1', 's-2')`).Scan(&stored)
		}
		return err == nil && decisions >= 2 && attempts >= 1 && stored >= 2
	})
	if decisions != 2 || stored != 2 {
		t.Fatalf("%d decision audit rows of channel http and %d decisions rows, want 2 each (a retry records nothing)", decisions, stored)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("serve: %v\n%s", err, logs)
	}
	// The last checkpoint is written at shutdown; it is in ClickHouse once
	// a sink catches up, which audit verify does not wait for: the chain
	// verifies either way.
	var out, errOut bytes.Buffer
	code, _ := subcommand(t.Context(), []string{"audit", "verify", "--clickhouse", dsn, "--audit-key-file", keyFile}, &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), "0 breaks") {
		t.Fatalf("audit verify: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	var chains uint64
	if err := conn.QueryRow(t.Context(), `SELECT uniqExact(chain) FROM audit WHERE chain LIKE 'http@%'`).Scan(&chains); err != nil || chains != 1 {
		t.Fatalf("%d chains of channel http (%v), want 1", chains, err)
	}
}
