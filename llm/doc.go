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
//     github.com/anthropics/anthropic-sdk-go.
//   - "openai": the OpenAI Chat Completions API through the official
//     github.com/openai/openai-go, with a base URL option so that any
//     OpenAI-compatible server works (Ollama, vLLM, llama.cpp, LiteLLM).
//   - "offline": a deterministic scorer for demos, tests and benchmarks. It
//     is NOT a language model and says so: its Response.Model is OfflineModel.
//
// The model is chosen per request from the MCP model preferences: the first
// configured route whose hint occurs in a request hint, else the provider's
// small or large default by the cost/speed/intelligence priorities (see
// ModelRoute). Options.Model pins one model instead.
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
// come from Request.Metadata["outcomes"] ([]string or []any of strings);
// without them it answers {"outcome":"","reason":"no decision schema in request"}.
//
// It scores the user messages' text (joined by newlines) with features chosen
// by the decision schema, adds their weights into a score in [0, 0.99], and
// when no feature fires uses a stable pseudo-score instead: the FNV-1a hash of
// the text and the outcomes, scaled into [0, 0.5).
//
//   - Schema with a "contains_pii" outcome: email address (0.6), IBAN (0.6),
//     phone number (0.45), identity words such as "passport", "date of
//     birth", "social security" (0.35).
//   - Transaction-like schema (an outcome named allow, approve, accept,
//     block, deny, decline or reject): the words "sanctioned" (0.5),
//     "high-risk"/"high risk" (0.3), "mismatch"/"different from" (0.25),
//     "chargeback" (0.2), "many transactions"/"velocity" (0.2), "new
//     account"/"younger than" (0.15); an "amount" of at least 50,000 (0.35),
//     5,000 (0.2) or 1,000 (0.1); "country" and "ip_country" values that
//     differ (0.25).
//   - Any other schema: escalate-like words such as "urgent", "outage",
//     "breach", "legal", "refund", "cancel" (0.2 each).
//
// The score picks a severity tier: 0.6 and above high, 0.3 and above medium,
// below that low. Each outcome has a tier by its name: high for names
// containing block, deny, decline, reject, fraud, escalat or contains_ (and
// pii not preceded by no_/not_/non_); medium for review, human, manual,
// hold, flag, check, investigat; low for the rest (allow, no_pii, template
// ...). When the schema has no outcome of the wanted tier, the nearest tier
// that has one answers, the more severe on a tie; when a tier has several,
// the hash picks one. The reason names the features that fired. Token counts
// are approximate: a quarter of the characters in and out.
//
// Nothing here reads the environment: API keys, base URLs and models come in
// through Options, filled by cmd/.
package llm
