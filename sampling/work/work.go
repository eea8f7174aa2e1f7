package work

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ToolName is the work tool that samplers call to pull items.
const ToolName = "triage_next"

// InputKey names the sampling request in the tool's inputRequests and the
// answer in the retry's inputResponses.
const InputKey = "decision"

// UsageMetaKey is the _meta key under which a sampler reports token usage
// in a sampling result: {"inputTokens": n, "outputTokens": m}.
const UsageMetaKey = "dev.triage/usage"

// ErrorMetaKey is the _meta key of a sampling result by which a sampler
// says it could not answer the request; its value is the error's text,
// which the server audits. See [ErrorResult].
const ErrorMetaKey = "dev.triage/error"

// MetaTimeoutMS is the key of the request metadata under which triage
// sends the item's sampling timeout, in milliseconds: the lease on the
// item ends then, and an answer after it is discarded. A sampler should
// give up on the request at that point, so that a model that hangs does
// not hold one of its slots for good.
const MetaTimeoutMS = "timeout_ms"

// AnswerTimeout returns the MetaTimeoutMS of a sampling request, if it has
// a positive one.
func AnswerTimeout(p *mcp.CreateMessageParams) (time.Duration, bool) {
	if p == nil {
		return 0, false
	}
	return timeoutOf(p.Metadata)
}

// AnswerTimeoutWithTools is [AnswerTimeout] for a sampling request with
// tools.
func AnswerTimeoutWithTools(p *mcp.CreateMessageWithToolsParams) (time.Duration, bool) {
	if p == nil {
		return 0, false
	}
	return timeoutOf(p.Metadata)
}

// timeoutOf reads MetaTimeoutMS from request metadata.
func timeoutOf(metadata any) (time.Duration, bool) {
	m, ok := metadata.(map[string]any)
	if !ok {
		return 0, false
	}
	var ms float64
	switch v := m[MetaTimeoutMS].(type) {
	case float64:
		ms = v
	case int64:
		ms = float64(v)
	case int:
		ms = float64(v)
	default:
		return 0, false
	}
	if ms <= 0 || ms > float64(24*time.Hour/time.Millisecond) {
		return 0, false
	}
	return time.Duration(ms * float64(time.Millisecond)), true
}

// MetaTemperature is the key of the request metadata (params.metadata)
// under which triage repeats the temperature it asks for, when the type
// sets one: the MCP SDKs omit a zero temperature from the request, and 0
// (deterministic answers) must not become the provider's default. A
// sampler should prefer it to the temperature field.
const MetaTemperature = "temperature"

// MetaSchema is the key of the request metadata under which triage sends
// the JSON Schema the answer must follow (llm.AnswerSchema of the type's
// outcomes). A sampler whose provider can constrain its output to a schema
// (structured outputs) should pass it on; the answer is validated either
// way.
const MetaSchema = "schema"

// Protocol versions that decide how the sampling request travels.
const (
	// ProtocolMRTR is the first MCP version with multi round-trip requests
	// (SEP-2322) and without server-initiated requests: the client fulfils
	// the input request and retries the call.
	ProtocolMRTR = "2026-07-28"
	// ProtocolLegacy is the newest MCP version with server-initiated
	// requests: the server sends sampling/createMessage itself, which push
	// needs.
	ProtocolLegacy = "2025-11-25"
)

// Bounds of Args.WaitMS.
const (
	// DefaultWaitMS is the long-poll wait when wait_ms is absent or 0.
	DefaultWaitMS = 20000
	// MaxWaitMS is the longest wait; larger values are treated as this.
	MaxWaitMS = 30000
)

// Args are the work tool's arguments.
type Args struct {
	// WaitMS is how long to wait for work before returning idle, in
	// milliseconds. 0 means DefaultWaitMS; more than MaxWaitMS means
	// MaxWaitMS.
	WaitMS int `json:"wait_ms,omitempty" jsonschema:"milliseconds to wait for work before returning idle (default 20000, max 30000)"`
	// Sampler names the calling sampler in audit records; stateless
	// (2026-07-28) sessions carry no client info of their own.
	Sampler string `json:"sampler,omitempty" jsonschema:"name of the sampler, recorded in audit records"`
	// Tools declares that the sampler runs tool loops: its input requests
	// may then be sampling/createMessage with tools (2025-11-25's sampling
	// with tools), whose answers may be tool_use content the server runs
	// and answers on the same lease. Stateless (2026-07-28) calls carry no
	// client capabilities, so a sampler says it here; without it the
	// requests offer no tools.
	Tools bool `json:"tools,omitempty" jsonschema:"the sampler can answer sampling requests that offer tools (tool_use / tool_result)"`
	// Items, when more than 1, lets the call take up to that many items
	// (at most MaxItems): the first as soon as one is queued, the others
	// if they are queued at that moment. Their requests are the input
	// requests InputKeyOf(0), InputKeyOf(1), ..., answered together in one
	// retry (which a go-sdk client's middleware does, concurrently), and
	// the final result lists each item's in Items. One call then carries
	// the MCP round trips of several items: fewer messages per decision.
	Items int `json:"items,omitempty" jsonschema:"most items to take in one call (default 1, max 16)"`
	// Rounds, on 2026-07-28, is how many input rounds the sampler's client
	// takes in one call before it gives up (GoSDKRounds for a go-sdk
	// client). With it, a retry whose answers leave fewer items out than
	// Items may take further items in a further round, instead of ending
	// the call and costing a round trip per item to start the next one:
	// while the call is within its first wait, it carries fewer than
	// MaxItems items in all, and each new item's longest exchange (its
	// tool rounds and the corrective round) fits in the rounds left. So a
	// call's answer carries the next item's request, and a decision costs
	// one round trip instead of two; the final result lists them all.
	// 0, or an older session, ends the call once its items are done.
	Rounds int `json:"rounds,omitempty" jsonschema:"most input rounds the client takes in one call: the server may add queued items to later rounds (0: none)"`
}

// MaxItems bounds Args.Items, and the items one call carries in all.
const MaxItems = 16

// GoSDKRounds is Args.Rounds for a go-sdk client: its multi round-trip
// middleware retries a call at most 10 times, so the 10th result must be
// the final one.
const GoSDKRounds = 9

// InputKeyOf names the input request of a call's i-th item: InputKey for
// the first, InputKey.i for the others.
func InputKeyOf(i int) string {
	if i == 0 {
		return InputKey
	}
	return InputKey + "." + strconv.Itoa(i)
}

// ItemResult is one item's result in Result.Items.
type ItemResult struct {
	Status   Status `json:"status" jsonschema:"decided, fallback or expired"`
	EventID  string `json:"event_id,omitempty" jsonschema:"the item's event"`
	TenantID string `json:"tenant_id,omitempty" jsonschema:"the tenant of the item's event"`
	Outcome  string `json:"outcome,omitempty" jsonschema:"the outcome decided (status decided only)"`
	Reason   string `json:"reason,omitempty" jsonschema:"decided: the model's reason; fallback, expired: what went wrong"`
}

// Status is the outcome of one work tool call.
type Status string

// The statuses of a final result.
const (
	// StatusIdle: no work arrived within the wait; call again.
	StatusIdle Status = "idle"
	// StatusDecided: the answer decided the item; Outcome is the outcome.
	StatusDecided Status = "decided"
	// StatusFallback: the answer did not settle the item (it did not fit
	// the decision schema even after the corrective round, or no answer
	// came back); Reason says why. The consumer re-queues the item once or
	// records its conservative fallback.
	StatusFallback Status = "fallback"
	// StatusExpired: the lease is unknown or expired before the answer
	// arrived; the item went back to the queue or fell back.
	StatusExpired Status = "expired"
)

// Statuses lists every status, in the order of the output schema's enum.
var Statuses = []Status{StatusIdle, StatusDecided, StatusFallback, StatusExpired}

// Result is the work tool's final structured result.
type Result struct {
	// Status says how the call ended.
	Status Status `json:"status" jsonschema:"idle, decided, fallback or expired"`
	// EventID is the item's event id; empty for idle and for an unknown
	// lease.
	EventID string `json:"event_id,omitempty" jsonschema:"the event the call was about; absent when idle or the lease is unknown"`
	// TenantID is the event's tenant: an event is (tenant_id, event_id).
	TenantID string `json:"tenant_id,omitempty" jsonschema:"the tenant of the event the call was about; absent with event_id"`
	// Outcome is the decided outcome, one of the request's
	// metadata.outcomes; set only when Status is decided.
	Outcome string `json:"outcome,omitempty" jsonschema:"the outcome decided (status decided only)"`
	// Reason is the model's stated reason when decided, and what went wrong
	// on fallback or expired.
	Reason string `json:"reason,omitempty" jsonschema:"decided: the model's reason; fallback, expired: what went wrong"`
	// Items is each item's result when the call took several (Args.Items);
	// the fields above are then the first item's.
	Items []ItemResult `json:"items,omitempty" jsonschema:"each item's result, when the call took several"`
}

// Item is r as an ItemResult.
func (r Result) Item() ItemResult {
	return ItemResult{Status: r.Status, EventID: r.EventID, TenantID: r.TenantID, Outcome: r.Outcome, Reason: r.Reason}
}

// ResultSchema is the work tool's output schema: Result's inferred schema
// with status restricted to Statuses.
func ResultSchema() (*jsonschema.Schema, error) {
	s, err := jsonschema.For[Result](nil)
	if err != nil {
		return nil, fmt.Errorf("work: schema of the result: %w", err)
	}
	status := s.Properties["status"]
	if status == nil {
		return nil, errors.New("work: schema of the result has no status property")
	}
	for _, st := range Statuses {
		status.Enum = append(status.Enum, string(st))
	}
	return s, nil
}
