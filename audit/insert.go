package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// decodeOptions read the topics' JSON as encoding/json would (names
// matched without regard to case, a repeated name's last value, invalid
// UTF-8 replaced), with the faster decoder of json v2: decoding was most
// of the sink's time.
var decodeOptions = json.JoinOptions(json.MatchCaseInsensitiveNames(true),
	jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))

// The column lists are explicit so that columns added later (MATERIALIZED
// ones on newer servers, say) never shift the values appended.
const (
	insertAuditSQL = `INSERT INTO audit (audit_id, kind, event_id, type, tenant_id, user_id, key,
	path, rule_id, outcome, reason, status, mode, sampler_session, model_requested, model_answered,
	input_tokens, output_tokens, request_summary, response_summary, latency_ms, at_ms,
	topic, partition, offset, consumer, chain, segment, seq, prev_hash, hash,
	tier, tool, cache_key, source_audit_id, tokens_estimated, channel, caller)`
	insertDecisionsSQL = `INSERT INTO decisions (event_id, type, tenant_id, key, outcome, path,
	rule_id, reason, model, latency_ms, decided_ms, tier)`
)

// DateTime's range: storage derives the day partition from these times.
var (
	minTime = time.Unix(0, 0)
	maxTime = time.Date(2105, 12, 31, 0, 0, 0, 0, time.UTC)
)

// Reasons a topic record cannot be stored: its dead letter's
// triage.dlq.reason, in the pipeline's vocabulary.
const (
	reasonInvalidJSON     = "invalid_json"
	reasonWrongType       = "wrong_type"
	reasonMissingField    = "missing_field"
	reasonOutOfRange      = "out_of_range"
	reasonUnexpectedTopic = "unexpected_topic"
)

// badRecordError is a topic record that cannot be stored.
type badRecordError struct {
	reason string // a stable code, see the reason constants
	detail string
}

func (e *badRecordError) Error() string { return "bad record: " + e.reason + ": " + e.detail }

// badJSON classifies a json.Unmarshal error.
func badJSON(err error) *badRecordError {
	var typeErr *json.SemanticError
	if errors.As(err, &typeErr) {
		return &badRecordError{reasonWrongType, err.Error()}
	}
	return &badRecordError{reasonInvalidJSON, err.Error()}
}

// decodeAudit reads an audit topic record's value.
func decodeAudit(value []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(value, &r, decodeOptions); err != nil {
		return r, badJSON(err)
	}
	switch {
	case r.AuditID == "":
		return r, &badRecordError{reasonMissingField, "no audit_id"}
	case r.At.Before(minTime) || r.At.After(maxTime):
		return r, &badRecordError{reasonOutOfRange, fmt.Sprintf("at %v outside 1970..2105", r.At)}
	}
	return r, nil
}

// decodeDecision reads a decisions topic record's value.
func decodeDecision(value []byte) (Decision, error) {
	var d Decision
	if err := json.Unmarshal(value, &d, decodeOptions); err != nil {
		return d, badJSON(err)
	}
	switch {
	case d.EventID == "":
		return d, &badRecordError{reasonMissingField, "no event_id"}
	case d.DecidedAt.Before(minTime) || d.DecidedAt.After(maxTime):
		return d, &badRecordError{reasonOutOfRange, fmt.Sprintf("decided_at %v outside 1970..2105", d.DecidedAt)}
	}
	return d, nil
}

// rows are the decoded records of one sink batch.
type rows struct {
	audit     []Record
	decisions []Decision
}

func (r *rows) len() int { return len(r.audit) + len(r.decisions) }

// auditRow is r's values in insertAuditSQL's column order.
func auditRow(r *Record) []any {
	return []any{r.AuditID, string(r.Kind), r.EventID, r.Type, r.TenantID, r.UserID, r.Key,
		r.Path, r.RuleID, r.Outcome, r.Reason, string(r.Status), r.Mode, r.SamplerSession, r.ModelRequested, r.ModelAnswered,
		r.InputTokens, r.OutputTokens, r.RequestSummary, r.ResponseSummary, r.LatencyMS, r.At.UnixMilli(),
		r.Topic, r.Partition, r.Offset, r.Consumer, r.Chain, r.Segment, r.Seq, r.PrevHash, r.Hash,
		r.Tier, r.Tool, r.CacheKey, r.SourceAuditID, boolUInt8(r.TokensEstimated), r.Channel, r.Caller}
}

// insertAudit writes recs to the audit table in one batch.
func insertAudit(ctx context.Context, conn driver.Conn, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	b, err := conn.PrepareBatch(ctx, insertAuditSQL)
	if err != nil {
		return fmt.Errorf("audit: insert audit rows: %w", err)
	}
	for i := range recs {
		if err := b.Append(auditRow(&recs[i])...); err != nil {
			_ = b.Abort()
			return fmt.Errorf("audit: insert audit rows: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("audit: insert %d audit rows: %w", len(recs), err)
	}
	return nil
}

// insertDecisions writes ds to the decisions table in one batch.
func insertDecisions(ctx context.Context, conn driver.Conn, ds []Decision) error {
	if len(ds) == 0 {
		return nil
	}
	b, err := conn.PrepareBatch(ctx, insertDecisionsSQL)
	if err != nil {
		return fmt.Errorf("audit: insert decisions: %w", err)
	}
	for i := range ds {
		d := &ds[i]
		if err := b.Append(d.EventID, d.Type, d.TenantID, d.Key, d.Outcome, d.Path,
			d.RuleID, d.Reason, d.Model, d.LatencyMS, uint64(d.DecidedAt.UnixMilli()), d.Tier); err != nil {
			_ = b.Abort()
			return fmt.Errorf("audit: insert decisions: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("audit: insert %d decisions: %w", len(ds), err)
	}
	return nil
}

func boolUInt8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}
