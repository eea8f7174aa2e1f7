package pipeline_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
)

// TestEndToEnd: N records in (valid ones decided by rules or, being
// ambiguous with no sampler, by the fallback; malformed ones of every kind)
// give exactly one decision or one DLQ record each, one audit record per
// decision and one dead_letter audit record per DLQ record, and a committed
// offset at the end of every input partition.
func TestEndToEnd(t *testing.T) {
	brokers := startBroker(t)
	var recs []*kgo.Record
	want := map[string]struct{ outcome, path string }{}
	for i := range 300 {
		id := eventID(i, "tx")
		switch i % 3 {
		case 0: // small domestic payment: allowed by rule or default
			recs = append(recs, record("events.transactions", txn(id, 25, "DE", "DE")))
			want[id] = struct{ outcome, path string }{"allow", pipeline.PathRule}
		case 1: // sanctioned country: blocked by rule
			recs = append(recs, record("events.transactions", txn(id, 25, "KP", "KP")))
			want[id] = struct{ outcome, path string }{"block", pipeline.PathRule}
		case 2: // large amount from a high-risk country: sampled, no sampler
			recs = append(recs, record("events.transactions", txn(id, 9000, "NG", "NG")))
			want[id] = struct{ outcome, path string }{"review", pipeline.PathFallback}
		}
	}
	for i := range 100 {
		id := eventID(i, "doc")
		if i%2 == 0 {
			recs = append(recs, record("events.documents", doc(id, "payslip_v1", "Salary for March")))
			want[id] = struct{ outcome, path string }{"contains_pii", pipeline.PathRule}
		} else {
			recs = append(recs, record("events.documents", doc(id, "", "Unknown scan")))
			want[id] = struct{ outcome, path string }{"review", pipeline.PathFallback}
		}
	}
	bad := malformedRecords()
	badStart := len(recs)
	for _, m := range bad {
		recs = append(recs, &kgo.Record{Topic: "events.transactions", Key: []byte("bad"), Value: m.value})
	}
	produce(t, brokers, recs)

	res := newResults()
	stop := runPipeline(t, pipeline.Config{Brokers: brokers, Group: "e2e", OnResult: res.add})
	got := res.waitFor(t, len(recs))
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(got) != len(recs) {
		t.Fatalf("%d results for %d records", len(got), len(recs))
	}

	decisions := readTopic(t, brokers, "decisions")
	seen := map[string]int{}
	for _, r := range decisions {
		d := decodeDecision(t, r)
		seen[d.EventID]++
		w, ok := want[d.EventID]
		if !ok {
			t.Errorf("decision for unknown event %q", d.EventID)
			continue
		}
		if d.Outcome != w.outcome || d.Path != w.path {
			t.Errorf("%s: outcome %s path %s, want %s %s", d.EventID, d.Outcome, d.Path, w.outcome, w.path)
		}
		if d.Path == pipeline.PathFallback && d.Reason != pipeline.FallbackNoSampler {
			t.Errorf("%s: fallback reason %q, want %q", d.EventID, d.Reason, pipeline.FallbackNoSampler)
		}
		if string(r.Key) != d.Key || d.Key == "" {
			t.Errorf("%s: record key %q, decision key %q", d.EventID, r.Key, d.Key)
		}
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("event %s has %d decisions, want 1", id, seen[id])
		}
	}

	auditRecs := readTopic(t, brokers, "audit")
	if len(auditRecs) != len(decisions)+len(bad) {
		t.Errorf("%d audit records for %d decisions and %d dead letters", len(auditRecs), len(decisions), len(bad))
	}
	ids := map[string]bool{}
	segments := map[string][]audit.Record{}
	// deadLetters: the dead_letter audit records by source position.
	type position struct {
		partition int32
		offset    int64
	}
	deadLetters := map[position]audit.Record{}
	terminal := map[string]int{} // per "topic/partition@offset"
	for _, r := range auditRecs {
		var a audit.Record
		if err := json.Unmarshal(r.Value, &a); err != nil {
			t.Fatal(err)
		}
		if !a.Kind.Terminal() || a.Consumer == "" || a.Topic == "" || ids[a.AuditID] || string(r.Key) != a.Chain {
			t.Errorf("bad audit record %+v", a)
		}
		if a.Kind == audit.KindDeadLetter {
			deadLetters[position{a.Partition, a.Offset}] = a
		}
		terminal[fmt.Sprintf("%s@%d", a.Chain, a.Offset)]++
		ids[a.AuditID] = true
		segments[a.Chain+" "+a.Segment] = append(segments[a.Chain+" "+a.Segment], a)
	}
	for pos, n := range terminal {
		if n != 1 {
			t.Errorf("source record %s has %d terminal audit records, want 1", pos, n)
		}
	}
	// Each chain is in one audit partition, in order: read in topic order,
	// every segment verifies as it is.
	for name, rows := range segments {
		if breaks := audit.Verify(rows, nil); len(breaks) > 0 {
			t.Errorf("chain %s: %+v", name, breaks)
		}
	}

	dlq := readTopic(t, brokers, "events.dlq")
	if len(dlq) != len(bad) {
		t.Fatalf("%d DLQ records, want %d", len(dlq), len(bad))
	}
	for _, r := range dlq {
		off, _ := strconv.ParseInt(header(r, pipeline.HeaderDLQOffset), 10, 64)
		var src *kgo.Record
		for _, in := range recs[badStart:] {
			if in.Offset == off && strconv.Itoa(int(in.Partition)) == header(r, pipeline.HeaderDLQPartition) {
				src = in
			}
		}
		if src == nil || header(r, pipeline.HeaderDLQTopic) != "events.transactions" {
			t.Errorf("DLQ record points at %s/%s/%d: no such bad record", header(r, pipeline.HeaderDLQTopic), header(r, pipeline.HeaderDLQPartition), off)
			continue
		}
		if !bytes.Equal(r.Value, src.Value) {
			t.Errorf("DLQ value differs from the original bytes")
		}
		var m malformed
		for _, b := range bad {
			if bytes.Equal(b.value, src.Value) {
				m = b
			}
		}
		if header(r, pipeline.HeaderDLQReason) != m.reason || header(r, pipeline.HeaderDLQError) == "" {
			t.Errorf("%s: DLQ reason %q (%s), want %q", m.name, header(r, pipeline.HeaderDLQReason), header(r, pipeline.HeaderDLQError), m.reason)
		}
		a, ok := deadLetters[position{src.Partition, src.Offset}]
		if !ok {
			t.Errorf("%s: dead letter at %d/%d has no dead_letter audit record", m.name, src.Partition, src.Offset)
		} else if a.Topic != "events.transactions" || a.Reason != m.reason || a.Status != audit.StatusError || a.Chain != fmt.Sprintf("events.transactions/%d", src.Partition) {
			t.Errorf("%s: dead_letter audit record %+v", m.name, a)
		}
	}
	if len(deadLetters) != len(bad) {
		t.Errorf("%d dead_letter audit records for %d dead letters", len(deadLetters), len(bad))
	}

	committed, end := committedAndEnd(t, brokers, "e2e", inputTopics...)
	if committed != end {
		t.Errorf("committed offsets sum to %d, end offsets to %d", committed, end)
	}
}

// TestRestartResumesFromCommitted: a second run of the same group after a
// clean stop decides only what was produced since, never the old events again.
func TestRestartResumesFromCommitted(t *testing.T) {
	brokers := startBroker(t)
	batch := func(prefix string, n int) []*kgo.Record {
		var recs []*kgo.Record
		for i := range n {
			recs = append(recs, record("events.transactions", txn(eventID(i, prefix), 10, "DE", "DE")))
		}
		return recs
	}
	produce(t, brokers, batch("first", 200))
	res := newResults()
	stop := runPipeline(t, pipeline.Config{Brokers: brokers, Group: "restart", OnResult: res.add})
	res.waitFor(t, 200)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	produce(t, brokers, batch("second", 50))
	res2 := newResults()
	stop = runPipeline(t, pipeline.Config{Brokers: brokers, Group: "restart", OnResult: res2.add})
	got := res2.waitFor(t, 50)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	all, _ := res2.snapshot()
	if len(all) != 50 {
		t.Fatalf("second run produced %d results, want 50 (old events decided again?)", len(all))
	}
	for _, r := range got {
		if r.Decision == nil || r.Decision.EventID[:6] != "second" {
			t.Fatalf("second run decided %+v", r.Decision)
		}
	}
	if n := len(readTopic(t, brokers, "decisions")); n != 250 {
		t.Fatalf("%d decisions on the topic, want 250", n)
	}
}

// TestThirdTypeFromYAMLOnly runs the support-ticket type that exists only in
// examples/tickets.yaml through the whole pipeline.
func TestThirdTypeFromYAMLOnly(t *testing.T) {
	set, err := rules.Load("../examples/tickets.yaml", rules.WithMaskKey(rules.RandomMaskKey()))
	if err != nil {
		t.Fatal(err)
	}
	brokers := startBroker(t, "events.tickets")
	ticket := func(id, tier, priority, subject string) map[string]any {
		return map[string]any{
			"event_id": id, "type": "support_ticket", "tenant_id": "t3",
			"occurred_at": "2026-11-26T10:00:00Z",
			"ticket_id":   "tk-" + id, "customer_id": "c-1", "tier": tier, "priority": priority,
			"subject": subject, "body": "Hello, I need help.",
		}
	}
	cases := []struct {
		ev            map[string]any
		outcome, path string
	}{
		{ticket("t1", "enterprise", "urgent", "Production is down"), "escalate", pipeline.PathRule},
		{ticket("t2", "free", "low", "Password reset"), "template", pipeline.PathRule},
		{ticket("t3", "pro", "normal", "Odd behaviour in reports"), "human", pipeline.PathFallback},
	}
	var recs []*kgo.Record
	for _, c := range cases {
		recs = append(recs, record("events.tickets", c.ev))
	}
	recs = append(recs, &kgo.Record{Topic: "events.tickets", Value: []byte(`{"event_id":"t4","type":"support_ticket","tenant_id":"t3","occurred_at":"2026-11-26T10:00:00Z","ticket_id":"tk-4","customer_id":"c","tier":"platinum","priority":"low","subject":"s","body":"b"}`)})
	produce(t, brokers, recs)

	res := newResults()
	stop := runPipeline(t, pipeline.Config{Brokers: brokers, Group: "tickets", Topics: []string{"events.tickets"}, Rules: rules.Static(set), OnResult: res.add})
	got := res.waitFor(t, len(recs))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	byID := map[string]*pipeline.Decision{}
	dlq := 0
	for _, r := range got {
		if r.Decision != nil {
			byID[r.Decision.EventID] = r.Decision
		} else if r.DLQReason == "invalid_value" {
			dlq++
		}
	}
	for _, c := range cases {
		d := byID[c.ev["event_id"].(string)]
		if d == nil || d.Outcome != c.outcome || d.Path != c.path || d.Type != "support_ticket" {
			t.Errorf("%v: got %+v, want %s via %s", c.ev["event_id"], d, c.outcome, c.path)
		}
	}
	if dlq != 1 {
		t.Errorf("the ticket with an unknown tier: %d DLQ records with invalid_value, want 1", dlq)
	}
}

// TestOversizedDeadLetterIsTruncated: a DLQ topic that refuses records as
// large as the source topic took gets a bounded prefix with the original's
// size and digest, and the pipeline goes on.
func TestOversizedDeadLetterIsTruncated(t *testing.T) {
	brokers := startBroker(t)
	adm := kadm.NewClient(newClient(t, brokers))
	small := "200000"
	ctx := context.Background()
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": &small}, "small.dlq"); err != nil {
		t.Fatal(err)
	}
	// Incompressible bytes (a compressed batch would slip under the limit):
	// not UTF-8, so no JSON, and too big for small.dlq.
	big := make([]byte, 300_000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(rng.UintN(256))
	}
	big[0] = 'x'
	produce(t, brokers, []*kgo.Record{
		{Topic: "events.transactions", Value: big},
		record("events.transactions", txn("after", 10, "DE", "DE")),
	})
	res := newResults()
	stop := runPipeline(t, pipeline.Config{Brokers: brokers, Group: "big", DLQTopic: "small.dlq", OnResult: res.add})
	res.waitFor(t, 2)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	dlq := readTopic(t, brokers, "small.dlq")
	if len(dlq) != 1 {
		t.Fatalf("%d DLQ records", len(dlq))
	}
	r := dlq[0]
	sum := sha256.Sum256(big)
	if len(r.Value) >= len(big) || header(r, pipeline.HeaderDLQTruncated) != "300000" ||
		header(r, pipeline.HeaderDLQSHA256) != hex.EncodeToString(sum[:]) || header(r, pipeline.HeaderDLQReason) != pipeline.ReasonInvalidUTF8 {
		t.Fatalf("DLQ record: %d bytes, headers %v", len(r.Value), r.Headers)
	}
}
