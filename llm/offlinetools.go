package llm

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// The offline scorer's tools, as the package documentation describes them
// ("Tools"): the tool it asks for once, and how it reads the answer.
const (
	// HistoryTool is the transaction tool the offline scorer calls.
	HistoryTool = "transaction_history"
	// MetadataTool is the document tool the offline scorer calls.
	MetadataTool = "document_metadata"
)

// Bounds of a borderline day's velocity: the offline scorer asks for the
// account's history when the transactions in the last 24 hours are within
// them. Above 40 is a risk feature of its own (riskFeatures), so the band
// straddles it: either way the history can tip the decision.
const (
	borderlineMin = 30
	borderlineMax = 60
)

// historyLimit is how many past transactions the offline scorer asks for,
// or fewer when the tool's schema says a smaller "limit" maximum.
const historyLimit = 10

// historySeveral is how many past amounts above the 30-day average make the
// history a risk feature, with historyWeight: alone it is the medium tier
// (review).
const (
	historySeveral = 3
	historyWeight  = 0.3
)

// unknownTemplateRe finds a document whose template is unknown, as the
// default template renders it ("Template: unknown") or in prose.
var unknownTemplateRe = regexp.MustCompile(`(?i)\btemplate\b[:=\s]+unknown\b`)

// offlineToolFor names the tool the offline scorer would ask for under a
// decision schema, in score's order of schema kinds; "" for none.
func offlineToolFor(outcomes []string) string {
	switch {
	case slices.Contains(outcomes, "contains_pii"):
		return MetadataTool
	case transactionLike(outcomes):
		return HistoryTool
	}
	return ""
}

// offlineToolCall returns the one tool call the offline scorer makes, if
// the request calls for it: its tool is offered, the tool choice allows it,
// the conversation holds no tool call or result yet, and the item needs it
// (a borderline velocity, an unknown template) or the choice requires a
// call.
func offlineToolCall(req Request, outcomes []string, text string) (ToolCall, bool) {
	name := offlineToolFor(outcomes)
	i := slices.IndexFunc(req.Tools, func(t Tool) bool { return t.Name == name })
	if name == "" || i < 0 || req.ToolChoice == ToolChoiceNone {
		return ToolCall{}, false
	}
	for _, m := range req.Messages {
		if len(m.ToolCalls) > 0 || len(m.ToolResults) > 0 {
			return ToolCall{}, false // once per conversation
		}
	}
	var needed bool
	input := map[string]any{}
	switch name {
	case HistoryTool:
		n, ok := number(txnCountRe, text, false)
		needed = ok && n >= borderlineMin && n <= borderlineMax
		input["limit"] = limitFor(req.Tools[i])
	case MetadataTool:
		needed = unknownTemplateRe.MatchString(text)
	}
	if !needed && req.ToolChoice != ToolChoiceRequired {
		return ToolCall{}, false
	}
	// The id is the event's, so that the same request always gets the
	// same call; the text stands in without an event id.
	h := fnv.New64a()
	if id, ok := req.Metadata["event_id"].(string); ok && id != "" {
		h.Write([]byte(id))
	} else {
		h.Write([]byte(text))
	}
	h.Write([]byte{0})
	h.Write([]byte(name))
	return ToolCall{ID: fmt.Sprintf("offline_%016x", h.Sum64()), Name: name, Input: input}, true
}

// limitFor is historyLimit within the maximum that tool's schema sets for
// "limit", if any: a call the server would refuse is a wasted round.
func limitFor(tool Tool) int {
	props, _ := tool.InputSchema["properties"].(map[string]any)
	limit, _ := props["limit"].(map[string]any)
	switch m := limit["maximum"].(type) {
	case float64:
		if m >= 1 && m < historyLimit {
			return int(m)
		}
	case int:
		if m >= 1 && m < historyLimit {
			return m
		}
	}
	return historyLimit
}

// toolResults returns the results in the conversation of the calls to the
// named tool, in order.
func toolResults(msgs []Message, name string) []ToolResult {
	calls := map[string]bool{}
	var out []ToolResult
	for _, m := range msgs {
		for _, c := range m.ToolCalls {
			if c.Name == name {
				calls[c.ID] = true
			}
		}
		for _, r := range m.ToolResults {
			if calls[r.CallID] {
				out = append(out, r)
			}
		}
	}
	return out
}

// evidence is what tool results add to the offline score: more text to
// read, features, and notes for the reason.
type evidence struct {
	text     string // appended to the scored text
	features []feature
	notes    []string
}

type feature struct {
	name   string
	weight float64
}

// toolEvidence reads the conversation's results of the offline scorer's
// tool for the schema: every result, not only the last user message's, so
// that a corrective round after the tool loop decides as the loop did.
func toolEvidence(msgs []Message, outcomes []string, text string) evidence {
	var ev evidence
	name := offlineToolFor(outcomes)
	for _, r := range toolResults(msgs, name) {
		if r.IsError {
			ev.notes = append(ev.notes, name+" failed: "+clip(r.Content, 80))
			continue
		}
		switch name {
		case HistoryTool:
			historyEvidence(&ev, r.Content, text)
		case MetadataTool:
			// The metadata is read like the document: a template or an
			// author can carry the personal data the text does not.
			ev.text += "\n" + r.Content
			ev.notes = append(ev.notes, "used "+MetadataTool)
		}
	}
	return ev
}

// historyEvidence compares the past amounts of a transaction_history
// result with the 30-day average in text: several above it is a risk
// feature. The result lists the past transactions under "events" (as
// triage's consumer answers, {"events": [{"amount": 12.5, ...}], "count":
// 1}) or "transactions".
func historyEvidence(ev *evidence, content, text string) {
	type past []struct {
		Amount *float64 `json:"amount"`
	}
	var h struct {
		Events       past `json:"events"`
		Transactions past `json:"transactions"`
	}
	if err := json.Unmarshal([]byte(content), &h); err != nil || (h.Events == nil && h.Transactions == nil) {
		ev.notes = append(ev.notes, HistoryTool+" result unreadable")
		return
	}
	h.Transactions = append(h.Transactions, h.Events...)
	avg, ok := number(avgAmountRe, text, false)
	if !ok || avg <= 0 {
		ev.notes = append(ev.notes, fmt.Sprintf("used %s: %d transactions, no average to compare", HistoryTool, len(h.Transactions)))
		return
	}
	above := 0
	for _, t := range h.Transactions {
		if t.Amount != nil && *t.Amount > avg {
			above++
		}
	}
	ev.notes = append(ev.notes, fmt.Sprintf("used %s: %d of %d past amounts above the average", HistoryTool, above, len(h.Transactions)))
	if above >= historySeveral {
		ev.features = append(ev.features, feature{"history above the average", historyWeight})
	}
}

// clip shortens s to n bytes at most, on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// toolChars is the size of a conversation's tool parts, for the token
// approximation.
func toolChars(msgs []Message) int {
	n := 0
	for _, m := range msgs {
		for _, r := range m.ToolResults {
			n += len(r.Content)
		}
		for _, c := range m.ToolCalls {
			n += callChars(c)
		}
	}
	return n
}

// callChars is a tool call's size as its name and JSON input.
func callChars(c ToolCall) int {
	b, _ := json.Marshal(c.Input) // from JSON or offlineToolCall: marshals
	return len(c.Name) + len(b)
}

// reasonWith appends the notes to a reason.
func reasonWith(reason string, notes []string) string {
	if len(notes) == 0 {
		return reason
	}
	return reason + "; " + strings.Join(notes, "; ")
}
