package chtest

import (
	"fmt"
	"net"
	"os"
	"testing"
)

// Instance is a ClickHouse server that belongs to one test, for tests that
// stop and start it (outages, restarts). It has its own work directory and
// ports, so it never disturbs the shared server.
type Instance struct {
	dir string
	env []string
	dsn string
}

// Dedicated starts a server of the test's own on free loopback ports with a
// fresh work directory, and registers its stop and the directory's removal
// with t.Cleanup. TRIAGE_CLICKHOUSE_DSN does not apply: a server the test
// does not own cannot be stopped. Where no server can be had, the test
// fails.
func Dedicated(t testing.TB) *Instance {
	t.Helper()
	// Not t.TempDir: its parents are private to root, and the server runs as
	// user clickhouse, which must reach the directory.
	dir, err := os.MkdirTemp("", "triage-clickhouse-")
	if err != nil {
		t.Fatalf("chtest: %v", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("chtest: %v", err)
	}
	ports := freePorts(t, 2)
	in := &Instance{
		dir: dir,
		env: []string{
			"CLICKHOUSE_DIR=" + dir,
			fmt.Sprintf("CLICKHOUSE_TCP_PORT=%d", ports[0]),
			fmt.Sprintf("CLICKHOUSE_HTTP_PORT=%d", ports[1]),
		},
	}
	t.Cleanup(func() {
		if _, stderr, err := runScript(in.env, "stop"); err != nil {
			t.Errorf("chtest: stopping the dedicated server: %v\n%s", err, stderr)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("chtest: %v", err)
		}
	})
	in.Start(t)
	return in
}

// DSN returns the server's DSN; it is the same across Stop and Start.
func (in *Instance) DSN() string { return in.dsn }

// Start starts the server (again), keeping its data, and returns once it
// answers. Starting a running server does nothing.
func (in *Instance) Start(t testing.TB) {
	t.Helper()
	dsn, stderr, err := runScript(in.env, "start")
	if stderr != "" {
		t.Logf("scripts/clickhouse start: %s", stderr)
	}
	need(t, err)
	in.dsn = dsn
}

// Stop stops the server (TERM, then KILL after 10 s) and returns once its
// process is gone. Stopping a stopped server does nothing.
func (in *Instance) Stop(t testing.TB) {
	t.Helper()
	_, stderr, err := runScript(in.env, "stop")
	if err != nil {
		t.Fatalf("chtest: %v\n%s", err, stderr)
	}
	if stderr != "" {
		t.Logf("scripts/clickhouse stop: %s", stderr)
	}
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	// All listeners stay open until every port is chosen, so the ports differ.
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("chtest: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}
