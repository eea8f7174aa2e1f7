package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// VerifyStats summarise a VerifyTable run.
type VerifyStats struct {
	Rows     int64
	Chains   int
	Segments int
	Breaks   int
}

// verifyChunk bounds how many rows of one segment VerifyTable holds at once.
const verifyChunk = 20_000

const selectAuditColumns = `audit_id, kind, event_id, type, tenant_id, user_id, key,
	path, rule_id, outcome, reason, status, mode, sampler_session, model_requested, model_answered,
	input_tokens, output_tokens, request_summary, response_summary, latency_ms, at_ms,
	topic, partition, offset, consumer, chain, segment, seq, prev_hash, hash,
	tier, tool, cache_key, source_audit_id, tokens_estimated, channel, caller`

// VerifyTable recomputes every hash chain stored in the audit table of
// conn's database, checks the checkpoints' signatures when signer is not
// nil, and calls onBreak for each break (an edited, deleted or
// inserted row), in chain, segment and seq order. It reads every stored
// copy, not FINAL: identical copies of a row are no break, two different
// rows at one position are.
//
// What a chain cannot show: a segment deleted whole, rows cut from the end
// of a segment, and rows appended to a segment's end with valid hashes. The
// chain proves the inside of what is there; Reconcile proves, against the
// consumer group's committed offsets, that nothing below them is missing.
func VerifyTable(ctx context.Context, conn driver.Conn, signer *Signer, onBreak func(Break)) (VerifyStats, error) {
	var st VerifyStats
	type segment struct {
		chain, segment string
	}
	var segs []segment
	rows, err := conn.Query(ctx, `SELECT chain, segment FROM audit GROUP BY chain, segment ORDER BY chain, segment`)
	if err != nil {
		return st, fmt.Errorf("audit: verify: list segments: %w", err)
	}
	for rows.Next() {
		var s segment
		if err := rows.Scan(&s.chain, &s.segment); err != nil {
			rows.Close()
			return st, fmt.Errorf("audit: verify: list segments: %w", err)
		}
		segs = append(segs, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("audit: verify: list segments: %w", err)
	}
	for i, s := range segs {
		if i == 0 || s.chain != segs[i-1].chain {
			st.Chains++
		}
		st.Segments++
		n, err := verifySegment(ctx, conn, s.chain, s.segment, signer, func(b Break) {
			st.Breaks++
			onBreak(b)
		})
		st.Rows += n
		if err != nil {
			return st, err
		}
	}
	return st, nil
}

// verifySegment streams one segment in seq order through Verify, a chunk
// at a time. Chunks end between two seqs, and each chunk after the first
// starts with the row Verify linked the previous chunk's last seq to, so
// the links across the cut are checked; breaks already reported for that
// carried row are not reported again.
func verifySegment(ctx context.Context, conn driver.Conn, chain, seg string, signer *Signer, onBreak func(Break)) (int64, error) {
	// Of two rows at one position, the one the next row links to comes
	// first, so that the other (an inserted row, typically) is the one
	// reported as the conflict.
	rows, err := conn.Query(ctx, `SELECT `+selectAuditColumns+`,
		hash IN (SELECT prev_hash FROM audit WHERE chain = ? AND segment = ?) AS linked
		FROM audit WHERE chain = ? AND segment = ? ORDER BY seq, linked DESC, hash`, chain, seg, chain, seg)
	if err != nil {
		return 0, fmt.Errorf("audit: verify %s segment %s: %w", chain, seg, err)
	}
	defer rows.Close()
	var (
		n       int64
		chunk   []Record
		carried = false
		groupAt = 0 // index in chunk of the first row with the last seq
		report  = func(chunk []Record, carried bool) {
			for _, b := range Verify(chunk, signer) {
				if carried && b.Seq <= chunk[0].Seq {
					continue
				}
				onBreak(b)
			}
		}
	)
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return n, fmt.Errorf("audit: verify %s segment %s: %w", chain, seg, err)
		}
		n++
		if len(chunk) > 0 && r.Seq != chunk[len(chunk)-1].Seq {
			if len(chunk) >= verifyChunk {
				report(chunk, carried)
				chunk = append(chunk[:0], chunk[groupAt])
				carried = true
			}
			groupAt = len(chunk)
		}
		chunk = append(chunk, r)
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("audit: verify %s segment %s: %w", chain, seg, err)
	}
	if len(chunk) > 0 {
		report(chunk, carried)
	}
	return n, nil
}

func scanRecord(rows driver.Rows) (Record, error) {
	var r Record
	var kind, status string
	var atMS int64
	var linked, estimated uint8
	err := rows.Scan(&r.AuditID, &kind, &r.EventID, &r.Type, &r.TenantID, &r.UserID, &r.Key,
		&r.Path, &r.RuleID, &r.Outcome, &r.Reason, &status, &r.Mode, &r.SamplerSession, &r.ModelRequested, &r.ModelAnswered,
		&r.InputTokens, &r.OutputTokens, &r.RequestSummary, &r.ResponseSummary, &r.LatencyMS, &atMS,
		&r.Topic, &r.Partition, &r.Offset, &r.Consumer, &r.Chain, &r.Segment, &r.Seq, &r.PrevHash, &r.Hash,
		&r.Tier, &r.Tool, &r.CacheKey, &r.SourceAuditID, &estimated, &r.Channel, &r.Caller, &linked)
	r.Kind, r.Status, r.At = Kind(kind), Status(status), time.UnixMilli(atMS).UTC()
	r.TokensEstimated = estimated != 0
	return r, err
}
