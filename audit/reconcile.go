package audit

import (
	"context"
	"fmt"
	"strconv"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Reconciliation proves what the hash chains cannot: that no segment was
// deleted whole and no tail was cut. A chain proves the inside of what is
// stored; an anchor outside the audit table says how much must be stored.
// The anchor is Kafka's: the consumer group commits a source offset only
// once every record below it has its outputs, audit records included,
// acknowledged (DESIGN.md, "Delivery guarantees"), so every offset below the
// committed one that the source partition still holds must have exactly one
// terminal audit record, a decision, a dead letter or a handoff (the
// sampling topic's partitions are sources too, with the sampling stage's
// group as their anchor).

// Anchor is what Kafka says about one source partition.
type Anchor struct {
	Topic     string
	Partition int32
	// Start is the partition's log start offset: records below it were
	// deleted by retention, and nothing says whether they were audited.
	Start int64
	// Committed is the consumer group's committed offset: every record
	// below it was processed, and its audit records acknowledged.
	Committed int64
	// Records, when not nil, returns the runs of offsets between first
	// and last (inclusive) that hold records: a partition written in
	// transactions (the sampling topic, an upstream's transactional
	// producer) has offsets that are transaction markers, and aborted
	// records, which need no audit record. Nil: every offset is a record.
	// See RecordOffsets.
	Records func(ctx context.Context, first, last int64) ([]Range, error)
}

// Range is an inclusive run of offsets.
type Range struct{ First, Last int64 }

// Chain is the name of the anchor's hash chain, "topic/partition".
func (a Anchor) Chain() string { return ChainName(a.Topic, a.Partition) }

// Problems of a Discrepancy.
const (
	// ProblemMissing: offsets below the committed offset with no decision
	// or dead-letter record. The pipeline never commits past an event whose
	// audit records were not acknowledged, so these rows were deleted (a
	// whole segment, a cut tail) or never reached storage.
	ProblemMissing = "no decision or dead letter (deleted segment or cut tail)"
	// ProblemTwice: offsets with terminal records at more than one chain
	// position. Until the pipeline writes and commits in one Kafka
	// transaction, an event processed again after a crash (before its
	// offset was committed) is decided again, in a new segment: this is
	// at-least-once delivery showing, not tampering.
	ProblemTwice = "decided twice"
)

// Discrepancy is a run of source offsets, From to To inclusive, of one
// chain that is not accounted for exactly once.
type Discrepancy struct {
	Chain    string
	From, To int64
	Problem  string
}

func (d Discrepancy) String() string {
	offsets := "offset " + strconv.FormatInt(d.From, 10)
	if d.To != d.From {
		offsets = "offsets " + strconv.FormatInt(d.From, 10) + "-" + strconv.FormatInt(d.To, 10)
	}
	return d.Chain + " " + offsets + ": " + d.Problem
}

// ReconcileStats summarise a Reconcile run.
type ReconcileStats struct {
	Partitions int
	// Offsets is how many source offsets were checked (those that hold
	// no record left out, when the anchors say which: Anchor.Records);
	// Missing and Twice how many of them are not accounted for exactly
	// once.
	Offsets, Missing, Twice int64
	// Unanchored lists the chains that have audit rows but no anchor (the
	// group never committed their partition): they were not reconciled.
	Unanchored []string
}

// Reconcile checks, for every anchor, that each offset in [Start,
// Committed) has exactly one terminal audit record in the audit table of
// conn's database, and calls on for each run of offsets that has none
// (ProblemMissing) or more than one (ProblemTwice), in anchor and offset
// order. Identical copies of one row (a replay of the audit topic) count
// once: a terminal record is counted by its chain position.
//
// The range starts at the log start, not at the first offset audited:
// a deleted first segment looks exactly like audit rows that begin late.
// What Reconcile cannot see: records above the committed offset (their
// audit rows may still be on their way), and source records that retention
// deleted before it ran.
//
// It reads one row per offset of each partition, streamed: one query per
// anchor, on the audit table's primary key.
func Reconcile(ctx context.Context, conn driver.Conn, anchors []Anchor, on func(Discrepancy)) (ReconcileStats, error) {
	var st ReconcileStats
	anchored := map[string]bool{}
	for _, a := range anchors {
		anchored[a.Chain()] = true
		st.Partitions++
		if a.Committed <= a.Start {
			continue
		}
		st.Offsets += a.Committed - a.Start
		if err := reconcileChain(ctx, conn, a, &st, on); err != nil {
			return st, err
		}
	}
	rows, err := conn.Query(ctx, `SELECT chain FROM audit GROUP BY chain ORDER BY chain`)
	if err != nil {
		return st, fmt.Errorf("audit: reconcile: list chains: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var chain string
		if err := rows.Scan(&chain); err != nil {
			return st, fmt.Errorf("audit: reconcile: list chains: %w", err)
		}
		if !anchored[chain] {
			st.Unanchored = append(st.Unanchored, chain)
		}
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("audit: reconcile: list chains: %w", err)
	}
	return st, nil
}

// reconcileChain walks the terminal records of one anchor's range in
// offset order, reporting gaps and runs of offsets decided more than once.
func reconcileChain(ctx context.Context, conn driver.Conn, a Anchor, st *ReconcileStats, on func(Discrepancy)) error {
	chain := a.Chain()
	rows, err := conn.Query(ctx, `SELECT offset, uniqExact(segment, seq) AS n FROM audit
		WHERE chain = ? AND kind IN (?, ?, ?) AND offset >= ? AND offset < ?
		GROUP BY offset ORDER BY offset`, chain, string(KindDecision), string(KindDeadLetter), string(KindHandoff), a.Start, a.Committed)
	if err != nil {
		return fmt.Errorf("audit: reconcile %s: %w", chain, err)
	}
	defer rows.Close()
	var (
		next  = a.Start
		twice *Discrepancy // the run of offsets decided twice being extended
	)
	flushTwice := func() {
		if twice != nil {
			on(*twice)
			twice = nil
		}
	}
	var recordsErr error
	missing := func(from, to int64) {
		runs := []Range{{from, to}}
		if a.Records != nil && recordsErr == nil {
			// Offsets without a record (transaction markers, aborted
			// records) need no audit record, and are not counted.
			runs, recordsErr = a.Records(ctx, from, to)
			st.Offsets -= to - from + 1
			for _, r := range runs {
				st.Offsets += r.Last - r.First + 1
			}
		}
		for _, r := range runs {
			st.Missing += r.Last - r.First + 1
			on(Discrepancy{Chain: chain, From: r.First, To: r.Last, Problem: ProblemMissing})
		}
	}
	for rows.Next() {
		var (
			off int64
			n   uint64
		)
		if err := rows.Scan(&off, &n); err != nil {
			return fmt.Errorf("audit: reconcile %s: %w", chain, err)
		}
		if off > next {
			flushTwice()
			missing(next, off-1)
		}
		if n > 1 {
			st.Twice++
			if twice != nil && twice.To == off-1 {
				twice.To = off
			} else {
				flushTwice()
				twice = &Discrepancy{Chain: chain, From: off, To: off, Problem: ProblemTwice}
			}
		} else {
			flushTwice()
		}
		next = off + 1
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: reconcile %s: %w", chain, err)
	}
	flushTwice()
	if next < a.Committed {
		missing(next, a.Committed-1)
	}
	if recordsErr != nil {
		return fmt.Errorf("audit: reconcile %s: %w", chain, recordsErr)
	}
	return nil
}
