package sampling

import (
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
	"github.com/triage-dev/triage/sampling/work"
)

// conversation is one sampling exchange: the rendered prompt, plus the bad
// answer and the corrective follow-up when the first answer did not fit the
// decision schema.
type conversation struct {
	item   pipeline.Item
	prompt rules.Prompt
	turns  []llm.Message
	// schema is the answer's JSON Schema, built once for every request of
	// the exchange (metadata and direct mode share it; nothing mutates it).
	schema map[string]any
}

func newConversation(it pipeline.Item, pr rules.Prompt) *conversation {
	return &conversation{item: it, prompt: pr, turns: []llm.Message{{Role: "user", Text: pr.User}},
		schema: llm.AnswerSchema(it.Type.Outcomes)}
}

// correct appends the bad answer and the follow-up asking for a valid one.
func (c *conversation) correct(bad string, problem error) {
	c.turns = append(c.turns,
		llm.Message{Role: "assistant", Text: bad},
		llm.Message{Role: "user", Text: c.item.Type.CorrectivePrompt(bad, problem.Error())})
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

// mcpParams is the request as MCP sampling/createMessage parameters.
func (c *conversation) mcpParams() *mcp.CreateMessageParams {
	msgs := make([]*mcp.SamplingMessage, len(c.turns))
	for i, t := range c.turns {
		msgs[i] = &mcp.SamplingMessage{Role: mcp.Role(t.Role), Content: &mcp.TextContent{Text: t.Text}}
	}
	p := &mcp.CreateMessageParams{
		SystemPrompt:  c.prompt.System,
		Messages:      msgs,
		MaxTokens:     int64(c.prompt.MaxTokens),
		StopSequences: c.prompt.Stop,
		Metadata:      c.metadata(),
	}
	if c.prompt.Temperature != nil {
		// go-sdk omits a zero temperature on the wire: the metadata
		// repeats it (work.MetaTemperature).
		p.Temperature = *c.prompt.Temperature
	}
	m := c.prompt.Model
	if len(m.Hints) > 0 || m.Cost != nil || m.Speed != nil || m.Intelligence != nil {
		prefs := &mcp.ModelPreferences{}
		for _, h := range m.Hints {
			prefs.Hints = append(prefs.Hints, &mcp.ModelHint{Name: h})
		}
		prefs.CostPriority = deref(m.Cost)
		prefs.SpeedPriority = deref(m.Speed)
		prefs.IntelligencePriority = deref(m.Intelligence)
		p.ModelPreferences = prefs
	}
	return p
}

// llmRequest is the request for a direct provider call.
func (c *conversation) llmRequest() llm.Request {
	m := c.prompt.Model
	return llm.Request{
		System:   c.prompt.System,
		Messages: append([]llm.Message(nil), c.turns...),
		Preferences: llm.Preferences{
			Hints: m.Hints, CostPriority: m.Cost, SpeedPriority: m.Speed, IntelligencePriority: m.Intelligence,
		},
		Temperature: c.prompt.Temperature,
		MaxTokens:   c.prompt.MaxTokens,
		Stop:        c.prompt.Stop,
		Schema:      c.schema,
		Metadata:    c.metadata(),
	}
}

// modelRequested summarises the model preferences for the audit record.
func (c *conversation) modelRequested() string {
	return strings.Join(c.prompt.Model.Hints, ",")
}

// summary is the masked request as the audit record keeps it.
func (c *conversation) summary() string {
	return clip(c.turns[len(c.turns)-1].Text, 1024)
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
