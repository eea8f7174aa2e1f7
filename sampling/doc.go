// Package sampling owns the MCP server side of triage's LLM stage: the
// sampler session registry, the bounded pool that leases ambiguous items to
// samplers (pulled through a work tool, or pushed with sampling/createMessage
// to legacy hosts), request building from the event type's template, answer
// validation, timeouts, fallback and guards.
//
// The pipeline reaches this package only through its own one-method
// pipeline.Decider interface. Until a sampler implementation is wired in,
// the pipeline treats a missing decider as "no sampler" and gives every
// ambiguous event its type's conservative fallback.
package sampling
