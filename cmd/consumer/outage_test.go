package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/triage-dev/triage/internal/chtest"
	"github.com/triage-dev/triage/internal/config"
	"github.com/triage-dev/triage/internal/demo"
	"github.com/triage-dev/triage/internal/testrun"
)

// startServe runs serve with the consumer's flags args (after the shared
// --embedded ones) and a debug logger writing to the returned buffer, and
// returns once the ops endpoint listens, with its address, or fails the
// test if serve returned first. The serve error arrives on errc.
func startServe(t *testing.T, ctx context.Context, args ...string) (addr string, logs *testrun.Buffer, errc <-chan error) {
	t.Helper()
	cfg, err := config.Load("consumer", append([]string{
		"--embedded", "--embedded-port", "0", "--http-listen", "127.0.0.1:0", "--mcp-listen", "",
	}, args...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	logs = &testrun.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ec := make(chan error, 1)
	go func() { ec <- serve(ctx, cfg, log) }()
	testrun.Until(t, "the ops endpoint", time.Minute, 20*time.Millisecond, func() bool {
		select {
		case err := <-ec:
			t.Fatalf("serve returned before its ops endpoint listened: %v\n%s", err, logs)
		default:
		}
		addr = logField(logs.String(), "http listening", "addr")
		return addr != ""
	})
	return addr, logs, ec
}

// logField returns field of the first JSON log line whose msg is msg.
func logField(logs, msg, field string) string {
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
			s, _ := line[field].(string)
			return s
		}
	}
	return ""
}

// countLogs counts the JSON log lines of level whose msg starts with prefix.
func countLogs(logs, level, prefix string) int {
	n := 0
	for _, l := range strings.Split(logs, "\n") {
		var line struct{ Level, Msg string }
		if json.Unmarshal([]byte(l), &line) == nil && line.Level == level && strings.HasPrefix(line.Msg, prefix) {
			n++
		}
	}
	return n
}

// get returns the status and body of http://addr+path.
func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// metric sums the samples of name (every label set) that /metrics shows.
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	_, body := get(t, addr, "/metrics")
	sum := 0.0
	for _, l := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(l, name)
		if !ok || !(strings.HasPrefix(rest, "{") || strings.HasPrefix(rest, " ")) {
			continue
		}
		v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("/metrics: %q: %v", l, err)
		}
		sum += v
	}
	return sum
}

// withDatabase returns dsn with its database set to db.
func withDatabase(t *testing.T, dsn, db string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + db
	return u.String()
}

// TestDemoClickHouseDownAtStart starts the demo with --clickhouse while
// ClickHouse is down (issue 8): the pipeline decides every event and
// /readyz says ready while the sink waits, then ClickHouse starts, the sink
// stores everything and the demo ends with its report.
func TestDemoClickHouseDownAtStart(t *testing.T) {
	const events = 500
	in := chtest.Dedicated(t)
	dsn := withDatabase(t, in.DSN(), "triage")
	in.Stop(t)

	summary := filepath.Join(t.TempDir(), "summary.json")
	var addr string
	var logs *testrun.Buffer
	var errc <-chan error
	stdout := captureStdout(t, func() {
		addr, logs, errc = startServe(t, t.Context(),
			"--demo", strconv.Itoa(events), "--demo-bad", "0", "--summary-json", summary, "--clickhouse", dsn)
		testrun.Until(t, "every event decided while ClickHouse is down", 2*time.Minute, 50*time.Millisecond, func() bool {
			select {
			case err := <-errc:
				t.Fatalf("serve returned while ClickHouse was down: %v\n%s", err, logs)
			default:
			}
			return metric(t, addr, "triage_decisions_total") == events
		})
		if code, body := get(t, addr, "/readyz"); code != http.StatusOK {
			t.Errorf("/readyz while ClickHouse is down: %d %q, want 200: the decisions do not need ClickHouse", code, body)
		}
		if code, body := get(t, addr, "/readyz/sink"); code != http.StatusServiceUnavailable || !strings.Contains(body, "ClickHouse") {
			t.Errorf("/readyz/sink while ClickHouse is down: %d %q, want 503 saying it waits for ClickHouse", code, body)
		}
		if _, body := get(t, addr, "/readyz?verbose"); !strings.Contains(body, "[+]pipeline ready") || !strings.Contains(body, "[-]sink ") {
			t.Errorf("/readyz?verbose while ClickHouse is down:\n%s", body)
		}
		if v := metric(t, addr, "triage_sink_connected"); v != 0 {
			t.Errorf("triage_sink_connected = %v while ClickHouse is down, want 0", v)
		}

		in.Start(t)
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("serve: %v\n%s", err, logs)
			}
		case <-time.After(3 * time.Minute): // a hang guard: catchUpTimeout is 2 min
			t.Fatalf("the demo did not end after ClickHouse started\n%s", logs)
		}
	})
	if !strings.Contains(stdout, "== Decisions per minute by path and outcome") {
		t.Errorf("the demo's output has no dashboards:\n%s", stdout)
	}
	data, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	var s demo.Report
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	conn := chtest.Open(t, dsn)
	var decisions, auditRows uint64
	if err := conn.QueryRow(t.Context(), "SELECT (SELECT uniqExact(tenant_id, event_id) FROM decisions), (SELECT uniqExact(audit_id) FROM audit)").Scan(&decisions, &auditRows); err != nil {
		t.Fatal(err)
	}
	if s.Decisions != events || decisions != events || auditRows != uint64(s.AuditRecords) {
		t.Fatalf("ClickHouse has %d decisions and %d audit records; the demo made %d and %d of %d events", decisions, auditRows, s.Decisions, s.AuditRecords, events)
	}
	if n := countLogs(logs.String(), "WARN", "clickhouse unreachable"); n != 1 {
		t.Errorf("%d warnings that ClickHouse is unreachable, want the first failure only\n%s", n, logs)
	}
}

// TestShutdownWhileClickHouseDown stops a consumer whose sink still waits
// for ClickHouse: a server that refuses connections, and one that accepts
// them and never answers (the DSN's dial timeout, a minute, is not waited
// for).
func TestShutdownWhileClickHouseDown(t *testing.T) {
	refusedAddr := testrun.FreeAddr(t)
	hanging, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hanging.Close() })
	go func() {
		var held []net.Conn // never answered; closed with the listener's test
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := hanging.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()

	for _, tc := range []struct{ name, addr string }{{"refused", refusedAddr}, {"hanging", hanging.Addr().String()}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			addr, logs, errc := startServe(t, ctx, "--clickhouse", "clickhouse://"+tc.addr+"/triage?dial_timeout=60s")
			testrun.Until(t, "the pipeline ready", time.Minute, 20*time.Millisecond, func() bool {
				code, _ := get(t, addr, "/readyz")
				return code == http.StatusOK
			})
			if code, body := get(t, addr, "/readyz/sink"); code != http.StatusServiceUnavailable {
				t.Errorf("/readyz/sink: %d %q, want 503", code, body)
			}
			cancel()
			start := time.Now()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("serve: %v\n%s", err, logs)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("serve did not return within 20 s of shutdown\n%s", logs)
			}
			t.Logf("serve returned %s after shutdown", time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestClickHouseNeverComes: the demo's wait for the sink ends at its bound
// with a message that says the sink never reached ClickHouse and why.
func TestClickHouseNeverComes(t *testing.T) {
	refused := testrun.FreeAddr(t)
	cfg := config.Default()
	cfg.ClickHouse = "clickhouse://" + refused + "/triage"
	ch, err := newClickHouseSink(cfg, []string{"127.0.0.1:1"}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	stop := testrun.Background(t, "the sink", 10*time.Second, ch.run)
	testrun.Until(t, "a failed attempt", time.Minute, 10*time.Millisecond, func() bool {
		return strings.HasPrefix(ch.status(), "waiting for ClickHouse")
	})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond) // stands in for catchUpTimeout
	defer cancel()
	err = ch.waitCaughtUp(ctx)
	if err == nil || !strings.Contains(err.Error(), "never reached ClickHouse") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("waitCaughtUp = %v, want it to say the sink never reached ClickHouse and why", err)
	}
	t.Log(err)
	if err := ch.report(t.Context(), io.Discard); err == nil {
		t.Error("report without ClickHouse succeeded")
	}
	if err := stop(); err != nil {
		t.Errorf("stopping the sink while it waits: %v", err)
	}
}

// TestBadDSNFailsAtStart: a DSN that does not parse fails start-up with a
// clear error, before anything waits for ClickHouse.
func TestBadDSNFailsAtStart(t *testing.T) {
	cfg, err := config.Load("consumer", []string{"--embedded", "--embedded-port", "0", "--http-listen", "", "--mcp-listen", "",
		"--clickhouse", "clickhouse://127.0.0.1:9000/triage?dial_timeout=soon"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	err = serve(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "clickhouse DSN") || !strings.Contains(err.Error(), "soon") {
		t.Fatalf("serve = %v, want an error about the DSN", err)
	}
	t.Log(err)
}

// TestSinkAloneWaits: `consumer sink` started while ClickHouse is down
// waits (not ready, saying why) instead of exiting, and stops cleanly.
func TestSinkAloneWaits(t *testing.T) {
	refused := testrun.FreeAddr(t)
	// A port free a moment ago for the ops endpoint: runSink logs to
	// stderr, where the test cannot read the address of port 0.
	ops := testrun.FreeAddr(t)
	stop := testrun.Background(t, "consumer sink", 20*time.Second, func(ctx context.Context) error {
		if code := runSink(ctx, []string{"--brokers", "127.0.0.1:1", "--clickhouse", "clickhouse://" + refused + "/triage",
			"--http-listen", ops, "--log-level", "error"}, io.Discard); code != 0 {
			return fmt.Errorf("exit %d", code)
		}
		return nil
	})
	testrun.Until(t, "the sink to say it waits for ClickHouse", time.Minute, 20*time.Millisecond, func() bool {
		resp, err := http.Get("http://" + ops + "/readyz?verbose")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(b), "[-]sink waiting for ClickHouse")
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
