// Package e2e holds the tests that run triage's binaries as processes: the
// consumer against a broker that outlives it (SIGTERM, SIGKILL), and
// cmd/sampler processes joining, leaving and dying while events flow over
// Streamable HTTP. These run once on every broker of kafkatest.Brokers
// (kfake and Apache Kafka), each run with its own topics and group; the
// README's --embedded run uses the consumer's own broker. It has no code of
// its own.
package e2e
