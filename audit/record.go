package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// Kind says which step of a decision a record describes.
type Kind string

// Record kinds.
const (
	KindDecision = Kind("decision")         // the final decision of an event
	KindSampling = Kind("sampling_attempt") // one LLM request and its answer
	KindToolCall = Kind("tool_call")        // one tool executed inside sampling
	// KindDeadLetter is the terminal record of a source record that was not
	// a valid event and went to the dead-letter topic: with KindDecision it
	// accounts for every source offset exactly once (see Reconcile).
	KindDeadLetter = Kind("dead_letter")
	// KindHandoff is the terminal record, on its source partition's
	// chain, of an ambiguous event the rule stage handed off to the
	// sampling topic; the event's decision is then the terminal record of
	// its offset in the sampling topic, on that partition's chain.
	KindHandoff = Kind("handoff")
)

// Terminal reports whether a record of kind k ends its source record's
// trail on its chain: a decision, a dead letter or a handoff. Every source
// offset below the group's committed offset has exactly one.
func (k Kind) Terminal() bool { return k == KindDecision || k == KindDeadLetter || k == KindHandoff }

// Channels of synchronous decisions (Record.Channel).
const (
	ChannelMCP  = "mcp"
	ChannelHTTP = "http"
)

// SyncChain names the hash chain of the synchronous decisions one consumer
// instance makes on a channel, "channel@instance": they have no source
// partition, and the instance is their only writer.
func SyncChain(channel, instance string) string { return channel + "@" + instance }

// Status is the result of the audited step.
type Status string

// Statuses, as DESIGN.md lists them.
const (
	StatusOK             = Status("ok")
	StatusTimeout        = Status("timeout")
	StatusError          = Status("error")
	StatusInvalidAnswer  = Status("invalid_answer")
	StatusRateLimited    = Status("rate_limited")
	StatusBudgetExceeded = Status("budget_exceeded")
	StatusDenied         = Status("denied")
)

// Record is one audit row. Field names are the JSON and ClickHouse column
// names; optional fields are omitted when empty to keep the topic compact.
type Record struct {
	AuditID  string `json:"audit_id"`
	Kind     Kind   `json:"kind"`
	EventID  string `json:"event_id"`
	Type     string `json:"type"`
	TenantID string `json:"tenant_id"`
	// UserID is the user the event is about, or the caller of a tool.
	UserID string `json:"user_id,omitempty"`
	Key    string `json:"key"`

	Path    string `json:"path"`
	RuleID  string `json:"rule_id,omitempty"`
	Outcome string `json:"outcome,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Status  Status `json:"status"`

	// Mode is how a sampling attempt reached the model: pull, push or direct.
	Mode            string `json:"mode,omitempty"`
	SamplerSession  string `json:"sampler_session,omitempty"`
	ModelRequested  string `json:"model_requested,omitempty"`
	ModelAnswered   string `json:"model_answered,omitempty"`
	InputTokens     int64  `json:"input_tokens,omitempty"`
	OutputTokens    int64  `json:"output_tokens,omitempty"`
	RequestSummary  string `json:"request_summary,omitempty"`
	ResponseSummary string `json:"response_summary,omitempty"`

	// Tier is the risk tier the rules file's tiers: put the event in, which
	// chose the model preferences of its sampling requests.
	Tier string `json:"tier,omitempty"`
	// Tool names the tool of a tool_call record.
	Tool string `json:"tool,omitempty"`
	// CacheKey is the result cache's key of a cached or cacheable sampled
	// decision: a hash of the type, the sampling rule, the rules version and
	// the masked request.
	CacheKey string `json:"cache_key,omitempty"`
	// SourceAuditID is, on a decision taken from the result cache, the
	// audit_id of the sampled decision whose answer it reuses.
	SourceAuditID string `json:"source_audit_id,omitempty"`
	// TokensEstimated says the token counts are estimated from the text's
	// length because the sampler reported none.
	TokensEstimated bool `json:"tokens_estimated,omitempty"`
	// Channel is how a synchronous decision was asked for: ChannelMCP (the
	// decide tool) or ChannelHTTP (POST /v1/decide); empty for an event
	// read from a topic. Caller names who asked: the HTTP token's name, or
	// the MCP client and session.
	Channel string `json:"channel,omitempty"`
	Caller  string `json:"caller,omitempty"`

	LatencyMS float64 `json:"latency_ms"`
	// At has millisecond precision, which is what storage keeps exactly, so
	// that the hash can be recomputed from a stored row.
	At time.Time `json:"at"`

	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Consumer  string `json:"consumer"`

	// Chain names the hash chain the record belongs to: its source
	// partition ("topic/partition"), which is also the record's Kafka key so
	// that a chain stays in order in one audit partition. Segment names one
	// member's uninterrupted ownership of that partition; Seq is the position
	// in the segment, from 0.
	Chain    string `json:"chain"`
	Segment  string `json:"segment"`
	Seq      int64  `json:"seq"`
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

// ID derives a stable audit_id, formatted as a UUID, from the event and the
// step: the n-th record of a kind for an event always gets the same id, so
// reprocessing an event after a crash does not create a second audit trail
// in storage that deduplicates on audit_id. An event is its tenant and its
// event_id: two tenants' events with one event_id get different ids.
// Records of no event (dead letters, checkpoints) pass an empty tenant and
// their position as eventID.
//
// Each string is hashed with its length in front, so that two different
// (tenant, event) pairs never hash the same bytes, whatever they contain.
func ID(tenantID, eventID string, kind Kind, n int) string {
	// The bytes are "%d:%s%d:%s%s\x00%d" of len(tenantID), tenantID,
	// len(eventID), eventID, kind and n, appended without fmt: every
	// decision derives one.
	var stack [256]byte
	b := strconv.AppendInt(stack[:0], int64(len(tenantID)), 10)
	b = append(append(b, ':'), tenantID...)
	b = strconv.AppendInt(b, int64(len(eventID)), 10)
	b = append(append(b, ':'), eventID...)
	b = append(append(b, kind...), 0)
	b = strconv.AppendInt(b, int64(n), 10)
	sum := sha256.Sum256(b)
	var h [32]byte
	hex.Encode(h[:], sum[:16])
	var id [36]byte
	copy(id[0:8], h[0:8])
	copy(id[9:13], h[8:12])
	copy(id[14:18], h[12:16])
	copy(id[19:23], h[16:20])
	copy(id[24:36], h[20:32])
	id[8], id[13], id[18], id[23] = '-', '-', '-', '-'
	return string(id[:])
}
