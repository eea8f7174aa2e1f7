package sampling

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
)

// maxCallsPerRound bounds the tool calls of one model turn that are run;
// the rest are answered with an error, so one turn cannot make the server
// do unbounded work.
const maxCallsPerRound = 4

// toolbox holds the tools one conversation offers and runs them in the
// scope of its event: the tenant, type and key of the event under
// decision, whatever the model asks for. Executors are in-memory and
// quick (they run under the pool's lock).
type toolbox struct {
	item    pipeline.Item
	context map[string]any // the event's masked allow-listed fields (rules.Prompt.Context)
	history *History
	defs    []llm.Tool
}

// newToolbox returns the tools of the event's type, or nil when it offers
// none. transaction_history needs a history: without one it is not
// offered.
func newToolbox(it pipeline.Item, pr rules.Prompt, h *History) *toolbox {
	b := &toolbox{item: it, context: pr.Context, history: h}
	for _, name := range pr.Tools {
		if name == rules.ToolTransactionHistory && h == nil {
			continue
		}
		b.defs = append(b.defs, b.def(name))
	}
	if len(b.defs) == 0 {
		return nil
	}
	return b
}

// def is the tool's definition as the model sees it. The key argument is
// named after the type's key field (account_id for transactions, doc_id
// for documents) and may only name the entity under decision.
func (b *toolbox) def(name string) llm.Tool {
	key := b.item.Type.Key
	props := map[string]any{
		key: map[string]any{"type": "string",
			"description": "Only the " + key + " of the event under decision is allowed; omit it."},
		"tenant_id": map[string]any{"type": "string",
			"description": "Only the tenant of the event under decision is allowed; omit it."},
	}
	t := llm.Tool{Name: name, InputSchema: map[string]any{"type": "object", "properties": props, "additionalProperties": false}}
	switch name {
	case rules.ToolTransactionHistory:
		props["limit"] = map[string]any{"type": "integer", "minimum": 1, "maximum": b.history.PerKey(),
			"description": fmt.Sprintf("how many of the most recent events to return (default and at most %d)", b.history.PerKey())}
		t.Description = fmt.Sprintf("The most recent earlier %s events of the same %s as the event under decision, newest first, "+
			"with the fields the request shows, masked the same way. Only that %s's history is available. "+
			"The window holds what this consumer has seen lately, so it may be short or empty.", b.item.Type.Name, key, key)
	case rules.ToolDocumentMetadata:
		t.Description = fmt.Sprintf("The metadata (%s) of the %s under decision, masked as in the request; only that %s is available.",
			strings.Join(rules.DocumentMetadataFields(), ", "), b.item.Type.Name, b.item.Type.Name)
	}
	return t
}

// toolError is why a call was refused or failed: the tool result's text
// (is_error) and the audit record's reason.
type toolError struct {
	status audit.Status // StatusDenied or StatusError
	reason string
}

// run executes one call and returns its result and audit record.
func (b *toolbox) run(c *conversation, mode, session string, call llm.ToolCall) (llm.ToolResult, audit.Record) {
	started := time.Now()
	content, terr := b.exec(call)
	res := llm.ToolResult{CallID: call.ID, Content: content}
	status, reason := audit.StatusOK, ""
	if terr != nil {
		status, reason = terr.status, terr.reason
		res.Content, res.IsError = reason, true
	}
	return res, toolRecord(c, mode, session, started, call, res, status, reason)
}

// refuse answers a call that is not run at all (too many in one turn).
func (b *toolbox) refuse(c *conversation, mode, session string, call llm.ToolCall, reason string) (llm.ToolResult, audit.Record) {
	res := llm.ToolResult{CallID: call.ID, Content: reason, IsError: true}
	return res, toolRecord(c, mode, session, time.Now(), call, res, audit.StatusError, reason)
}

func (b *toolbox) exec(call llm.ToolCall) (string, *toolError) {
	if !slices.ContainsFunc(b.defs, func(t llm.Tool) bool { return t.Name == call.Name }) {
		return "", &toolError{audit.StatusError, fmt.Sprintf("unknown tool %q: this request offers %s", call.Name, b.names())}
	}
	limit, terr := b.checkArgs(call)
	if terr != nil {
		return "", terr
	}
	var out any
	switch call.Name {
	case rules.ToolTransactionHistory:
		ev := b.item.Event
		recent := b.history.Recent(b.item.Type, ev.TenantID, ev.Key, ev.ID, limit)
		if recent == nil {
			recent = []map[string]any{}
		}
		out = map[string]any{"events": recent, "count": len(recent)}
	case rules.ToolDocumentMetadata:
		meta := map[string]any{}
		for _, f := range rules.DocumentMetadataFields() {
			if v, ok := b.context[f]; ok {
				meta[f] = v
			}
		}
		out = meta
	}
	data, err := json.Marshal(out)
	if err != nil {
		return "", &toolError{audit.StatusError, "cannot encode the result: " + err.Error()}
	}
	return string(data), nil
}

// checkArgs enforces the event's scope before anything else: a key or
// tenant other than the event's own is refused (denied), whatever else the
// call holds; then unknown arguments and a bad limit are errors.
func (b *toolbox) checkArgs(call llm.ToolCall) (limit int, _ *toolError) {
	ev, key := b.item.Event, b.item.Type.Key
	if v, ok := call.Input["tenant_id"]; ok && !isString(v, ev.TenantID) {
		return 0, &toolError{audit.StatusDenied, fmt.Sprintf("tenant_id %s is not the tenant of the event under decision: "+
			"only its own data is available", quoteArg(v))}
	}
	// The key may come as the model saw it: masked, when the allow-list
	// has it.
	masked, _ := b.context[key].(string)
	if v, ok := call.Input[key]; ok && !isString(v, ev.Key) && (masked == "" || !isString(v, masked)) {
		return 0, &toolError{audit.StatusDenied, fmt.Sprintf("%s %s is not the %s of the event under decision: "+
			"only its own data is available", key, quoteArg(v), key)}
	}
	for name, v := range call.Input {
		switch {
		case name == key || name == "tenant_id":
		case name == "limit" && call.Name == rules.ToolTransactionHistory:
			n, ok := v.(float64) // JSON numbers, as the wire and the providers decode them
			if i, isInt := v.(int); isInt {
				n, ok = float64(i), true
			}
			if !ok || n != math.Trunc(n) || n < 1 || n > float64(b.history.PerKey()) {
				return 0, &toolError{audit.StatusError, fmt.Sprintf("limit %s: want an integer from 1 to %d", quoteArg(v), b.history.PerKey())}
			}
			limit = int(n)
		default:
			return 0, &toolError{audit.StatusError, fmt.Sprintf("unknown argument %q", name)}
		}
	}
	return limit, nil
}

func (b *toolbox) names() string {
	names := make([]string, len(b.defs))
	for i, t := range b.defs {
		names[i] = t.Name
	}
	return strings.Join(names, ", ")
}

// isString reports whether v is the string s. Arguments are the model's
// JSON: any value, so never compared as interfaces (a list would panic).
func isString(v any, s string) bool {
	x, ok := v.(string)
	return ok && x == s
}

// quoteArg shows an argument's value in a reason, bounded.
func quoteArg(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%T", v)
	}
	return clip(string(data), 64)
}

// toolRecord is the audit record of one tool call: its arguments as the
// request summary, its (clipped) result as the response summary.
func toolRecord(c *conversation, mode, session string, started time.Time, call llm.ToolCall, res llm.ToolResult, status audit.Status, reason string) audit.Record {
	args, err := json.Marshal(call.Input)
	if err != nil {
		args = []byte(fmt.Sprintf("%q", "unencodable arguments: "+err.Error()))
	}
	a := stepRecord(c, audit.KindToolCall, mode, session, started, status, reason)
	a.Tool = clip(call.Name, 64)
	a.RequestSummary = clip(string(args), 1024)
	a.ResponseSummary = clip(res.Content, 1024)
	return a
}
