// Package chtest gives tests a real ClickHouse server.
//
// The server is Debian's clickhouse-server run by scripts/clickhouse.
// scripts/test installs and starts it before any test runs; tests only start
// the installed server (they never install it: no test reaches a package
// registry). Where no server can be had, a test that needs one fails with
// the script's reason and what to run: it never passes by skipping.
//
// Server returns the DSN of a server shared by every test and every test
// binary of the run (scripts/clickhouse start is idempotent and serialised by
// a lock), or of the server named by TRIAGE_CLICKHOUSE_DSN. Tests isolate
// themselves with FreshDatabase. A test that stops and restarts ClickHouse
// must use a Dedicated instance: stopping the shared one would break the test
// binaries that run beside it.
//
// The driver is github.com/ClickHouse/clickhouse-go/v2 pinned at v2.26.0:
// v2.27.0 and newer fail every batch insert against Debian's 18.16 server
// ("expected 0 arguments"), and their HTTP protocol option fails too;
// v2.26.0 also works against modern servers. Do not upgrade it without
// running these tests against 18.16.
package chtest

import (
	"slices"
	"testing"
	"time"

	"github.com/triage-dev/triage/internal/testrun"
)

// EnvDSN names the environment variable that points Server at an existing
// server instead of starting one, e.g. clickhouse://127.0.0.1:9000/default.
const EnvDSN = "TRIAGE_CLICKHOUSE_DSN"

// scriptTimeout bounds one run of scripts/clickhouse; a start may wait for
// another test binary's start, which holds the script's lock.
const scriptTimeout = 5 * time.Minute

// help says how to get a server when none can be had.
var help = "run ./scripts/test, which installs and starts one, or scripts/clickhouse start (as root, to install it), or set " + EnvDSN

var shared = testrun.Shared{
	Script:   "clickhouse",
	Env:      []string{"CLICKHOUSE_NO_INSTALL=1"},
	Timeout:  scriptTimeout,
	Override: EnvDSN,
	Help:     help,
}

// Server returns the DSN of the shared ClickHouse server, starting it with
// scripts/clickhouse (default work directory and ports) the first time a test
// binary asks. If TRIAGE_CLICKHOUSE_DSN is set, Server returns it and starts
// nothing. Where no server can be had, the test fails.
func Server(t testing.TB) string {
	t.Helper()
	return shared.Start(t)
}

// need fails the test when err is not nil, saying how to get a server when
// none can be had.
func need(t testing.TB, err error) {
	t.Helper()
	testrun.Need(t, err, help)
}

// runScript runs scripts/clickhouse with args and env, never installing
// the server (CLICKHOUSE_NO_INSTALL), and returns its stdout (the DSN for
// start) and its stderr (progress and reasons).
func runScript(env []string, args ...string) (stdout, stderr string, err error) {
	return testrun.Script("clickhouse", scriptTimeout, slices.Concat(shared.Env, env), args...)
}
