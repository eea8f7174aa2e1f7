package sampling

import (
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/sampling/work"
)

// Sessions reports how many legacy sessions the pool keeps a record of, for
// tests that check the records do not outlive their sessions.
func Sessions(p *Pool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sessions)
}

// Breakers reports how many sampler sessions' breakers the pool keeps, for
// tests that check they do not outlive their sessions.
func Breakers(p *Pool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.breakers)
}

// RequestToMCP is a direct request as MCP parameters, converted as the pool
// converts its own, so that one script can answer in every mode.
func RequestToMCP(r llm.Request) *mcp.CreateMessageWithToolsParams {
	return &mcp.CreateMessageWithToolsParams{Messages: work.MessagesToMCP(r.Messages), Tools: work.ToolsToMCP(r.Tools)}
}
