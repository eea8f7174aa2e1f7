// Package sampling owns the server side of triage's LLM stage.
//
// [Pool] is an MCP server and the pipeline's Decider: ambiguous items wait
// in a queue (bounded by the pipeline's workers, each blocked in Decide) and
// are leased to samplers, which pull them through the work tool as
// multi round-trip input requests (protocol 2026-07-28, or through the SDK's
// server-side middleware for older clients), or get them pushed with
// sampling/createMessage when they are legacy hosts that do not pull. A
// lease that is not answered in the type's timeout goes back to the queue
// once, then falls back; an item is decided exactly once. The wire contract
// with samplers is package [work]; triage's own sampler is package
// sampling/client, which this package does not import.
//
// A sampler session whose leases keep failing (error results, expired
// leases, answers that stay invalid) is quarantined by a circuit breaker of
// its own, so that healthy samplers take the work: after
// Options.QuarantineAfter failures in a row, when they are also at least
// half of its recent leases and another sampler stands by, it is given no
// work for Options.QuarantineFor, then one lease that ends or renews the
// quarantine. A session is known by the name the sampler gives itself
// (work.Args Sampler) and, on 2025-11-25, its session id. Quarantines are
// logged and counted (Metrics: triage_sampling_sessions_quarantined,
// triage_sampling_session_breaker_transitions_total).
//
// [Direct] decides by calling an LLM provider API itself, the migration path
// for when MCP sampling goes away (SEP-2577).
//
// Tools: a type's sampling block may offer tools (rules.Tools:
// transaction_history, document_metadata). Both offer them to samplers
// (or, in direct mode, providers) that run tool loops: a 2026-07-28
// sampler that says so in the work tool's arguments (work.Args Tools), or
// an older session that declared capabilities.sampling.tools; every other
// sampler gets the request without tools, as before. A response that calls
// tools is a round: the server runs each call in the scope of the event
// under decision, refusing a key or tenant other than its own, records
// every call and refusal as an audit record of its own (kind tool_call,
// status ok, denied or error), and sends the next request on the same
// lease with the calls and their results, up to the type's
// max_tool_rounds; then it asks for the answer without tools. The
// transaction_history tool reads a [History] that the pipeline feeds
// (pipeline.Config.Observe).
//
// Both build the request from the event type's sampling configuration
// (rules.Prompt: allow-listed, masked fields), validate the answer against
// the type's decision schema with one corrective follow-up ([ParseAnswer]),
// and return an audit record per attempt. Failures are errors whose
// FallbackReason (no_sampler, lease_expired, invalid_answer, timeout,
// error) the pipeline records with the fallback decision.
package sampling
