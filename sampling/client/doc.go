// Package client is triage's MCP sampler, the client side of its LLM
// stage: a [Sampler] connects to one or more consumers' /mcp endpoints,
// pulls ambiguous items from their triage_next work tool, and answers the
// sampling requests that come with them using an [llm.Provider].
// cmd/sampler is its binary, and the consumer's builtin sampler runs it on
// the in-memory transport. The wire contract it speaks, and the converters
// between MCP and package llm, are in package [work]; the server side is
// package sampling, which does not import this one.
//
// # How an item travels
//
// A pull loop calls the tool [work.ToolName] with {"wait_ms":
// Config.WaitMS, "sampler": Config.Name, "tools": true} ([work.Args];
// "tools" only when the sampler declares tools, see below).
// The server long-polls; with no work it answers {"status":"idle"}. With
// work it answers with an input request carrying a
// *mcp.CreateMessageParams and an opaque RequestState (the item's lease).
// The go-sdk client fulfils that request with the client's sampling handler
// ([Handler]) and retries the call with the answer:
//
//   - on protocol 2026-07-28 the client's multi round-trip middleware does
//     it (SEP-2322);
//   - on 2025-11-25 and older the server's middleware sends
//     sampling/createMessage to the client instead, which the same handler
//     answers.
//
// On 2026-07-28 the calls say "rounds": [work.GoSDKRounds], the go-sdk
// client's limit, so that the server may hand a retry the next item's
// request at once: one round trip a decision while items keep coming.
//
// Either way the loop's CallTool returns the final result, whose structured
// content says {"status":"decided"|"fallback"|"expired", ...}; [Stats]
// counts them. The handler also answers sampling requests a legacy server
// pushes on its own ([Config.PushOnly] does nothing else).
//
// # Tools inside sampling
//
// By default, when Config.Provider supports tools (llm.Provider's
// SupportsTools: anthropic, openai and offline do), the sampler declares
// them: "tools": true in its work calls, and the sampling.tools capability
// on legacy sessions, for it registers go-sdk's
// CreateMessageWithToolsHandler ([HandlerWithTools]) instead of
// CreateMessageHandler (go-sdk takes one or the other; the with-tools
// handler also gets the requests without tools). A server may then offer
// tools in its sampling requests; the model's tool calls go back as the
// answer's tool_use content with stopReason "toolUse", and the server,
// which runs the tools in the scope of the event under decision, continues
// with a further input request under the same lease. The sampler never
// runs a tool. Config.DisableTools (cmd/sampler --tools=false) turns all
// of this off: the sampler behaves as one from before tools, with
// [Handler]. [Stats].Answered counts each round of a tool loop.
//
// # Failure handling
//
// Each server has a supervisor that connects, runs Config.Concurrency pull
// loops on the session, and reconnects with exponential back-off and jitter
// when the session is lost. A failed call that leaves the session usable (a
// JSON-RPC error, a tool error, a refused connection on a stateless server,
// a provider failure) backs off that loop only. Retryable provider errors
// ([llm.IsRetryable]) are retried a bounded number of times, after the
// back-off or the provider's Retry-After (up to BackoffMax; a longer one
// fails the answer at once), before the answer fails; a failed or abandoned answer leaves the item's lease to
// expire on the server, which then re-queues it or falls back.
//
// Cancelling Run's context ends every loop at once, in-flight calls
// included: items being answered at that moment are not lost, their leases
// expire on the server.
//
// # Wire details
//
// Token usage travels in the result's _meta under [work.UsageMetaKey] as
// {"inputTokens": n, "outputTokens": m}. go-sdk's CreateMessageParams
// encodes temperature and the model priorities with omitempty, so a
// requested 0 is indistinguishable from "unset" and reaches the provider as
// unset (its default).
package client
