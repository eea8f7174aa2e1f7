package audit

import (
	"slices"
	"strconv"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

const (
	testChains   = 3
	testPerChain = 40
)

// storedChains fills the audit table with linked chains, the first 10
// records of each twice (a replay, which is no break), and returns the
// records.
func storedChains(t *testing.T) (driver.Conn, []Record) {
	t.Helper()
	conn, _ := migratedDB(t)
	recs := linkedRecords(testChains, testPerChain)
	if err := insertAudit(t.Context(), conn, recs); err != nil {
		t.Fatal(err)
	}
	var replay []Record
	for i := range testChains {
		replay = append(replay, recs[i*testPerChain:i*testPerChain+10]...)
	}
	if err := insertAudit(t.Context(), conn, replay); err != nil {
		t.Fatal(err)
	}
	return conn, recs
}

func verifyAll(t *testing.T, conn driver.Conn) ([]Break, VerifyStats) {
	t.Helper()
	var breaks []Break
	st, err := VerifyTable(t.Context(), conn, nil, func(b Break) { breaks = append(breaks, b) })
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	for _, b := range breaks {
		t.Logf("break: %+v", b)
	}
	return breaks, st
}

func TestVerifyIntact(t *testing.T) {
	conn, _ := storedChains(t)
	breaks, st := verifyAll(t, conn)
	if len(breaks) != 0 {
		t.Fatalf("%d breaks in intact chains", len(breaks))
	}
	want := VerifyStats{Rows: testChains * (testPerChain + 10), Chains: testChains, Segments: testChains}
	if st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
}

func TestVerifyDetectsUpdate(t *testing.T) {
	conn, recs := storedChains(t)
	victim := recs[testPerChain+17] // second chain, seq 17
	if err := conn.Exec(t.Context(), "ALTER TABLE audit UPDATE outcome = 'block' WHERE audit_id = ?", victim.AuditID); err != nil {
		t.Fatal(err)
	}
	awaitMutations(t, conn)
	breaks, _ := verifyAll(t, conn)
	want := []Break{{Chain: victim.Chain, Segment: victim.Segment, Seq: 17, AuditID: victim.AuditID, Problem: "edited"}}
	if !slices.Equal(breaks, want) {
		t.Fatalf("breaks %+v, want %+v", breaks, want)
	}
}

func TestVerifyDetectsDelete(t *testing.T) {
	conn, recs := storedChains(t)
	victim, next := recs[2*testPerChain+12], recs[2*testPerChain+13] // third chain, seq 12 and 13
	// Seq 5 is stored twice (the replay): both copies go.
	victim2, next2 := recs[5], recs[6]
	if err := conn.Exec(t.Context(), "ALTER TABLE audit DELETE WHERE audit_id IN (?, ?)", victim.AuditID, victim2.AuditID); err != nil {
		t.Fatal(err)
	}
	awaitMutations(t, conn)
	breaks, _ := verifyAll(t, conn)
	want := []Break{
		{Chain: next2.Chain, Segment: next2.Segment, Seq: 6, AuditID: next2.AuditID, Problem: "missing seq 5"},
		{Chain: next.Chain, Segment: next.Segment, Seq: 13, AuditID: next.AuditID, Problem: "missing seq 12"},
	}
	if !slices.Equal(breaks, want) {
		t.Fatalf("breaks %+v, want %+v", breaks, want)
	}
}

// TestVerifyDetectsInsert forges a row at an existing position, with a
// correct hash and a correct link to the row before it: the best a forger
// without the power to edit can do.
func TestVerifyDetectsInsert(t *testing.T) {
	conn, recs := storedChains(t)
	orig := recs[testPerChain+20]
	forged := orig
	forged.AuditID = ID(orig.TenantID, "forged-event", KindDecision, 0)
	forged.EventID, forged.Outcome = "forged-event", "block"
	forged.Hash = forged.ComputeHash()
	if err := insertForged(t, conn, forged); err != nil {
		t.Fatal(err)
	}
	breaks, _ := verifyAll(t, conn)
	want := []Break{{Chain: orig.Chain, Segment: orig.Segment, Seq: 20, AuditID: forged.AuditID, Problem: "conflict"}}
	if !slices.Equal(breaks, want) {
		t.Fatalf("breaks %+v, want %+v", breaks, want)
	}

	// Once merges replace the original with the forged row (both have the
	// same sorting key), the forgery shows as the next row's broken link.
	if err := conn.Exec(t.Context(), "OPTIMIZE TABLE audit FINAL"); err != nil {
		t.Fatal(err)
	}
	breaks, _ = verifyAll(t, conn)
	next := recs[testPerChain+21]
	if len(breaks) != 1 || breaks[0].Seq != 21 || breaks[0].AuditID != next.AuditID || breaks[0].Problem != "broken link" {
		t.Fatalf("after the merge: breaks %+v, want one broken link at seq 21 (%s)", breaks, next.AuditID)
	}
}

// insertForged writes one row with PrepareBatch, as anyone with INSERT on
// the table could.
func insertForged(t *testing.T, conn driver.Conn, r Record) error {
	t.Helper()
	return insertAudit(t.Context(), conn, []Record{r})
}

// TestVerifyChunks checks the cut between chunks of a long segment: a
// break right after a cut is reported once, and duplicates that straddle
// it are no break.
func TestVerifyChunks(t *testing.T) {
	conn, _ := migratedDB(t)
	recs := linkedRecords(1, verifyChunk+50)
	if err := insertAudit(t.Context(), conn, recs); err != nil {
		t.Fatal(err)
	}
	// Replays around the cut, then an edit of the first row after it.
	if err := insertAudit(t.Context(), conn, recs[verifyChunk-3:verifyChunk+3]); err != nil {
		t.Fatal(err)
	}
	breaks, st := verifyAll(t, conn)
	if len(breaks) != 0 || st.Rows != verifyChunk+56 {
		t.Fatalf("intact: %d breaks, %d rows", len(breaks), st.Rows)
	}
	victim := recs[verifyChunk]
	if err := conn.Exec(t.Context(), "ALTER TABLE audit DELETE WHERE audit_id = ?", recs[verifyChunk-1].AuditID); err != nil {
		t.Fatal(err)
	}
	awaitMutations(t, conn)
	breaks, _ = verifyAll(t, conn)
	want := []Break{{Chain: victim.Chain, Segment: victim.Segment, Seq: victim.Seq, AuditID: victim.AuditID, Problem: "missing seq " + strconv.Itoa(verifyChunk-1)}}
	if !slices.Equal(breaks, want) {
		t.Fatalf("breaks %+v, want %+v", breaks, want)
	}
}
