package audit

import (
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/triage-dev/triage/deploy"
)

// TestControlsQueries: the report's LLM-control queries count what the
// guards and the tool loop wrote: cache hits against sampled decisions,
// refusals by reason, tool calls by status, tokens by tenant, model and
// tier with the estimated ones marked. Each row is stored twice (a replay)
// and counted once.
func TestControlsQueries(t *testing.T) {
	conn, _ := migratedDB(t)
	at := time.Now().UTC().Truncate(time.Millisecond)
	var ds []Decision
	var recs []Record
	paths := []struct{ path, reason string }{
		{"sampled", ""}, {"sampled", ""}, {"sampled", ""}, {"cache", ""},
		{"fallback", "rate_limited"}, {"fallback", "budget_exceeded"}, {"fallback", "policy"}, {"fallback", "timeout"},
		{"rule", "no rule matched"},
	}
	for i, p := range paths {
		ev := fmt.Sprint("ev-", i)
		ds = append(ds, Decision{EventID: ev, Type: "transaction", TenantID: "t1", Key: "k", Outcome: "review",
			Path: p.path, Reason: p.reason, DecidedAt: at})
		if p.path == "sampled" {
			recs = append(recs, Record{AuditID: ID("t1", ev, KindSampling, 0), Kind: KindSampling, EventID: ev, Type: "transaction",
				TenantID: "t1", Status: StatusOK, ModelAnswered: "m1", Tier: "high", InputTokens: 10, OutputTokens: 5,
				TokensEstimated: i == 0, At: at})
		}
	}
	for i, st := range []Status{StatusOK, StatusOK, StatusDenied} {
		recs = append(recs, Record{AuditID: ID("t1", "ev-0", KindToolCall, i), Kind: KindToolCall, EventID: "ev-0", Type: "transaction",
			TenantID: "t1", Tool: "transaction_history", Status: st, LatencyMS: 0.5, At: at})
	}
	for range 2 {
		if err := insertDecisions(t.Context(), conn, ds); err != nil {
			t.Fatal(err)
		}
		if err := insertAudit(t.Context(), conn, recs); err != nil {
			t.Fatal(err)
		}
	}

	controls := queryRows(t, conn, "09_llm_controls", nil)
	want := map[string]string{"type": "transaction", "sampled": "3", "cached": "1", "cache_share": "0.25",
		"rate_limited": "1", "budget_exceeded": "1", "policy": "1", "other_fallbacks": "1"}
	if len(controls) != 1 || fmt.Sprint(controls[0]) != fmt.Sprint(want) {
		t.Errorf("09_llm_controls: %v, want %v", controls, want)
	}
	tools := queryRows(t, conn, "10_tool_calls", nil)
	if len(tools) != 2 || tools[0]["status"] != "denied" || tools[0]["calls"] != "1" || tools[1]["status"] != "ok" || tools[1]["calls"] != "2" {
		t.Errorf("10_tool_calls: %v", tools)
	}
	tokens := queryRows(t, conn, "05_tokens_by_tenant_model", nil)
	if len(tokens) != 1 || tokens[0]["tier"] != "high" || tokens[0]["model"] != "m1" || tokens[0]["attempts"] != "3" ||
		tokens[0]["tokens_total"] != "45" || tokens[0]["estimated"] != "1" {
		t.Errorf("05_tokens_by_tenant_model: %v", tokens)
	}
}

// queryRows runs the named deploy/ query with values (defaults where nil)
// and returns its rows as column → value.
func queryRows(t *testing.T, conn driver.Conn, name string, values map[string]string) []map[string]string {
	t.Helper()
	queries, err := LoadQueries(deploy.Queries, deploy.QueriesDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queries {
		if q.Name != name {
			continue
		}
		sql, err := q.Render(values)
		if err != nil {
			t.Fatal(err)
		}
		tab, err := RunQuery(t.Context(), conn, sql)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var out []map[string]string
		for _, r := range tab.Rows {
			m := map[string]string{}
			for i, c := range tab.Columns {
				m[c] = r[i]
			}
			out = append(out, m)
		}
		return out
	}
	t.Fatalf("no query %s", name)
	return nil
}
