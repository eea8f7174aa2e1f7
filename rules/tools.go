package rules

import (
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The tools a type's sampling: block may offer the LLM (its tools: list).
// The registry is fixed: package sampling runs each tool server-side, in the
// scope of the event under decision, and audits every call; this package
// only names the tools and checks at load that the type can serve them.
const (
	// ToolTransactionHistory returns the recent events of the entity under
	// decision (same tenant, type and key, the event itself left out), as
	// the allow-listed fields masked as the type says. It needs a history
	// that the pipeline feeds (package sampling's History).
	ToolTransactionHistory = "transaction_history"
	// ToolDocumentMetadata returns DocumentMetadataFields of the event under
	// decision, those of them the allow-list has, masked as the type says.
	ToolDocumentMetadata = "document_metadata"
)

// Tools lists the registry's tool names, in the order requests offer them.
func Tools() []string { return []string{ToolTransactionHistory, ToolDocumentMetadata} }

// DocumentMetadataFields are the fields ToolDocumentMetadata may return.
// A type that offers the tool must allow-list at least one of them.
func DocumentMetadataFields() []string { return []string{"mime", "size_bytes", "template_id", "title"} }

// Bounds of a sampling block's max_tool_rounds.
const (
	// DefaultMaxToolRounds is how many rounds of tool calls a request may
	// take when the block offers tools and does not set max_tool_rounds.
	DefaultMaxToolRounds = 2
	// MaxMaxToolRounds is the largest max_tool_rounds a file may set. Every
	// round is one more LLM request holding the event's commit back, and a
	// go-sdk client stops a multi round-trip call after ten rounds: five
	// tool rounds, the final answer and a corrective round stay under it.
	MaxMaxToolRounds = 5
)

// toolList parses sampling.tools: registry names, each once.
func (p *parser) toolList(t *Type, n *yaml.Node) {
	w := where{typ: t.Name}
	list, ok := p.strs(n, w, "sampling.tools")
	if !ok {
		return
	}
	known := Tools()
	for i, name := range list {
		switch {
		case !slices.Contains(known, name):
			p.fail(n.Content[i], w, "sampling.tools: unknown tool %q: want one of %s", name, strings.Join(known, ", "))
		case slices.Contains(list[:i], name):
			p.fail(n.Content[i], w, "sampling.tools: %q listed twice", name)
		default:
			t.Sampling.Tools = append(t.Sampling.Tools, name)
		}
	}
}

// maxToolRounds parses sampling.max_tool_rounds.
func (p *parser) maxToolRounds(t *Type, n *yaml.Node) {
	w := where{typ: t.Name}
	if i, ok := p.integer(n, w, "sampling.max_tool_rounds"); ok && (i < 1 || i > MaxMaxToolRounds) {
		p.fail(n, w, "sampling.max_tool_rounds: want 1 to %d, got %d", MaxMaxToolRounds, i)
	} else if ok {
		t.Sampling.MaxToolRounds = i
	}
}

// checkTools runs once the allow-list is known: each tool must have
// something to return, and max_tool_rounds means nothing without tools.
func (p *parser) checkTools(t *Type, nodes map[string]*yaml.Node) {
	s, w := &t.Sampling, where{typ: t.Name}
	if rounds := nodes["max_tool_rounds"]; rounds != nil && nodes["tools"] == nil {
		p.fail(rounds, w, "sampling.max_tool_rounds: the block offers no tools")
	}
	if len(s.Fields) == 0 {
		return // reported already; no tool could return anything
	}
	for i, name := range s.Tools {
		at := nodes["tools"]
		if at != nil && i < len(at.Content) {
			at = at.Content[i]
		}
		switch name {
		case ToolDocumentMetadata:
			if !slices.ContainsFunc(DocumentMetadataFields(), func(f string) bool { return slices.Contains(s.Fields, f) }) {
				p.fail(at, w, "sampling.tools: %s returns allow-listed %s, and sampling.fields has none of them",
					name, strings.Join(DocumentMetadataFields(), ", "))
			}
		case ToolTransactionHistory:
			if t.Key == "" {
				p.fail(at, w, "sampling.tools: %s needs the type's key, the entity whose history it returns", name)
			}
		}
	}
}

// Masked returns the allow-listed fields ev has, each masked as the type's
// sampling: block says: what a prompt could show the LLM (Prompt.Context),
// and all that a history of the type's events may keep. It never modifies
// ev; unmasked values are ev's own, so treat them as read-only. A type
// without a sampling: block has no allow-list, and Masked returns an empty
// map.
func (t *Type) Masked(ev map[string]any) map[string]any {
	s := &t.Sampling
	out := make(map[string]any, len(s.Fields))
	for _, name := range s.Fields {
		v, ok := ev[name]
		if !ok || v == nil {
			continue
		}
		if kind, masked := s.Mask[name]; masked {
			v = MaskValue(kind, v, s.key)
		}
		out[name] = v
	}
	return out
}

// HasTool reports whether the type's sampling: block offers the named tool.
func (t *Type) HasTool(name string) bool { return slices.Contains(t.Sampling.Tools, name) }
