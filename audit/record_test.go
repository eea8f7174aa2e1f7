package audit

import (
	"strings"
	"testing"
	"time"
)

// TestIDTenantScoped: an audit_id is the same for the same tenant, event,
// kind and n, as reprocessing needs, and differs for another tenant with
// the same event_id (issue 9) or a split of the same text elsewhere.
func TestIDTenantScoped(t *testing.T) {
	id := ID("tenant-a", "ev-1", KindDecision, 0)
	if again := ID("tenant-a", "ev-1", KindDecision, 0); again != id {
		t.Errorf("ID changed between two calls: %s, %s", id, again)
	}
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
		t.Errorf("ID %q is not formatted as a UUID", id)
	}
	for _, other := range []string{
		ID("tenant-b", "ev-1", KindDecision, 0),
		ID("tenant-a", "ev-1", KindSampling, 0),
		ID("tenant-a", "ev-1", KindDecision, 1),
		ID("tenant-", "aev-1", KindDecision, 0),
		ID("", "tenant-aev-1", KindDecision, 0),
		ID("tenant-a\x00ev-1", "", KindDecision, 0),
	} {
		if other == id {
			t.Errorf("another tenant, event, kind or n got the id %s too", id)
		}
	}
}

// TestHashCoversLaterFields: the fields added with the LLM stage's
// controls are hashed when set, and a record without them hashes as
// before they existed, so stored chains still verify.
func TestHashCoversLaterFields(t *testing.T) {
	r := Record{AuditID: "a", Kind: KindDecision, EventID: "e", At: time.UnixMilli(1700000000000).UTC()}
	before := r.ComputeHash()
	for name, edit := range map[string]func(*Record){
		"tier":             func(r *Record) { r.Tier = "high" },
		"tool":             func(r *Record) { r.Tool = "transaction_history" },
		"cache_key":        func(r *Record) { r.CacheKey = "k" },
		"source_audit_id":  func(r *Record) { r.SourceAuditID = "s" },
		"tokens_estimated": func(r *Record) { r.TokensEstimated = true },
	} {
		e := r
		edit(&e)
		if e.ComputeHash() == before {
			t.Errorf("%s is not hashed", name)
		}
	}
	// The hash of a record without them is pinned: what the release
	// before them computed for it (d62a56a), as chains it stored carry.
	if want := "7663afde245ef920acb67b7ef2f7be0b6c9e743d1a1e8a671f584a75daca9777"; before != want {
		t.Errorf("hash %s, want %s as before the fields existed", before, want)
	}
}

// TestHashPinnedFull pins the hash of a record with every field set, long
// strings and non-ASCII text included: the canonical encoding must not
// change when the code computing it does, or stored chains would break.
func TestHashPinnedFull(t *testing.T) {
	long := strings.Repeat("résumé ", 300)
	r := Record{AuditID: "a", Kind: KindSampling, EventID: "e", Type: "document", TenantID: "t", UserID: "u", Key: "k",
		Path: "sampled", RuleID: "r", Outcome: "contains_pii", Reason: "why", Status: StatusOK,
		Mode: "pull", SamplerSession: "s", ModelRequested: "m1", ModelAnswered: "m2", InputTokens: 1234, OutputTokens: -5,
		RequestSummary: long, ResponseSummary: "ok", Tier: "high", Tool: "x", CacheKey: "c", SourceAuditID: "src", TokensEstimated: true,
		LatencyMS: 12.345, At: time.UnixMilli(1700000000123).UTC(), Topic: "events.documents", Partition: 3, Offset: 1 << 40,
		Consumer: "host-1", Chain: "events.documents/3", Segment: "seg", Seq: 77, PrevHash: "prev"}
	if got, want := r.ComputeHash(), "121ae904b0542c086ab532d3c19f09fc62fe32aa26cd51562929b27daa645fe4"; got != want {
		t.Errorf("hash %s, want %s", got, want)
	}
}

// TestIDPinned: audit ids stored before must be derived again the same
// way, whatever code derives them (storage deduplicates on them).
func TestIDPinned(t *testing.T) {
	for _, c := range []struct {
		tenant, event string
		kind          Kind
		want          string
	}{
		{"tenant-a", "ev-1", KindDecision, "0509e85b-791f-45a1-7023-c679c6e60f39"},
		{"", "events.transactions/3@77", KindDeadLetter, "45437374-fae0-c055-082b-ceffe5a01ca7"},
		{"ténant", "é\x00v", KindSampling, "29a97937-af86-2fdd-7b92-e4c892f23aea"},
	} {
		if got := ID(c.tenant, c.event, c.kind, 12); got != c.want {
			t.Errorf("ID(%q, %q, %s, 12) = %s, want %s", c.tenant, c.event, c.kind, got, c.want)
		}
	}
}
