// Package loadgen generates synthetic triage events and drives them through
// Kafka: it owns the event generator (Generator), the producing loop
// (Produce) and the end-to-end measurement that reads decisions back
// (Measure).
//
// The generator is built against the default policy of the shared contract
// (rules/default.yaml) without importing the rules package: every valid event
// is either "clear" (decided by a rule or the type's default, never sampled)
// or "ambiguous" (crafted to hit one of the policy's sample rules), and every
// malformed event is malformed in exactly one way whose name is the DLQ reason
// the consumer must report for it (Event.Bad). That lets a load test check the
// pipeline's routing, not only its throughput.
//
// The same Config, Seed included, yields the same events byte for byte as
// long as Config.Now is deterministic too; event ids therefore repeat across
// runs with the same seed, which is why Measure can skip records written
// before a given time.
//
// The package is used by cmd/producer and, in-process, by the consumer's demo
// mode; it never reads flags or the environment.
package loadgen
