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
// of the sink's time. Values as AppendJSON writes them take a faster path
// still (see plain.go).
var decodeOptions = json.JoinOptions(json.MatchCaseInsensitiveNames(true),
	jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))

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

// decodeAudit reads an audit topic record's value into r, which it
// zeroes first: the sink decodes into its batch's reused slots.
func decodeAudit(value []byte, r *Record) error {
	*r = Record{}
	if !r.decodePlain(value) {
		*r = Record{}
		if err := json.Unmarshal(value, r, decodeOptions); err != nil {
			return badJSON(err)
		}
	}
	switch {
	case r.AuditID == "":
		return &badRecordError{reasonMissingField, "no audit_id"}
	case r.At.Before(minTime) || r.At.After(maxTime):
		return &badRecordError{reasonOutOfRange, fmt.Sprintf("at %v outside 1970..2105", r.At)}
	}
	return nil
}

// decodeDecision reads a decisions topic record's value into d, which it
// zeroes first.
func decodeDecision(value []byte, d *Decision) error {
	*d = Decision{}
	if !d.decodePlain(value) {
		*d = Decision{}
		if err := json.Unmarshal(value, d, decodeOptions); err != nil {
			return badJSON(err)
		}
	}
	switch {
	case d.EventID == "":
		return &badRecordError{reasonMissingField, "no event_id"}
	case d.DecidedAt.Before(minTime) || d.DecidedAt.After(maxTime):
		return &badRecordError{reasonOutOfRange, fmt.Sprintf("decided_at %v outside 1970..2105", d.DecidedAt)}
	}
	return nil
}

// rows are the decoded records of one sink batch.
type rows struct {
	audit     []Record
	decisions []Decision
}

func (r *rows) len() int { return len(r.audit) + len(r.decisions) }

// auditColumns are the audit table's columns as the sink writes them.
// Their names, in this order, are insertAuditSQL's explicit column list, so
// that columns added later (MATERIALIZED ones on newer servers, say) never
// shift the values appended.
var auditColumns = []column[Record]{
	col("audit_id", func(r *Record) string { return r.AuditID }),
	col("kind", func(r *Record) string { return string(r.Kind) }),
	col("event_id", func(r *Record) string { return r.EventID }),
	col("type", func(r *Record) string { return r.Type }),
	col("tenant_id", func(r *Record) string { return r.TenantID }),
	col("user_id", func(r *Record) string { return r.UserID }),
	col("key", func(r *Record) string { return r.Key }),
	col("path", func(r *Record) string { return r.Path }),
	col("rule_id", func(r *Record) string { return r.RuleID }),
	col("outcome", func(r *Record) string { return r.Outcome }),
	col("reason", func(r *Record) string { return r.Reason }),
	col("status", func(r *Record) string { return string(r.Status) }),
	col("mode", func(r *Record) string { return r.Mode }),
	col("sampler_session", func(r *Record) string { return r.SamplerSession }),
	col("model_requested", func(r *Record) string { return r.ModelRequested }),
	col("model_answered", func(r *Record) string { return r.ModelAnswered }),
	col("input_tokens", func(r *Record) int64 { return r.InputTokens }),
	col("output_tokens", func(r *Record) int64 { return r.OutputTokens }),
	col("request_summary", func(r *Record) string { return r.RequestSummary }),
	col("response_summary", func(r *Record) string { return r.ResponseSummary }),
	col("latency_ms", func(r *Record) float64 { return r.LatencyMS }),
	col("at_ms", func(r *Record) int64 { return r.At.UnixMilli() }),
	col("topic", func(r *Record) string { return r.Topic }),
	col("partition", func(r *Record) int32 { return r.Partition }),
	col("offset", func(r *Record) int64 { return r.Offset }),
	col("consumer", func(r *Record) string { return r.Consumer }),
	col("chain", func(r *Record) string { return r.Chain }),
	col("segment", func(r *Record) string { return r.Segment }),
	col("seq", func(r *Record) int64 { return r.Seq }),
	col("prev_hash", func(r *Record) string { return r.PrevHash }),
	col("hash", func(r *Record) string { return r.Hash }),
	col("tier", func(r *Record) string { return r.Tier }),
	col("tool", func(r *Record) string { return r.Tool }),
	col("cache_key", func(r *Record) string { return r.CacheKey }),
	col("source_audit_id", func(r *Record) string { return r.SourceAuditID }),
	col("tokens_estimated", func(r *Record) uint8 { return boolUInt8(r.TokensEstimated) }),
	col("channel", func(r *Record) string { return r.Channel }),
	col("caller", func(r *Record) string { return r.Caller }),
}

// decisionColumns are the decisions table's columns, as auditColumns.
var decisionColumns = []column[Decision]{
	col("event_id", func(d *Decision) string { return d.EventID }),
	col("type", func(d *Decision) string { return d.Type }),
	col("tenant_id", func(d *Decision) string { return d.TenantID }),
	col("key", func(d *Decision) string { return d.Key }),
	col("outcome", func(d *Decision) string { return d.Outcome }),
	col("path", func(d *Decision) string { return d.Path }),
	col("rule_id", func(d *Decision) string { return d.RuleID }),
	col("reason", func(d *Decision) string { return d.Reason }),
	col("model", func(d *Decision) string { return d.Model }),
	col("latency_ms", func(d *Decision) float64 { return d.LatencyMS }),
	col("decided_ms", func(d *Decision) uint64 { return uint64(d.DecidedAt.UnixMilli()) }),
	col("tier", func(d *Decision) string { return d.Tier }),
}

var (
	insertAuditSQL     = insertSQL("audit", auditColumns)
	insertDecisionsSQL = insertSQL("decisions", decisionColumns)
)

// insertAudit writes recs to the audit table in one batch.
func insertAudit(ctx context.Context, conn driver.Conn, recs []Record) error {
	if err := insertRows(ctx, conn, insertAuditSQL, auditColumns, recs); err != nil {
		return fmt.Errorf("audit: insert %d audit rows: %w", len(recs), err)
	}
	return nil
}

// insertDecisions writes ds to the decisions table in one batch.
func insertDecisions(ctx context.Context, conn driver.Conn, ds []Decision) error {
	if err := insertRows(ctx, conn, insertDecisionsSQL, decisionColumns, ds); err != nil {
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
