// Package llm owns triage's provider adapters: one provider-neutral request
// and response shape (Request, Response) and the Provider implementations
// that turn it into a call to a model. cmd/sampler answers MCP sampling
// requests with it, and the consumer's direct mode (the SEP-2577 migration
// path, no MCP) calls it in-process, so all three sampling modes share every
// line of LLM code. No MCP types appear here: callers translate.
//
// Three providers are built in (see New):
//
//   - "anthropic": the Anthropic Messages API through the official
//     github.com/anthropics/anthropic-sdk-go/v2 (API version 2026-10-21).
//   - "openai": the OpenAI Chat Completions API through the official
//     github.com/openai/openai-go/v3, with a base URL option so that any
//     OpenAI-compatible server works (Ollama, vLLM, llama.cpp, LiteLLM).
//   - "offline": a deterministic scorer for demos, tests and benchmarks. It
//     is NOT a language model and says so: its Response.Model is OfflineModel.
//
// The model is chosen per request from the MCP model preferences: the first
// configured route whose hint occurs in a request hint, else the provider's
// small or large default by the cost/speed/intelligence priorities (see
// ModelRoute). Options.Model pins one model instead.
//
// # Tools
//
// A Request may offer Tools; a model that wants one run answers with
// StopReason StopToolUse and ToolCalls, and the caller (triage's server,
// which runs tools in the scope of the event under decision) sends the
// results back as a user Message's ToolResults, after an assistant Message
// holding the ToolCalls. The adapters never run tools. anthropic sends them
// as tool_use / tool_result blocks and keeps output_config.format alongside;
// openai as function tools, tool_calls and role "tool" messages, and drops
// response_format beside tools except to OpenAI itself (see the adapters'
// docs for why). Request.ToolChoice is MCP's mode: auto, required, none.
//
// Adapters do not retry. Failures are *Error values that say whether a retry
// can help (IsRetryable): the caller owns the retry policy, its bound and its
// back-off. Every call honours its context.
//
// # The offline scorer
//
// The offline provider answers every request with exactly one JSON object,
// {"outcome": "...", "reason": "...", "score": 0.73}, computed from the
// request alone: the same request always gets the same answer. The outcomes
// come from Request.Metadata["outcomes"] ([]string, or []any of strings as
// after a JSON round trip); without them it answers
// {"outcome":"","reason":"no decision schema in request"}.
//
// It reads the user messages' text (joined by newlines), raw or as triage's
// prompts render it (masked "[EMAIL]" markers, "Card country: NG", JSON
// fields), with features chosen by the decision schema:
//
//   - Schema with a "contains_pii" outcome: email address or [EMAIL] (0.7),
//     IBAN or [IBAN] (0.7), card number or [CARD] (0.7), phone number or
//     [PHONE] (0.6), identity words such as "passport", "date of birth",
//     "social security" (0.35). A pattern does not see what an earlier one
//     matched.
//   - Transaction-like schema (an outcome containing allow, approve, accept,
//     block, deny, decline or reject): the words "sanctioned" (0.5),
//     "high-risk" (0.3), "mismatch" or "different from" (0.25), "velocity"
//     or "many transactions" (0.2); the largest amount at least 50,000 (0.35),
//     5,000 (0.2) or 1,000 (0.1); card and IP country differ (0.25); amount
//     at least 3x the 30-day average (0.2); more than 40 transactions in 24
//     hours (0.2); any chargebacks (0.2); account younger than 30 days
//     (0.15).
//   - Any other schema: escalate-like words such as "urgent", "outage",
//     "down", "blocked", "losing money", "breach", "refund" (0.4 each
//     distinct word).
//
// Features combine as independent evidence: score = 1 - Π(1 - weight),
// capped at 0.99. When none fires, the score is a stable pseudo-score from
// 0.00 to 0.49 taken from the FNV-1a hash of the text and the outcomes.
// Scores are rounded to two decimals. The answer's "score" is this severity
// score, rising with the evidence for the most severe outcome: unlike a
// model's, it is not a confidence in the outcome chosen.
//
// The score picks a severity tier: 0.6 and above high, 0.3 and above medium,
// below that low. Each outcome has a tier by its name: low when it starts
// with no_, not_ or non_ (no_pii); else high when it contains block, deny,
// decline, reject, fraud, escalat, contains_ or pii; medium when it contains
// review, human, manual, hold, flag, check or investigat; low otherwise
// (allow, template). When the schema has no outcome of the wanted tier, the
// nearest tier that has one answers, the more severe first on a tie; when a
// tier has several, the hash picks one. The reason names the features that
// fired. Token counts are approximate: a quarter of the characters in and
// out (tool results and calls included).
//
// Offered tools (Request.Tools), the scorer calls one at most once per
// conversation, as a model would, and only the tool named for its schema:
//
//   - Transaction-like schema: when "transaction_history" is offered and
//     the text's "Transactions in the last 24 hours" is borderline, 30 to 60
//     inclusive (the band holds the 40 above which velocity is a feature of
//     its own), it answers with no text, StopReason StopToolUse and one
//     ToolCall {Name: "transaction_history", Input: {"limit": 10}} (fewer
//     when the tool's schema sets a smaller maximum for limit).
//   - Schema with "contains_pii": when "document_metadata" is offered and
//     the document's template is unknown ("Template: unknown"), one
//     ToolCall {Name: "document_metadata", Input: {}}.
//
// ToolChoice "none" suppresses the call; "required" makes it whether or not
// the item is borderline. The call's ID is "offline_" and 16 hex digits of
// the FNV-1a hash of Metadata["event_id"] (the text without one) and the
// tool's name: the same request always gets the same call. Once the
// conversation holds a tool call or result, it answers. It reads every
// result of its tool in the conversation (so that a corrective round after
// the loop decides alike): a transaction_history result listing past
// transactions under "events" (triage's consumer: {"events": [{"amount":
// 120.5, ...}], "count": 1}) or "transactions", with at least 3 amounts above
// the text's 30-day average adds the feature "history above the average"
// (0.3: alone, the medium tier, review); a document_metadata result is read
// as more document text. The reason ends with what the tool showed ("used
// transaction_history: 3 of 5 past amounts above the average"), or that it
// failed (IsError) or was unreadable, in which case the answer is the one
// without tools. Without tools offered, nothing of this applies and the
// answers are as above.
//
// Nothing here reads the environment: API keys, base URLs and models come in
// through Options, filled by cmd/.
package llm
