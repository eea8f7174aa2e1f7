package kafkatest

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage/internal/testrun"
)

// EnvBrokers names the environment variable that points ApacheKafka at an
// existing broker instead of starting one: comma-separated host:port seeds.
const EnvBrokers = "TRIAGE_KAFKA_BROKERS"

// scriptTimeout bounds one run of scripts/kafka: a broker start, or waiting
// for another binary's start to release the script's lock.
const scriptTimeout = 3 * time.Minute

var apache = testrun.Shared{
	Script:   "kafka",
	Env:      []string{"KAFKA_NO_INSTALL=1"},
	Timeout:  scriptTimeout,
	Override: EnvBrokers,
	Help:     "run ./scripts/test, which fetches and starts one, or scripts/kafka start, or set " + EnvBrokers,
}

// ApacheKafka returns the seed brokers of the shared Apache Kafka broker (a
// single KRaft node), starting it with scripts/kafka (default work directory,
// KAFKA_PORT and KAFKA_CONTROLLER_PORT from the environment) the first time a
// test binary asks. scripts/kafka start is idempotent and serialised by a
// lock, so every test binary of a run shares one broker: tests must create
// their own topics, groups and transactional IDs with Name. If
// TRIAGE_KAFKA_BROKERS is set, ApacheKafka returns it and starts nothing.
//
// Tests never fetch the broker's jars (KAFKA_NO_INSTALL=1): scripts/test does
// that before any test runs. Where no broker can be had, the test fails with
// the reason and what to run; it never skips.
func ApacheKafka(t testing.TB) []string {
	t.Helper()
	return strings.Split(apache.Start(t), ",")
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// Name returns a topic, group or transactional ID unique to this test run:
// the prefix, the test's name and random hex. Tests on a shared broker (see
// ApacheKafka) name everything they create with it, so parallel tests and
// test binaries never meet.
func Name(t testing.TB, prefix string) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := unsafeName.ReplaceAllString(t.Name(), "_")
	if len(name) > 120 { // topic names are at most 249 characters
		name = name[:120]
	}
	return prefix + "." + name + "." + hex.EncodeToString(b[:])
}
