package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/internal/loadgen"
	"github.com/triage-dev/triage/pipeline"
)

// withTenant returns the event value v with its tenant_id replaced. Numbers
// keep their text (UseNumber), so the event is the same apart from the
// tenant.
func withTenant(t *testing.T, v []byte, tenant string) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var ev map[string]any
	if err := dec.Decode(&ev); err != nil {
		t.Fatalf("event %q: %v", v, err)
	}
	ev["tenant_id"] = tenant
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSameEventIDTwoTenants: event identity is (tenant_id, event_id). Two
// tenants send events with the same event_ids; each event is decided on
// Kafka, and ClickHouse keeps and counts both tenants' decisions and
// audit trails, after a merge too, and the chains verify.
func TestSameEventIDTwoTenants(t *testing.T) {
	const events = 40
	tenants := []string{"tenant-a", "tenant-b"}
	conn, _ := audit.MigratedDB(t)
	brokers := startBroker(t)

	gen, err := loadgen.NewGenerator(loadgen.Config{Seed: 9, Ambiguous: map[string]float64{loadgen.AllTypes: 0.5}})
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for range events {
		ev := gen.Next()
		for _, tenant := range tenants {
			recs = append(recs, &kgo.Record{Topic: ev.Topic, Key: ev.Key, Value: withTenant(t, ev.Value, tenant)})
		}
	}
	results := runPipeline(t, brokers, len(recs), func(cl *kgo.Client) {
		ctx, cancel := context.WithTimeout(t.Context(), audit.WaitTimeout)
		defer cancel()
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	})
	decided := map[string]bool{} // tenant_id/event_id
	attempts, sampled := 0, map[string]int{}
	for _, r := range results {
		if r.Decision == nil {
			t.Fatalf("%s/%d/%d was dead-lettered (%s), not decided", r.Topic, r.Partition, r.Offset, r.DLQReason)
		}
		decided[r.Decision.TenantID+"/"+r.Decision.EventID] = true
		attempts += r.SamplingAttempts
		if r.SamplingAttempts > 0 {
			sampled[r.Decision.Type]++
		}
	}
	if len(decided) != len(recs) {
		t.Fatalf("the pipeline decided %d (tenant, event) pairs, want %d", len(decided), len(recs))
	}
	if attempts == 0 {
		t.Fatal("no event was sampled; the LLM queries test nothing")
	}

	s, stop := runSink(t, conn, audit.SinkOptions{Brokers: brokers})
	waitCaughtUp(t, s)
	if err := stop(); err != nil {
		t.Fatalf("sink: %v", err)
	}
	// A merge is when a ReplacingMergeTree collapses rows of one key: with
	// event_id alone as the key, it kept one tenant's decision.
	if err := conn.Exec(t.Context(), "OPTIMIZE TABLE decisions FINAL"); err != nil {
		t.Fatal(err)
	}
	var rows, pairs uint64
	if err := conn.QueryRow(t.Context(), "SELECT count(), uniqExact(tenant_id, event_id) FROM decisions").Scan(&rows, &pairs); err != nil {
		t.Fatal(err)
	}
	if rows != uint64(len(recs)) || pairs != uint64(len(recs)) {
		t.Errorf("decisions holds %d rows of %d (tenant, event) pairs after a merge, want %d of each", rows, pairs, len(recs))
	}
	var auditIDs, auditRecords uint64
	if err := conn.QueryRow(t.Context(), "SELECT uniqExact(audit_id), uniqExact(chain, segment, seq) FROM audit").Scan(&auditIDs, &auditRecords); err != nil {
		t.Fatal(err)
	}
	if want := uint64(len(recs) + attempts); auditIDs != want || auditRecords != want {
		t.Errorf("the audit table holds %d audit_ids for %d records, want %d of each", auditIDs, auditRecords, want)
	}

	if got := sumColumn(t, runQuery(t, conn, "01_decisions_per_minute", nil), "decisions"); got != len(recs) {
		t.Errorf("decisions per minute add up to %d, want %d", got, len(recs))
	}
	share := runQuery(t, conn, "02_llm_share", nil)
	for _, r := range share {
		if r["reached_llm"] != strconv.Itoa(sampled[r["type"]]) {
			t.Errorf("type %s: %s reached the LLM, want %d", r["type"], r["reached_llm"], sampled[r["type"]])
		}
	}
	if got := sumColumn(t, share, "events"); got != len(recs) {
		t.Errorf("the LLM share counts %d events, want %d", got, len(recs))
	}
	if got := sumColumn(t, runQuery(t, conn, "03_sampling_latency", nil), "attempts"); got != attempts {
		t.Errorf("sampling latency counts %d attempts, want %d", got, attempts)
	}
	if got := sumColumn(t, runQuery(t, conn, "05_tokens_by_tenant_model", nil), "attempts"); got != attempts {
		t.Errorf("tokens by tenant count %d attempts, want %d", got, attempts)
	}
	if got := sumColumn(t, runQuery(t, conn, "06_top_rules", map[string]string{"limit": "1000"}), "hits"); got != len(recs) {
		t.Errorf("top rules count %d hits, want %d (every decision names its rule)", got, len(recs))
	}
	if got := sumColumn(t, runQuery(t, conn, "07_sampling_spikes", map[string]string{"threshold": "0"}), "requests"); got != attempts {
		t.Errorf("sampling spikes count %d requests, want %d", got, attempts)
	}

	// The trail of one sampled event: each tenant's on its own, both
	// without a tenant.
	var example pipeline.Result
	for _, r := range results {
		if r.SamplingAttempts == 1 {
			example = r
		}
	}
	for _, tenant := range tenants {
		trail := runQuery(t, conn, "08_event_trail", map[string]string{"tenant_id": tenant, "event_id": example.Decision.EventID})
		if len(trail) != 2 || trail[0]["kind"] != "sampling_attempt" || trail[1]["kind"] != "decision" ||
			trail[0]["tenant_id"] != tenant || trail[1]["tenant_id"] != tenant {
			t.Errorf("trail of %s/%s: %v", tenant, example.Decision.EventID, trail)
		}
	}
	if trail := runQuery(t, conn, "08_event_trail", map[string]string{"event_id": example.Decision.EventID}); len(trail) != 4 {
		t.Errorf("trail of %s without a tenant: %d rows, want both tenants' 2: %v", example.Decision.EventID, len(trail), trail)
	}
	t.Logf("report:\n%s", report(t, conn, map[string]string{"event_id": example.Decision.EventID, "threshold": "0"}))

	st, err := audit.VerifyTable(t.Context(), conn, nil, func(b audit.Break) { t.Errorf("break: %+v", b) })
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len(recs) + attempts); st.Rows != want || st.Breaks != 0 {
		t.Errorf("verify: %+v, want %d rows and no break", st, want)
	}
}
