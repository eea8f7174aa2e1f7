package audit

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/internal/embedded"
	"github.com/triage-dev/triage/internal/kafkatest"
)

const (
	reconcileChains   = 3
	reconcilePerChain = 40
	reconcileGroup    = "triage"
	reconcileTopic    = "events.transactions"
)

// segmentedRecords builds, per chain, perChain terminal records as the
// pipeline links them over two ownerships (segments) of the partition: the
// offsets below half in the first, the rest in the second. Every seventh
// offset is a dead letter, and every fifth decision follows a sampling
// attempt (not terminal: it does not count for reconciliation).
func segmentedRecords(chains, perChain int) []Record {
	c := NewChains()
	var out []Record
	at := time.Now()
	for ch := range chains {
		name := fmt.Sprintf("%s/%d", reconcileTopic, ch)
		for i := range perChain {
			if i == perChain/2 {
				c.Reset([]string{name})
			}
			ev := fmt.Sprintf("ev-%d-%d", ch, i)
			base := Record{
				EventID: ev, Type: "transaction", TenantID: "tenant-1", Key: "acct-1", Status: StatusOK,
				At: at.Add(time.Duration(i) * time.Millisecond), Topic: reconcileTopic, Partition: int32(ch), Offset: int64(i), Consumer: "test-1",
			}
			var trail []*Record
			if i%5 == 0 {
				a := base
				a.AuditID, a.Kind, a.Mode = ID(base.TenantID, ev, KindSampling, 0), KindSampling, "direct"
				trail = append(trail, &a)
			}
			term := base
			if i%7 == 3 {
				term.AuditID, term.Kind, term.EventID, term.Reason, term.Status = ID("", ev, KindDeadLetter, 0), KindDeadLetter, "", "invalid_json", StatusError
			} else {
				term.AuditID, term.Kind, term.Path, term.Outcome = ID(base.TenantID, ev, KindDecision, 0), KindDecision, "rule", "allow"
			}
			trail = append(trail, &term)
			c.Link(name, trail, func() {})
			for _, r := range trail {
				out = append(out, *r)
			}
		}
	}
	return out
}

// anchoredChains stores segmentedRecords (and a replay of some, which is
// no discrepancy), and makes Kafka the anchor: an embedded broker whose
// source partitions hold reconcilePerChain records each, all committed by
// reconcileGroup. It returns the connection, the records and the brokers.
func anchoredChains(t *testing.T) (driver.Conn, []Record, []string) {
	t.Helper()
	conn, _ := migratedDB(t)
	recs := segmentedRecords(reconcileChains, reconcilePerChain)
	if err := insertAudit(t.Context(), conn, recs); err != nil {
		t.Fatal(err)
	}
	if err := insertAudit(t.Context(), conn, recs[5:15]); err != nil {
		t.Fatal(err)
	}
	addrs := kafkatest.EmbeddedWith(t, embedded.Config{Partitions: reconcileChains, Topics: []string{reconcileTopic}})
	cl := kafkatest.Client(t, addrs, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var krs []*kgo.Record
	for p := range reconcileChains {
		for range reconcilePerChain {
			krs = append(krs, &kgo.Record{Topic: reconcileTopic, Partition: int32(p), Value: []byte("{}")})
		}
	}
	if err := cl.ProduceSync(t.Context(), krs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var offs kadm.Offsets
	for p := range reconcileChains {
		offs.AddOffset(reconcileTopic, int32(p), reconcilePerChain, -1)
	}
	committed, err := kadm.NewClient(cl).CommitOffsets(t.Context(), reconcileGroup, offs)
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	return conn, recs, addrs
}

func reconcileAll(t *testing.T, conn driver.Conn, brokers []string) ([]Discrepancy, ReconcileStats) {
	t.Helper()
	anchors, err := FetchAnchors(t.Context(), kadm.NewClient(kafkatest.Client(t, brokers)), reconcileGroup)
	if err != nil {
		t.Fatal(err)
	}
	var ds []Discrepancy
	st, err := Reconcile(t.Context(), conn, anchors, func(d Discrepancy) { ds = append(ds, d) })
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	for _, d := range ds {
		t.Logf("discrepancy: %s", d)
	}
	return ds, st
}

// segmentOf returns the segment of the record of chain ch at offset off.
func segmentOf(recs []Record, ch int, off int64) string {
	for _, r := range recs {
		if r.Partition == int32(ch) && r.Offset == off {
			return r.Segment
		}
	}
	return ""
}

func TestReconcileIntact(t *testing.T) {
	conn, _, brokers := anchoredChains(t)
	ds, st := reconcileAll(t, conn, brokers)
	if len(ds) != 0 {
		t.Fatalf("%d discrepancies in intact chains", len(ds))
	}
	if st.Partitions != reconcileChains || st.Offsets != reconcileChains*reconcilePerChain || st.Missing != 0 || st.Twice != 0 || len(st.Unanchored) != 0 {
		t.Fatalf("stats %+v", st)
	}
	if breaks, _ := verifyAll(t, conn); len(breaks) != 0 {
		t.Fatalf("%d breaks in intact chains", len(breaks))
	}
}

// TestReconcileDetectsDeletedSegment deletes the first segment of a chain
// whole: every chain still verifies, and only reconciliation sees it.
func TestReconcileDetectsDeletedSegment(t *testing.T) {
	conn, recs, brokers := anchoredChains(t)
	seg := segmentOf(recs, 1, 0)
	if err := conn.Exec(t.Context(), "ALTER TABLE audit DELETE WHERE chain = ? AND segment = ?", reconcileTopic+"/1", seg); err != nil {
		t.Fatal(err)
	}
	awaitMutations(t, conn)
	if breaks, _ := verifyAll(t, conn); len(breaks) != 0 {
		t.Fatalf("the chains show a deleted segment: %+v", breaks)
	}
	ds, st := reconcileAll(t, conn, brokers)
	want := []Discrepancy{{Chain: reconcileTopic + "/1", From: 0, To: reconcilePerChain/2 - 1, Problem: ProblemMissing}}
	if !slices.Equal(ds, want) || st.Missing != reconcilePerChain/2 {
		t.Fatalf("discrepancies %v (%d missing), want %v", ds, st.Missing, want)
	}
	if got := ds[0].String(); got != "events.transactions/1 offsets 0-19: no decision or dead letter (deleted segment or cut tail)" {
		t.Errorf("String: %q", got)
	}
}

// TestReconcileDetectsCutTail deletes the highest seqs of a chain's last
// segment, and a whole chain too.
func TestReconcileDetectsCutTail(t *testing.T) {
	conn, recs, brokers := anchoredChains(t)
	seg := segmentOf(recs, 2, reconcilePerChain-1)
	var cut int64
	for _, r := range recs {
		if r.Segment == seg && r.Offset == reconcilePerChain-5 {
			cut = r.Seq
		}
	}
	if err := conn.Exec(t.Context(), "ALTER TABLE audit DELETE WHERE chain = ? AND segment = ? AND seq >= ?", reconcileTopic+"/2", seg, cut); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(t.Context(), "ALTER TABLE audit DELETE WHERE chain = ?", reconcileTopic+"/0"); err != nil {
		t.Fatal(err)
	}
	awaitMutations(t, conn)
	if breaks, _ := verifyAll(t, conn); len(breaks) != 0 {
		t.Fatalf("the chains show a cut tail: %+v", breaks)
	}
	ds, _ := reconcileAll(t, conn, brokers)
	want := []Discrepancy{
		{Chain: reconcileTopic + "/0", From: 0, To: reconcilePerChain - 1, Problem: ProblemMissing},
		{Chain: reconcileTopic + "/2", From: reconcilePerChain - 5, To: reconcilePerChain - 1, Problem: ProblemMissing},
	}
	if !slices.Equal(ds, want) {
		t.Fatalf("discrepancies %v, want %v", ds, want)
	}
}

// TestReconcileDecidedTwice: events processed again after a crash, in a
// new segment, are reported as decided twice, and not as missing.
func TestReconcileDecidedTwice(t *testing.T) {
	conn, recs, brokers := anchoredChains(t)
	c := NewChains()
	var again []*Record
	for _, r := range recs {
		if r.Partition == 1 && r.Offset >= 10 && r.Offset <= 12 && r.Kind.Terminal() {
			r := r
			again = append(again, &r)
		}
	}
	c.Link(reconcileTopic+"/1", again, func() {})
	var rows []Record
	for _, r := range again {
		rows = append(rows, *r)
	}
	if err := insertAudit(t.Context(), conn, rows); err != nil {
		t.Fatal(err)
	}
	ds, st := reconcileAll(t, conn, brokers)
	want := []Discrepancy{{Chain: reconcileTopic + "/1", From: 10, To: 12, Problem: ProblemTwice}}
	if !slices.Equal(ds, want) || st.Twice != 3 || st.Missing != 0 {
		t.Fatalf("discrepancies %v (%+v), want %v", ds, st, want)
	}
}

// TestReconcileFromLogStart: offsets that retention deleted from the source
// are not required, and chains the group never committed are listed.
func TestReconcileFromLogStart(t *testing.T) {
	conn, _ := migratedDB(t)
	recs := segmentedRecords(2, 20)
	var kept []Record
	for _, r := range recs {
		if r.Partition == 1 || r.Offset >= 5 {
			kept = append(kept, r)
		}
	}
	if err := insertAudit(t.Context(), conn, kept); err != nil {
		t.Fatal(err)
	}
	var ds []Discrepancy
	st, err := Reconcile(t.Context(), conn, []Anchor{{Topic: reconcileTopic, Partition: 0, Start: 5, Committed: 18}}, func(d Discrepancy) { ds = append(ds, d) })
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 0 || st.Offsets != 13 || !slices.Equal(st.Unanchored, []string{reconcileTopic + "/1"}) {
		t.Fatalf("discrepancies %v, stats %+v", ds, st)
	}
}

func TestFetchAnchorsNoCommits(t *testing.T) {
	addrs := kafkatest.EmbeddedWith(t, embedded.Config{Partitions: 1, Topics: []string{reconcileTopic}})
	_, err := FetchAnchors(t.Context(), kadm.NewClient(kafkatest.Client(t, addrs)), "no-such-group")
	if !errors.Is(err, ErrNoCommits) {
		t.Fatalf("err %v, want ErrNoCommits", err)
	}
}
