package sampling

import (
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/sampling/work"
)

// The conversions of tool turns between llm and MCP that the tool loop
// needs on the server's side.

// messagesToMCP converts turns to sampling messages with tool content: an
// assistant turn's text and tool_use blocks, a user turn's text or its
// tool_result blocks (which the spec wants alone in their message).
func messagesToMCP(turns []llm.Message) []*mcp.SamplingMessageV2 {
	msgs := make([]*mcp.SamplingMessageV2, len(turns))
	for i, t := range turns {
		var content []mcp.Content
		if t.Text != "" || (len(t.ToolCalls) == 0 && len(t.ToolResults) == 0) {
			content = append(content, &mcp.TextContent{Text: t.Text})
		}
		for _, c := range t.ToolCalls {
			content = append(content, &mcp.ToolUseContent{ID: c.ID, Name: c.Name, Input: c.Input})
		}
		for _, r := range t.ToolResults {
			content = append(content, &mcp.ToolResultContent{ToolUseID: r.CallID,
				Content: []mcp.Content{&mcp.TextContent{Text: r.Content}}, IsError: r.IsError})
		}
		msgs[i] = &mcp.SamplingMessageV2{Role: mcp.Role(t.Role), Content: content}
	}
	return msgs
}

// toolsToMCP converts tool definitions to MCP's.
func toolsToMCP(defs []llm.Tool) []*mcp.Tool {
	out := make([]*mcp.Tool, len(defs))
	for i, d := range defs {
		out[i] = &mcp.Tool{Name: d.Name, Description: d.Description, InputSchema: d.InputSchema}
	}
	return out
}

// responseFromMCP reads a sampling answer (see work.ResponseFromMCP) with
// its tool_use blocks as tool calls.
func responseFromMCP(v any) (llm.Response, bool) {
	r, ok := work.ResponseFromMCP(v)
	if !ok || len(r.ToolCalls) > 0 {
		return r, ok
	}
	var content []mcp.Content
	switch res := v.(type) {
	case *mcp.CreateMessageWithToolsResult:
		content = res.Content
	case *mcp.CreateMessageResult:
		content = []mcp.Content{res.Content}
	}
	for _, c := range content {
		if u, isUse := c.(*mcp.ToolUseContent); isUse && u != nil {
			r.ToolCalls = append(r.ToolCalls, llm.ToolCall{ID: u.ID, Name: u.Name, Input: u.Input})
		}
	}
	return r, true
}

// samplingTools reports whether a legacy session declared that it runs
// tool loops (capabilities.sampling.tools, 2025-11-25).
func samplingTools(ss *mcp.ServerSession) bool {
	ip := ss.InitializeParams()
	return ip != nil && ip.Capabilities != nil && ip.Capabilities.Sampling != nil && ip.Capabilities.Sampling.Tools != nil
}
