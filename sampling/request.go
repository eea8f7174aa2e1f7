package sampling

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
	"github.com/triage-dev/triage/sampling/work"
)

// promptOf is the item's sampling request: rendered by a guard in front,
// or now.
func promptOf(it pipeline.Item) (rules.Prompt, error) {
	if it.Prompt != nil {
		return *it.Prompt, nil
	}
	pr, err := it.Type.Prompt(it.Event.Fields, it.Rule.RuleID)
	if err != nil {
		return rules.Prompt{}, fmt.Errorf("sampling: build request for %s: %w", it.Event.ID, err)
	}
	return pr, nil
}

// conversation is one sampling exchange: the rendered prompt, the rounds
// of tool calls and their results when the type offers tools, and the bad
// answer and the corrective follow-up when an answer did not fit the
// decision schema.
type conversation struct {
	item   pipeline.Item
	prompt rules.Prompt
	turns  []llm.Message
	// schema is the answer's JSON Schema, built once for every request of
	// the exchange (metadata and direct mode share it; nothing mutates it).
	schema map[string]any
	// tools are the type's tools, nil when it offers none.
	tools *toolbox
	// rounds counts the rounds of tool calls run; offered says whether the
	// request built last offered tools; corrected, whether the corrective
	// follow-up was asked.
	rounds    int
	offered   bool
	corrected bool
}

func newConversation(it pipeline.Item, pr rules.Prompt, h *History) *conversation {
	return &conversation{item: it, prompt: pr, turns: []llm.Message{{Role: llm.RoleUser, Text: pr.User}},
		schema: llm.AnswerSchema(it.Type.Outcomes), tools: newToolbox(it, pr, h)}
}

// correct appends the bad answer and the follow-up asking for a valid one.
func (c *conversation) correct(bad string, problem error) {
	c.corrected = true
	c.turns = append(c.turns,
		llm.Message{Role: llm.RoleAssistant, Text: bad},
		llm.Message{Role: llm.RoleUser, Text: c.item.Type.CorrectivePrompt(bad, problem.Error())})
}

// offer says whether the next request offers tools to a sampler that can
// (capable) or cannot run them: only while rounds are left, and not in the
// corrective round, whose answer must be the decision.
func (c *conversation) offer(capable bool) bool {
	return capable && c.tools != nil && c.rounds < c.prompt.MaxToolRounds && !c.corrected
}

// answerNow ends the tool results of the last round when no more tools are
// offered, so that the model answers instead of asking again.
const answerNow = "No more tools may be called. Answer now with exactly one JSON object, as the system prompt says."

// messages are the turns of the next request. With tools offered they go
// as they are; without, tool calls and results become text (a sampler or
// provider that runs no tools needs none of their structure, and a request
// without tools must not carry tool blocks), and a last round of results
// is followed by answerNow.
func (c *conversation) messages(offered bool) []llm.Message {
	if offered {
		return slices.Clone(c.turns)
	}
	out := make([]llm.Message, 0, len(c.turns))
	for _, t := range c.turns {
		text := turnText(t)
		if n := len(out); n > 0 && out[n-1].Role == t.Role {
			// Only after a tool turn: user and assistant otherwise alternate.
			out[n-1].Text += "\n\n" + text
			continue
		}
		out = append(out, llm.Message{Role: t.Role, Text: text})
	}
	if last := c.turns[len(c.turns)-1]; len(last.ToolResults) > 0 {
		out[len(out)-1].Text += "\n\n" + answerNow
	}
	return out
}

// turnText is a turn as plain text: its text, then its tool calls or
// results, one line each.
func turnText(t llm.Message) string {
	lines := make([]string, 0, 1+len(t.ToolCalls)+len(t.ToolResults))
	if t.Text != "" {
		lines = append(lines, t.Text)
	}
	for _, call := range t.ToolCalls {
		args, _ := json.Marshal(call.Input) // decoded JSON: it encodes
		lines = append(lines, fmt.Sprintf("[called tool %s with %s]", call.Name, args))
	}
	for _, r := range t.ToolResults {
		kind := "result"
		if r.IsError {
			kind = "error"
		}
		lines = append(lines, fmt.Sprintf("[tool %s for call %s: %s]", kind, r.CallID, r.Content))
	}
	return strings.Join(lines, "\n")
}

// metadata travels with the request so that a sampler, or the offline
// scorer, knows the decision schema without parsing the prompt.
func (c *conversation) metadata() map[string]any {
	m := map[string]any{
		"event_id":      c.item.Event.ID,
		"tenant_id":     c.item.Event.TenantID,
		"type":          c.item.Type.Name,
		"outcomes":      c.item.Type.Outcomes,
		"fallback":      c.item.Type.Fallback,
		work.MetaSchema: c.schema,
	}
	if c.prompt.Temperature != nil {
		m[work.MetaTemperature] = *c.prompt.Temperature
	}
	if c.prompt.Timeout > 0 {
		m[work.MetaTimeoutMS] = c.prompt.Timeout.Milliseconds()
	}
	return m
}

// mcpRequest is the next request as MCP sampling/createMessage
// parameters, for a sampler that can (capable) or cannot run tools: a
// *mcp.CreateMessageWithToolsParams when it offers tools, and otherwise a
// *mcp.CreateMessageParams with text only, what samplers got before tools
// existed. Call it under the lock that guards the conversation: it
// records what it offered.
func (c *conversation) mcpRequest(capable bool) mcp.InputRequest {
	c.offered = c.offer(capable)
	if c.offered {
		p := &mcp.CreateMessageWithToolsParams{
			SystemPrompt:     c.prompt.System,
			Messages:         work.MessagesToMCP(c.turns),
			MaxTokens:        int64(c.prompt.MaxTokens),
			StopSequences:    c.prompt.Stop,
			Metadata:         c.metadata(),
			Temperature:      c.temperature(),
			ModelPreferences: c.modelPreferences(),
			Tools:            work.ToolsToMCP(c.tools.defs),
		}
		return p
	}
	turns := c.messages(false)
	msgs := make([]*mcp.SamplingMessage, len(turns))
	for i, t := range turns {
		msgs[i] = &mcp.SamplingMessage{Role: mcp.Role(t.Role), Content: &mcp.TextContent{Text: t.Text}}
	}
	return &mcp.CreateMessageParams{
		SystemPrompt:     c.prompt.System,
		Messages:         msgs,
		MaxTokens:        int64(c.prompt.MaxTokens),
		StopSequences:    c.prompt.Stop,
		Metadata:         c.metadata(),
		Temperature:      c.temperature(),
		ModelPreferences: c.modelPreferences(),
	}
}

// temperature is the request's temperature field. go-sdk omits a zero
// temperature on the wire: the metadata repeats it (work.MetaTemperature).
func (c *conversation) temperature() float64 {
	if c.prompt.Temperature == nil {
		return 0
	}
	return *c.prompt.Temperature
}

func (c *conversation) modelPreferences() *mcp.ModelPreferences {
	m := c.prompt.Model
	if len(m.Hints) == 0 && m.Cost == nil && m.Speed == nil && m.Intelligence == nil {
		return nil
	}
	prefs := &mcp.ModelPreferences{}
	for _, h := range m.Hints {
		prefs.Hints = append(prefs.Hints, &mcp.ModelHint{Name: h})
	}
	prefs.CostPriority = deref(m.Cost)
	prefs.SpeedPriority = deref(m.Speed)
	prefs.IntelligencePriority = deref(m.Intelligence)
	return prefs
}

// llmRequest is the next request for a direct provider call, to a
// provider that can (capable) or cannot run tools. It records what it
// offered.
func (c *conversation) llmRequest(capable bool) llm.Request {
	m := c.prompt.Model
	c.offered = c.offer(capable)
	r := llm.Request{
		System:   c.prompt.System,
		Messages: c.messages(c.offered),
		Preferences: llm.Preferences{
			Hints: m.Hints, CostPriority: m.Cost, SpeedPriority: m.Speed, IntelligencePriority: m.Intelligence,
		},
		Temperature: c.prompt.Temperature,
		MaxTokens:   c.prompt.MaxTokens,
		Stop:        c.prompt.Stop,
		Schema:      c.schema,
		Metadata:    c.metadata(),
	}
	if c.offered {
		r.Tools = slices.Clone(c.tools.defs)
	}
	return r
}

// modelRequested summarises the model preferences for the audit record.
func (c *conversation) modelRequested() string {
	return strings.Join(c.prompt.Model.Hints, ",")
}

// summary is the masked request as the audit record keeps it: its last
// turn (the prompt, the corrective follow-up or a round's tool results).
func (c *conversation) summary() string {
	return clip(turnText(c.turns[len(c.turns)-1]), 1024)
}

func deref(f *float64) float64 {
	if f == nil {
		return 0
	}
	return *f
}

// clip bounds a string kept in an audit record, on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
