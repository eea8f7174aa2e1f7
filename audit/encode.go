package audit

import (
	"math"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// The pipeline writes a decision and at least one audit record for every
// event it reads, so their JSON is appended by hand, without reflection,
// to a buffer the caller may reuse. The output is what encoding/json's
// Marshal writes for the struct tags (same names, order and omitempty; a
// test holds them equal), except that <, > and & are not escaped for
// HTML: readers decode the same values.

// AppendJSON appends d's JSON object to b.
func (d *Decision) AppendJSON(b []byte) []byte {
	w := jsonObject{b: append(b, '{')}
	w.str("event_id", d.EventID)
	w.str("type", d.Type)
	w.str("tenant_id", d.TenantID)
	w.str("key", d.Key)
	w.str("outcome", d.Outcome)
	w.str("path", d.Path)
	w.strOmit("rule_id", d.RuleID)
	w.strOmit("reason", d.Reason)
	w.strOmit("model", d.Model)
	w.strOmit("tier", d.Tier)
	if d.Score != nil {
		w.float("score", *d.Score)
	}
	w.float("latency_ms", d.LatencyMS)
	w.time("decided_at", d.DecidedAt)
	return append(w.b, '}')
}

// AppendJSON appends r's JSON object to b.
func (r *Record) AppendJSON(b []byte) []byte {
	w := jsonObject{b: append(b, '{')}
	w.str("audit_id", r.AuditID)
	w.str("kind", string(r.Kind))
	w.str("event_id", r.EventID)
	w.str("type", r.Type)
	w.str("tenant_id", r.TenantID)
	w.strOmit("user_id", r.UserID)
	w.str("key", r.Key)
	w.str("path", r.Path)
	w.strOmit("rule_id", r.RuleID)
	w.strOmit("outcome", r.Outcome)
	w.strOmit("reason", r.Reason)
	w.str("status", string(r.Status))
	w.strOmit("mode", r.Mode)
	w.strOmit("sampler_session", r.SamplerSession)
	w.strOmit("model_requested", r.ModelRequested)
	w.strOmit("model_answered", r.ModelAnswered)
	w.intOmit("input_tokens", r.InputTokens)
	w.intOmit("output_tokens", r.OutputTokens)
	w.strOmit("request_summary", r.RequestSummary)
	w.strOmit("response_summary", r.ResponseSummary)
	w.strOmit("tier", r.Tier)
	w.strOmit("tool", r.Tool)
	w.strOmit("cache_key", r.CacheKey)
	w.strOmit("source_audit_id", r.SourceAuditID)
	if r.TokensEstimated {
		w.name("tokens_estimated")
		w.b = append(w.b, "true"...)
	}
	w.strOmit("channel", r.Channel)
	w.strOmit("caller", r.Caller)
	w.float("latency_ms", r.LatencyMS)
	w.time("at", r.At)
	w.str("topic", r.Topic)
	w.int("partition", int64(r.Partition))
	w.int("offset", r.Offset)
	w.str("consumer", r.Consumer)
	w.str("chain", r.Chain)
	w.str("segment", r.Segment)
	w.int("seq", r.Seq)
	w.str("prev_hash", r.PrevHash)
	w.str("hash", r.Hash)
	return append(w.b, '}')
}

// jsonObject appends the members of one object; names are the package's
// own constants and need no escaping.
type jsonObject struct {
	b    []byte
	more bool
}

func (w *jsonObject) name(n string) {
	if w.more {
		w.b = append(w.b, ',')
	}
	w.more = true
	w.b = append(w.b, '"')
	w.b = append(w.b, n...)
	w.b = append(w.b, '"', ':')
}

func (w *jsonObject) str(n, v string) {
	w.name(n)
	if plain(v) {
		// Most values (ids, hashes, names, codes) are printable ASCII
		// without quotes or backslashes: nothing to escape or check.
		w.b = append(append(append(w.b, '"'), v...), '"')
		return
	}
	// Invalid UTF-8 becomes U+FFFD, as encoding/json writes it; the error
	// only reports that it happened.
	w.b, _ = jsontext.AppendQuote(w.b, v)
}

// plain reports whether s is printable ASCII without '"' or '\\': a JSON
// string as it is.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func (w *jsonObject) strOmit(n, v string) {
	if v != "" {
		w.str(n, v)
	}
}

func (w *jsonObject) int(n string, v int64) {
	w.name(n)
	w.b = strconv.AppendInt(w.b, v, 10)
}

func (w *jsonObject) intOmit(n string, v int64) {
	if v != 0 {
		w.int(n, v)
	}
}

// float writes v as encoding/json does: shortest round-trip form, with an
// exponent only for very small or very large magnitudes. A non-finite
// value, which encoding/json refuses, is written as 0: latencies are
// differences of clock readings and never are.
func (w *jsonObject) float(n string, v float64) {
	w.name(n)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	format := byte('f')
	if abs := math.Abs(v); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	w.b = strconv.AppendFloat(w.b, v, format, -1, 64)
	if format == 'e' {
		// e-07 → e-7, as encoding/json shortens it.
		if l := len(w.b); l >= 4 && w.b[l-4] == 'e' && w.b[l-3] == '-' && w.b[l-2] == '0' {
			w.b[l-2] = w.b[l-1]
			w.b = w.b[:l-1]
		}
	}
}

func (w *jsonObject) time(n string, v time.Time) {
	w.name(n)
	w.b = append(w.b, '"')
	w.b = v.AppendFormat(w.b, time.RFC3339Nano)
	w.b = append(w.b, '"')
}
