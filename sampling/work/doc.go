// Package work is the contract between triage's consumer (the MCP server,
// package sampling) and the samplers that answer its sampling requests
// (package sampling/client, cmd/sampler, or any MCP client). Both sides
// import it; nothing else defines the wire format. It is written so that a
// third party can build a sampler from it alone; contract_test.go does so
// with nothing but the go-sdk client and this package.
//
// # The work tool
//
// The consumer's MCP server (Streamable HTTP, usually at /mcp, with
// "Authorization: Bearer <token>" when the consumer sets one) offers one
// tool, [ToolName] ("triage_next"). A sampler calls it with as many
// concurrent calls as the items it can answer at once. Its arguments
// ([Args], JSON schema in the tool's inputSchema):
//
//	{
//	  "wait_ms": 20000,        // optional integer: long-poll wait for work;
//	                           // 0 or absent means 20000, above 30000 means 30000
//	  "sampler": "my-sampler", // optional string: recorded in audit records
//	  "tools": true            // optional boolean: the sampler answers requests
//	                           // with tools (see "Tools inside sampling")
//	}
//
// On 2026-07-28 every call is stateless, so "sampler" is also how the pool
// tells one sampler process from another: a re-queued item goes to other
// samplers first, and a sampler whose leases keep failing is quarantined
// by that name. Name each process uniquely (cmd/sampler adds a random
// suffix); an unnamed sampler is never quarantined.
//
// # Getting an item
//
// With no work within wait_ms the call ends with the final result
// {"status":"idle"}; call again. With work, the tool asks for input (multi
// round-trip requests, SEP-2322): its result has "resultType":
// "input_required" and carries
//
//   - inputRequests: {"decision": {"method": "sampling/createMessage",
//     "params": {...}}}, one sampling request under [InputKey] whose params
//     hold systemPrompt, messages (text only), modelPreferences,
//     temperature, maxTokens, stopSequences and metadata {"event_id",
//     "tenant_id" (an event is the pair), "type", "outcomes", "fallback", "timeout_ms" (the item's sampling
//     timeout, [MetaTimeoutMS]: the lease ends then, so a sampler should
//     give up on the request at that point rather than let a hung model
//     hold a slot), and "temperature" when the event type sets one
//     ([MetaTemperature]: the SDKs drop a temperature of 0 from the field,
//     so a sampler should take this one), and "schema", the JSON Schema of
//     the answer ([MetaSchema]: a sampler whose provider constrains output
//     to a schema, structured outputs, should pass it on)};
//   - requestState: the item's lease token, opaque to the sampler: 32
//     lower-case hex characters today, but a sampler must not rely on its
//     form. Echo it unchanged; it is good for one answer within the event
//     type's sampling timeout, and cannot be forged or replayed.
//
// The sampler answers the sampling request with its model (a
// CreateMessageResult: role "assistant", one text content, model,
// stopReason) and retries tools/call with the same name and arguments, the
// requestState echoed and inputResponses {"decision": <that result>}. The
// answer's text must contain a JSON object {"outcome": one of
// metadata.outcomes, "reason": "...", "score": 0..1}; prose or code fences
// around it are tolerated, and of several objects the last valid one
// counts.
//
// A sampler that cannot answer (its model failed) says so with a result
// too, not a JSON-RPC error, which on 2026-07-28 would end the call on the
// sampler's side and never reach the server: an empty text, stopReason
// "error" and the error's text under _meta [ErrorMetaKey] ([ErrorResult]).
// The server audits it as an error with that text and re-queues the item
// (once) or falls back at once, instead of waiting for the lease to expire.
//
// # Several items a call
//
// A sampler may take up to [MaxItems] items in one call with the argument
// "items": n. The call waits for the first item as above and takes more
// only if they are queued at that moment. Its input requests are then
// [InputKeyOf](0), [InputKeyOf](1), ... ("decision", "decision.1", ...),
// one per item, and the retry answers them all at once (a go-sdk client's
// middleware fulfils them concurrently). Items whose answer leads to
// another request (a tool round, the corrective round) come back as a new
// set of input requests, numbered from 0 again, under a new requestState;
// the final result holds every item's result in "items", its top-level
// fields being the first's. One call's messages then carry several
// decisions: fewer round trips, and less of the MCP SDK's per-message cost,
// for each.
//
// # Further items in later rounds
//
// On 2026-07-28 a sampler may also say how many input rounds its client
// takes in one call, "rounds": n ([GoSDKRounds] for a go-sdk client, whose
// middleware gives up on the 10th). A retry whose answers leave fewer
// items out than "items" then takes further items into its next round:
// those queued at that moment, or, when none of the call's items is out
// any more, the first to arrive within what is left of the call's wait.
// The answer to one item's retry is thus the next item's request, and a
// decision costs one round trip where a call per item costs two. An item
// is added only while its longest exchange (its request, the type's tool
// rounds when its request offers tools, and the corrective round) ends
// within n rounds, and while the call carries fewer than [MaxItems] in
// all; the final result lists every item the call carried, in "items".
// An older session's calls end once their items are done, "rounds" or not.
//
// An answer that does not fit gets one corrective round: the retry returns
// a second input request (the conversation so far plus a follow-up) under
// the same requestState; answer it the same way. An unanswered lease
// expires after the type's timeout: the item goes back to the queue (once)
// or falls back, and a late retry gets {"status":"expired"}.
//
// # Tools inside sampling
//
// A sampler that declares "tools": true (cmd/sampler does unless --tools=false)
// may get sampling requests with tools, 2025-11-25's sampling with tools
// (SEP-1577): params also hold "tools" (name, description, inputSchema) and
// "toolChoice" {"mode": "auto" | "required" | "none"}, and messages whose
// content is an array that may hold tool_use (assistant) and tool_result
// (user) blocks. The tools are scoped to the request: the sampler does not
// run them and need not know them. It passes them to its model and answers
// with a CreateMessageWithToolsResult: content an array of text and
// tool_use blocks, stopReason "toolUse" when the model called tools. The
// server runs the calls in the scope of the event under decision, audits
// them, and sends a further input request under the same requestState: the
// conversation so far, the model's tool_use turn and a user turn of
// tool_result blocks (alone in their message, as MCP wants), until the
// model answers with text or the server's bound on rounds ends the loop.
// A sampler that did not declare tools gets requests without them.
//
// Converters, for both sides: a sampler uses [RequestFromMCPWithTools] and
// [ResultToMCPWithTools] (go-sdk's client hands its with-tools handler every
// request in this form, with or without tools, and [AnswerTimeoutWithTools]
// reads its timeout); the server builds the follow-up requests with
// [MessagesToMCP], [ToolsToMCP] and [ToolChoiceToMCP], and reads the answer
// with [ResponseFromMCP], whose ToolCalls are the tool_use blocks.
//
// # The final result
//
// Every call ends with structured content of the form [Result] (the tool's
// outputSchema; the same JSON also arrives as text content for older
// clients):
//
//	{
//	  "status":   "idle" | "decided" | "fallback" | "expired",
//	  "event_id": "ev-0001",   // the item's event id; absent for idle and
//	                           // for an unknown or expired lease
//	  "outcome":  "block",     // decided only: the outcome recorded
//	  "reason":   "..."        // decided: the model's stated reason;
//	                           // fallback and expired: what went wrong
//	}
//
// See [Status] for what each status means.
//
// # Token usage
//
// A sampler that knows the tokens its model used reports them in the
// sampling result's _meta under [UsageMetaKey] ("dev.triage/usage") as
// {"inputTokens": n, "outputTokens": m}; triage writes them into its audit
// records. [ResultToMCP] writes it, [UsageFromMeta] reads it.
//
// # Trace context
//
// A consumer that traces (OpenTelemetry) puts the W3C trace context of the
// request's sampling attempt in the sampling request's _meta, under
// [MetaTraceparent] ("traceparent") and, when it has one, [MetaTracestate]
// ("tracestate"), as on the HTTP headers of the same names. A sampler that
// traces continues it ([ExtractTrace]): its provider call is then a child
// of the attempt in the consumer's trace of the event, and follows its
// sampling decision. A sampler that does not trace ignores the keys.
//
// # Two protocol generations
//
// The same tool serves both; only who carries the sampling request
// differs.
//
//   - [ProtocolMRTR] (2026-07-28, go-sdk's default): stateless, no
//     initialize handshake, and the server may not send requests. The
//     client sees the input request in the tool result and retries the
//     call itself, as above; go-sdk's client does this automatically with
//     its CreateMessageHandler.
//   - [ProtocolLegacy] (2025-11-25) and older: stateful sessions. The
//     client never sees input requests: the server's SDK middleware sends
//     sampling/createMessage to the client during the call, so the client
//     needs a sampling handler and the sampling capability, and tools/call
//     returns the final result. The answer reaches the server as a
//     CreateMessageResult or a CreateMessageWithToolsResult, which
//     [ResponseFromMCP] both accepts. A corrective round arrives as a
//     second sampling/createMessage.
//
// Push: a legacy session that declared sampling but does not call the work
// tool within the consumer's grace period (a desktop assistant, say) gets
// sampling/createMessage requests pushed without any tool call; answering
// them is all it has to do. Push is impossible on 2026-07-28.
//
// Sampling is deprecated as of 2026-07-28 (SEP-2577); triage's direct mode
// calls a provider API instead, with the same converters ([RequestFromMCP],
// [ResultToMCP], and their WithTools forms) on its sampler side.
//
// # Wire details
//
// go-sdk's CreateMessageParams encodes temperature and the model
// priorities with omitempty, so a requested 0 is indistinguishable from
// "unset" and reaches the provider as unset (its default).
package work
