package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/triage-dev/triage/internal/testrun"
)

// childArgs names the variable that makes this test binary run the
// consumer's main with the JSON list of arguments it holds: signal handling
// is process-wide, so it is tested in a process of its own.
const childArgs = "TRIAGE_TEST_CONSUMER_ARGS"

func TestMain(m *testing.M) {
	if v := os.Getenv(childArgs); v != "" {
		var args []string
		if err := json.Unmarshal([]byte(v), &args); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Args = append([]string{"consumer"}, args...)
		main()
		return
	}
	os.Exit(m.Run())
}

// A second SIGTERM ends the consumer at once, while the graceful shutdown
// the first one started is still draining (the builtin sampler's model takes
// an hour, so sampled events are in flight). Before, the second signal was
// swallowed and the process ran on until its shutdown ended by itself.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	addr := testrun.FreeAddr(t)
	args, _ := json.Marshal([]string{
		// All events at once: the signals come while the run drains, not
		// while it still produces.
		"--embedded", "--embedded-port", "0", "--demo", "2000", "--demo-rate", "0",
		"--offline-latency", "1h", "--drain-timeout", "1h",
		"--http-listen", addr, "--mcp-listen", "", "--log-level", "info", "--log-format", "json",
	})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childArgs+"="+string(args))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	draining := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		seen := false
		for sc.Scan() {
			if !seen && strings.Contains(sc.Text(), "shutdown: draining") {
				seen = true
				close(draining)
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	// Wait until an ambiguous event is with the sampler, whose answer will
	// take the hour.
	testrun.Until(t, "a sampled event in flight", 60*time.Second, 50*time.Millisecond, func() bool {
		return sampledInFlight(addr) > 0
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-draining:
	case err := <-exited:
		t.Fatalf("the consumer exited before draining (%v): the test needs a shutdown in progress", err)
	case <-time.After(60 * time.Second):
		t.Fatal("no graceful shutdown began within 60s of the first SIGTERM")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("exit: %v, want the second SIGTERM to end the process", err)
		}
		ws, ok := ee.Sys().(syscall.WaitStatus)
		if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
			t.Fatalf("exit: %v, want death by the second SIGTERM", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the consumer still runs 60s after a second SIGTERM")
	}
}

// sampledInFlight reads triage_sampling_items from the consumer's /metrics,
// or -1 when it cannot.
func sampledInFlight(addr string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "triage_sampling_items "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	return -1
}
