// Package e2e holds the tests that run triage's binaries as processes: the
// consumer against a broker that outlives it (SIGTERM, SIGKILL), and
// cmd/sampler processes joining, leaving and dying while events flow over
// Streamable HTTP. It has no code of its own.
package e2e
