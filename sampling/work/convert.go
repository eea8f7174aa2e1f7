package work

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/llm"
)

// ErrUnsupported is wrapped by conversion errors for requests a sampler
// cannot answer (non-text content, unknown roles, malformed preferences).
// Retrying such a request cannot help.
var ErrUnsupported = errors.New("unsupported sampling request")

// RequestFromMCP converts MCP sampling parameters into a provider-neutral
// request. Only text content is supported; any other content type, a role
// other than "user" or "assistant", priorities outside 0..1, a negative
// temperature or maxTokens, or metadata that is not a JSON object is an
// error wrapping [ErrUnsupported].
//
// Zero temperature and zero priorities map to "unset" (nil): the go-sdk
// omits them from the wire when zero, so they cannot be told apart.
func RequestFromMCP(p *mcp.CreateMessageParams) (llm.Request, error) {
	if p == nil {
		return llm.Request{}, fmt.Errorf("work: %w: no params", ErrUnsupported)
	}
	msgs := make([]llm.Message, 0, len(p.Messages))
	for i, m := range p.Messages {
		if m == nil {
			return llm.Request{}, fmt.Errorf("work: %w: message %d is null", ErrUnsupported, i)
		}
		if err := checkRole(i, m.Role); err != nil {
			return llm.Request{}, err
		}
		text, ok := m.Content.(*mcp.TextContent)
		if !ok || text == nil {
			return llm.Request{}, fmt.Errorf("work: %w: message %d has %s content (only text is supported)", ErrUnsupported, i, contentKind(m.Content))
		}
		msgs = append(msgs, llm.Message{Role: string(m.Role), Text: text.Text})
	}
	return requestFrom(sampling{
		system: p.SystemPrompt, stop: p.StopSequences, prefs: p.ModelPreferences,
		temperature: p.Temperature, maxTokens: p.MaxTokens, metadata: p.Metadata,
	}, msgs)
}

// sampling holds the fields that CreateMessageParams and
// CreateMessageWithToolsParams share besides their messages.
type sampling struct {
	system      string
	stop        []string
	prefs       *mcp.ModelPreferences
	temperature float64
	maxTokens   int64
	metadata    any
}

// requestFrom checks and converts the shared fields (see [RequestFromMCP])
// into a request with msgs.
func requestFrom(p sampling, msgs []llm.Message) (llm.Request, error) {
	req := llm.Request{System: p.system, Stop: p.stop, Messages: msgs}
	if len(req.Messages) == 0 {
		return llm.Request{}, fmt.Errorf("work: %w: no messages", ErrUnsupported)
	}
	var err error
	if req.Preferences, err = preferencesFromMCP(p.prefs); err != nil {
		return llm.Request{}, err
	}
	switch {
	case p.temperature < 0 || math.IsNaN(p.temperature) || math.IsInf(p.temperature, 0):
		return llm.Request{}, fmt.Errorf("work: %w: temperature %v", ErrUnsupported, p.temperature)
	case p.temperature > 0:
		req.Temperature = &p.temperature
	}
	if t, ok := metadataTemperature(p.metadata); ok {
		if t < 0 || math.IsNaN(t) || math.IsInf(t, 0) {
			return llm.Request{}, fmt.Errorf("work: %w: metadata temperature %v", ErrUnsupported, t)
		}
		req.Temperature = &t
	}
	if p.maxTokens < 0 || p.maxTokens > math.MaxInt32 {
		return llm.Request{}, fmt.Errorf("work: %w: maxTokens %d", ErrUnsupported, p.maxTokens)
	}
	req.MaxTokens = int(p.maxTokens)
	if req.Metadata, err = metadataFromMCP(p.metadata); err != nil {
		return llm.Request{}, err
	}
	if s, ok := req.Metadata[MetaSchema].(map[string]any); ok {
		req.Schema = s
	}
	return req, nil
}

// checkRole accepts the roles a provider knows.
func checkRole(i int, role mcp.Role) error {
	if role != llm.RoleUser && role != llm.RoleAssistant {
		return fmt.Errorf("work: %w: message %d has role %q (want user or assistant)", ErrUnsupported, i, role)
	}
	return nil
}

// ResultToMCP converts a provider response into the MCP sampling result: an
// assistant text message with the answering model and stop reason, and the
// token usage in _meta under [UsageMetaKey] unless both counts are zero
// (unknown).
func ResultToMCP(r llm.Response) *mcp.CreateMessageResult {
	return &mcp.CreateMessageResult{
		Role:       "assistant",
		Content:    &mcp.TextContent{Text: r.Text},
		Model:      r.Model,
		StopReason: r.StopReason,
		Meta:       usageMeta(r),
	}
}

// usageMeta is the _meta of a result: the usage under [UsageMetaKey], nil
// when both counts are zero (unknown).
func usageMeta(r llm.Response) mcp.Meta {
	if r.InputTokens == 0 && r.OutputTokens == 0 {
		return nil
	}
	return mcp.Meta{UsageMetaKey: map[string]any{
		"inputTokens":  r.InputTokens,
		"outputTokens": r.OutputTokens,
	}}
}

// UsageFromMeta reads the token usage a sampler reported under
// [UsageMetaKey], in either its Go form (int64, as [ResultToMCP] writes it)
// or as decoded from JSON (float64). ok is false when no usage is reported.
func UsageFromMeta(m mcp.Meta) (in, out int64, ok bool) {
	u, found := m[UsageMetaKey].(map[string]any)
	if !found {
		return 0, 0, false
	}
	in, okIn := tokenCount(u["inputTokens"])
	out, okOut := tokenCount(u["outputTokens"])
	return in, out, okIn || okOut
}

// ResponseFromMCP reads a sampling answer as the server receives it in the
// retry's inputResponses[InputKey] or from sampling/createMessage: a
// *mcp.CreateMessageResult (what a client sends on 2026-07-28, and the
// result of a pushed request) or a *mcp.CreateMessageWithToolsResult (what
// go-sdk's server-side middleware delivers for older clients, and what a
// sampler answers a request with tools with). The text is the
// concatenation of the text contents, and the tool_use contents are the
// ToolCalls, in order (a request with tools may get them, with stopReason
// "toolUse"); other content is ignored. Usage comes from [UsageFromMeta].
// ok is false for anything else, including a nil result.
func ResponseFromMCP(v any) (r llm.Response, ok bool) {
	res, ok := unpackResult(v)
	if !ok {
		return r, false
	}
	r.Model, r.StopReason = res.model, res.stopReason
	for _, c := range res.contents {
		switch c := c.(type) {
		case *mcp.TextContent:
			if c != nil {
				r.Text += c.Text
			}
		case *mcp.ToolUseContent:
			if c == nil {
				continue
			}
			r.ToolCalls = append(r.ToolCalls, llm.ToolCall{ID: c.ID, Name: c.Name, Input: c.Input})
		}
	}
	r.InputTokens, r.OutputTokens, _ = UsageFromMeta(res.meta)
	return r, true
}

// ErrorResult is the sampling result by which a sampler says it could not
// answer: no text, stop reason "error", and err's text under
// [ErrorMetaKey]. A result rather than a JSON-RPC error, because on
// 2026-07-28 a client's handler error ends the tool call on the client's
// side and never reaches the server, which would only learn of it when the
// lease expired.
func ErrorResult(err error) *mcp.CreateMessageResult {
	return &mcp.CreateMessageResult{
		Role: "assistant", Content: &mcp.TextContent{}, StopReason: "error",
		Meta: mcp.Meta{ErrorMetaKey: err.Error()},
	}
}

// AnswerError returns the error text of a sampling result made by
// [ErrorResult], as the server receives it (see [ResponseFromMCP]).
func AnswerError(v any) (string, bool) {
	res, ok := unpackResult(v)
	if !ok {
		return "", false
	}
	msg, ok := res.meta[ErrorMetaKey].(string)
	return msg, ok
}

type unpacked struct {
	model, stopReason string
	meta              mcp.Meta
	contents          []mcp.Content
}

func unpackResult(v any) (unpacked, bool) {
	switch res := v.(type) {
	case *mcp.CreateMessageResult:
		if res == nil {
			return unpacked{}, false
		}
		return unpacked{res.Model, res.StopReason, res.Meta, []mcp.Content{res.Content}}, true
	case *mcp.CreateMessageWithToolsResult:
		if res == nil {
			return unpacked{}, false
		}
		return unpacked{res.Model, res.StopReason, res.Meta, res.Content}, true
	}
	return unpacked{}, false
}

func tokenCount(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case float64:
		if n < 0 || n > math.MaxInt64 || n != math.Trunc(n) {
			return 0, false
		}
		return int64(n), true
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	}
	return 0, false
}

func preferencesFromMCP(mp *mcp.ModelPreferences) (llm.Preferences, error) {
	var prefs llm.Preferences
	if mp == nil {
		return prefs, nil
	}
	for _, h := range mp.Hints {
		if h != nil && h.Name != "" {
			prefs.Hints = append(prefs.Hints, h.Name)
		}
	}
	for _, f := range []struct {
		name string
		v    float64
		dst  **float64
	}{
		{"costPriority", mp.CostPriority, &prefs.CostPriority},
		{"speedPriority", mp.SpeedPriority, &prefs.SpeedPriority},
		{"intelligencePriority", mp.IntelligencePriority, &prefs.IntelligencePriority},
	} {
		if !(f.v >= 0 && f.v <= 1) { // also rejects NaN
			return prefs, fmt.Errorf("work: %w: %s %v is outside 0..1", ErrUnsupported, f.name, f.v)
		}
		if f.v > 0 {
			v := f.v
			*f.dst = &v
		}
	}
	return prefs, nil
}

// metadataTemperature reads MetaTemperature from request metadata, as
// decoded from JSON (float64) or set in process (float64).
func metadataTemperature(v any) (float64, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return 0, false
	}
	t, ok := m[MetaTemperature].(float64)
	return t, ok
}

// metadataFromMCP accepts the decoded JSON object the wire delivers
// (map[string]any) and, for in-process callers, any value that marshals to
// a JSON object.
func metadataFromMCP(v any) (map[string]any, error) {
	switch m := v.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return m, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("work: %w: metadata: %v", ErrUnsupported, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("work: %w: metadata is not a JSON object", ErrUnsupported)
	}
	return m, nil
}

func contentKind(c mcp.Content) string {
	switch c.(type) {
	case nil:
		return "no"
	case *mcp.ImageContent:
		return "image"
	case *mcp.AudioContent:
		return "audio"
	case *mcp.ToolUseContent:
		return "tool_use"
	case *mcp.ToolResultContent:
		return "tool_result"
	case *mcp.ResourceLink:
		return "resource_link"
	case *mcp.EmbeddedResource:
		return "resource"
	}
	return fmt.Sprintf("%T", c)
}
