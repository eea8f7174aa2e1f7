package work

import (
	"encoding/json"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/llm"
)

// RequestFromMCPWithTools converts the parameters of a sampling request
// with tools (2025-11-25's sampling with tools, and every input request a
// go-sdk client decodes from the wire) into a provider-neutral request.
// Everything [RequestFromMCP] converts it converts alike; besides:
//
//   - a message's content array may hold text (concatenated), tool_use
//     (an assistant's ToolCalls) and tool_result (a user's ToolResults,
//     their text contents concatenated, or their structuredContent as JSON
//     when they have no text);
//   - a text-only user message right after a user message of tool results
//     joins it, as [MessagesToMCP] splits them (MCP wants tool results
//     alone in their message);
//   - tools become llm.Tool, their inputSchema a JSON object (an absent
//     one is {"type": "object"}); toolChoice's mode becomes ToolChoice.
//
// Image and audio content, tool_use from the user, tool_result from the
// assistant, a tool without a name and an unknown tool choice are errors
// wrapping [ErrUnsupported].
func RequestFromMCPWithTools(p *mcp.CreateMessageWithToolsParams) (llm.Request, error) {
	if p == nil {
		return llm.Request{}, fmt.Errorf("work: %w: no params", ErrUnsupported)
	}
	msgs := make([]llm.Message, 0, len(p.Messages))
	for i, m := range p.Messages {
		msg, err := messageFromMCP(i, m)
		if err != nil {
			return llm.Request{}, err
		}
		if n := len(msgs); n > 0 && joins(msgs[n-1], msg) {
			msgs[n-1].Text = msg.Text
			continue
		}
		msgs = append(msgs, msg)
	}
	req, err := requestFrom(sampling{
		system: p.SystemPrompt, stop: p.StopSequences, prefs: p.ModelPreferences,
		temperature: p.Temperature, maxTokens: p.MaxTokens, metadata: p.Metadata,
	}, msgs)
	if err != nil {
		return llm.Request{}, err
	}
	for i, t := range p.Tools {
		tool, err := toolFromMCP(i, t)
		if err != nil {
			return llm.Request{}, err
		}
		req.Tools = append(req.Tools, tool)
	}
	if p.ToolChoice != nil {
		switch p.ToolChoice.Mode {
		case "", llm.ToolChoiceAuto, llm.ToolChoiceRequired, llm.ToolChoiceNone:
			req.ToolChoice = p.ToolChoice.Mode
		default:
			return llm.Request{}, fmt.Errorf("work: %w: tool choice %q", ErrUnsupported, p.ToolChoice.Mode)
		}
	}
	return req, nil
}

// joins reports whether next is the text that [MessagesToMCP] split from
// prev's tool results.
func joins(prev, next llm.Message) bool {
	return prev.Role == llm.RoleUser && next.Role == llm.RoleUser &&
		len(prev.ToolResults) > 0 && prev.Text == "" &&
		len(next.ToolResults) == 0 && len(next.ToolCalls) == 0
}

// messageFromMCP converts message i of a request with tools.
func messageFromMCP(i int, m *mcp.SamplingMessageV2) (llm.Message, error) {
	if m == nil {
		return llm.Message{}, fmt.Errorf("work: %w: message %d is null", ErrUnsupported, i)
	}
	if err := checkRole(i, m.Role); err != nil {
		return llm.Message{}, err
	}
	if len(m.Content) == 0 {
		return llm.Message{}, fmt.Errorf("work: %w: message %d has no content", ErrUnsupported, i)
	}
	msg := llm.Message{Role: string(m.Role)}
	for _, c := range m.Content {
		switch c := c.(type) {
		case *mcp.TextContent:
			if c != nil {
				msg.Text += c.Text
				continue
			}
		case *mcp.ToolUseContent:
			if c != nil && m.Role == llm.RoleAssistant {
				msg.ToolCalls = append(msg.ToolCalls, llm.ToolCall{ID: c.ID, Name: c.Name, Input: c.Input})
				continue
			}
		case *mcp.ToolResultContent:
			if c != nil && m.Role == llm.RoleUser {
				text, err := toolResultText(c)
				if err != nil {
					return llm.Message{}, fmt.Errorf("work: %w: message %d: %w", ErrUnsupported, i, err)
				}
				msg.ToolResults = append(msg.ToolResults, llm.ToolResult{CallID: c.ToolUseID, Content: text, IsError: c.IsError})
				continue
			}
		}
		return llm.Message{}, fmt.Errorf("work: %w: message %d (%s) has %s content (text, and tool_use from the assistant or tool_result from the user, are supported)",
			ErrUnsupported, i, m.Role, contentKind(c))
	}
	return msg, nil
}

// toolResultText is a tool result as the text providers take: its text
// contents, else its structured content as JSON.
func toolResultText(c *mcp.ToolResultContent) (string, error) {
	var text string
	for _, n := range c.Content {
		t, ok := n.(*mcp.TextContent)
		if !ok || t == nil {
			return "", fmt.Errorf("tool result %q has %s content (only text is supported)", c.ToolUseID, contentKind(n))
		}
		text += t.Text
	}
	if text != "" || c.StructuredContent == nil {
		return text, nil
	}
	b, err := json.Marshal(c.StructuredContent)
	if err != nil {
		return "", fmt.Errorf("tool result %q: structured content: %w", c.ToolUseID, err)
	}
	return string(b), nil
}

// toolFromMCP converts tool i, its input schema to a JSON object.
func toolFromMCP(i int, t *mcp.Tool) (llm.Tool, error) {
	if t == nil || t.Name == "" {
		return llm.Tool{}, fmt.Errorf("work: %w: tool %d has no name", ErrUnsupported, i)
	}
	tool := llm.Tool{Name: t.Name, Description: t.Description}
	switch s := t.InputSchema.(type) {
	case nil:
		tool.InputSchema = map[string]any{"type": "object"}
	case map[string]any: // as the wire delivers it
		tool.InputSchema = s
	default: // *jsonschema.Schema, json.RawMessage, ... in process
		b, err := json.Marshal(s)
		if err == nil {
			err = json.Unmarshal(b, &tool.InputSchema)
		}
		if err != nil || tool.InputSchema == nil {
			return llm.Tool{}, fmt.Errorf("work: %w: tool %q: input schema is not a JSON object", ErrUnsupported, t.Name)
		}
	}
	return tool, nil
}

// ResultToMCPWithTools converts a provider response into the answer to a
// sampling request with tools: an assistant message whose content is the
// text (left out when empty and the model called tools) followed by one
// tool_use per ToolCall, with the model, the stop reason ("toolUse" when
// it called tools) and the usage as [ResultToMCP] has them.
func ResultToMCPWithTools(r llm.Response) *mcp.CreateMessageWithToolsResult {
	res := &mcp.CreateMessageWithToolsResult{
		Role:       "assistant",
		Model:      r.Model,
		StopReason: r.StopReason,
		Meta:       usageMeta(r),
	}
	if r.Text != "" || len(r.ToolCalls) == 0 {
		res.Content = append(res.Content, &mcp.TextContent{Text: r.Text})
	}
	for _, c := range r.ToolCalls {
		res.Content = append(res.Content, &mcp.ToolUseContent{ID: c.ID, Name: c.Name, Input: c.Input})
	}
	return res
}

// MessagesToMCP converts a conversation into the messages of a sampling
// request with tools, for the server that continues a tool loop: an
// assistant's ToolCalls become tool_use content after its text (left out
// when empty), and a user's ToolResults tool_result content, each with one
// text content and isError. MCP wants tool results alone in their message
// (2025-11-25, sampling "Tool result messages"), so a user message with
// both results and text becomes two: the results, then the text;
// [RequestFromMCPWithTools] joins them again. A message without tool parts
// is one text content, as in a request without tools.
func MessagesToMCP(msgs []llm.Message) []*mcp.SamplingMessageV2 {
	out := make([]*mcp.SamplingMessageV2, 0, len(msgs))
	for _, m := range msgs {
		role := mcp.Role(m.Role)
		if len(m.ToolResults) > 0 {
			results := make([]mcp.Content, 0, len(m.ToolResults))
			for _, r := range m.ToolResults {
				results = append(results, &mcp.ToolResultContent{
					ToolUseID: r.CallID, Content: []mcp.Content{&mcp.TextContent{Text: r.Content}}, IsError: r.IsError,
				})
			}
			out = append(out, &mcp.SamplingMessageV2{Role: role, Content: results})
			if m.Text == "" && len(m.ToolCalls) == 0 {
				continue
			}
			m.ToolResults = nil // the rest of the message follows on its own
		}
		var content []mcp.Content
		if m.Text != "" || len(m.ToolCalls) == 0 {
			content = append(content, &mcp.TextContent{Text: m.Text})
		}
		for _, c := range m.ToolCalls {
			content = append(content, &mcp.ToolUseContent{ID: c.ID, Name: c.Name, Input: c.Input})
		}
		out = append(out, &mcp.SamplingMessageV2{Role: role, Content: content})
	}
	return out
}

// ToolsToMCP converts tools for a sampling request with tools; a tool
// without an input schema gets {"type": "object"}, which MCP requires.
func ToolsToMCP(tools []llm.Tool) []*mcp.Tool {
	if len(tools) == 0 {
		return nil
	}
	out := make([]*mcp.Tool, 0, len(tools))
	for _, t := range tools {
		var schema any = t.InputSchema
		if t.InputSchema == nil {
			schema = map[string]any{"type": "object"}
		}
		out = append(out, &mcp.Tool{Name: t.Name, Description: t.Description, InputSchema: schema})
	}
	return out
}

// ToolChoiceToMCP converts an llm.Request's ToolChoice; "" is nil (the
// default, auto).
func ToolChoiceToMCP(choice string) *mcp.ToolChoice {
	if choice == "" {
		return nil
	}
	return &mcp.ToolChoice{Mode: choice}
}
