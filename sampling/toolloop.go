package sampling

import (
	"fmt"
	"slices"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/llm"
)

// The tool loop, shared by pull, push and direct mode: while the type's
// max_tool_rounds are not used up, a request to a sampler (or provider)
// that runs tools offers the type's tools; a response that calls them is
// a round: the server runs each call in the event's scope, audits it, and
// sends the next request with the assistant's calls and a user turn of
// results. Once the rounds are used up, the next request offers no tools
// and asks for the answer (answerNow); a response that still calls tools
// then is an invalid answer, with the corrective round and fallback of any
// other. Each request is bounded by the type's timeout, as the first is,
// so the loop takes at most max_tool_rounds + 2 of them.

// reasonToolUse is the reason of the audit record of an attempt whose
// response called tools: not the decision yet, and not a failure.
const reasonToolUse = "the model called tools"

// wantsTools reports whether r is a round of tool calls to run: the request
// offered tools and r calls some.
func (c *conversation) wantsTools(r llm.Response) bool {
	return c.offered && c.tools != nil && len(r.ToolCalls) > 0
}

// toolRound runs the calls of r, for which wantsTools holds, appends the
// assistant's turn and the results to the conversation and returns an
// audit record per call. Calls past maxCallsPerRound are answered with an
// error and not run.
func (c *conversation) toolRound(r llm.Response, mode, session string) []audit.Record {
	calls := slices.Clone(r.ToolCalls)
	results := make([]llm.ToolResult, len(calls))
	records := make([]audit.Record, len(calls))
	seen := make(map[string]bool, len(calls))
	for i := range calls {
		// The results pair with the calls by id: one a sampler left out or
		// repeated gets a fresh one.
		if calls[i].ID == "" || seen[calls[i].ID] {
			calls[i].ID = fmt.Sprintf("triage_call_%d_%d", c.rounds+1, i+1)
		}
		seen[calls[i].ID] = true
		if i < maxCallsPerRound {
			results[i], records[i] = c.tools.run(c, mode, session, calls[i])
			continue
		}
		results[i], records[i] = c.tools.refuse(c, mode, session, calls[i],
			fmt.Sprintf("not run: at most %d tool calls are run per turn", maxCallsPerRound))
	}
	c.turns = append(c.turns,
		llm.Message{Role: llm.RoleAssistant, Text: r.Text, ToolCalls: calls},
		llm.Message{Role: llm.RoleUser, ToolResults: results})
	c.rounds++
	return records
}

// parse reads r as the decision. A response that calls tools here (none
// were offered, or the rounds are used up) is an invalid answer.
func (c *conversation) parse(r llm.Response) (Answer, error) {
	if len(r.ToolCalls) > 0 {
		return Answer{}, fmt.Errorf("the answer calls the tool %q, but no tool may be called now: answer with the JSON object instead",
			clip(r.ToolCalls[0].Name, 64))
	}
	return ParseAnswer(r.Text, c.item.Type.Outcomes)
}
