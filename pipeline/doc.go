// Package pipeline owns the consume → decode → rules → decide → emit → commit
// loop: a franz-go consumer group over the event topics, validation with
// dead-lettering of bad records, the rule stage, a bounded pool of workers
// for the events the rules leave ambiguous, the decision, audit and DLQ
// emitters, and offset tracking that commits a record only once every record
// at or below it has its outputs acknowledged by the broker.
//
// The pipeline knows nothing of MCP or LLMs: ambiguous events go to a
// [Decider], and a decider that fails (or no decider at all) yields the
// event type's conservative fallback outcome, never a lost event.
package pipeline
