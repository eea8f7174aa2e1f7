package testrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// ExitUnavailable is the exit code of the project's server scripts
// (scripts/clickhouse, scripts/kafka) for "cannot be had on this machine";
// their last line on stderr, "<name>: unavailable: <reason>", says why.
const ExitUnavailable = 3

// UnavailableError is a script run that ended with ExitUnavailable.
type UnavailableError struct {
	// Script is the script's name, e.g. "kafka".
	Script string
	// Reason is the script's one-line reason.
	Reason string
}

func (e *UnavailableError) Error() string { return e.Script + " unavailable: " + e.Reason }

// Script runs scripts/<name> of the module root with args and the process
// environment plus env, bounded by timeout, and returns its stdout and
// stderr, both trimmed. A run that exits with ExitUnavailable is an
// *UnavailableError. Tests pass the script's no-install variable in env:
// installing reaches a package registry, which only scripts/test does,
// before any test.
func Script(name string, timeout time.Duration, env []string, args ...string) (stdout, stderr string, err error) {
	path, err := scriptPath(name)
	if err != nil {
		return "", "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{path}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	// The scripts hand their servers their own stdio, so the pipes close
	// when a script exits; WaitDelay guards against a regression holding
	// them open.
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	stdout, stderr = strings.TrimSpace(out.String()), strings.TrimSpace(errOut.String())
	var exit *exec.ExitError
	switch {
	case err == nil:
		return stdout, stderr, nil
	case errors.As(err, &exit) && exit.ExitCode() == ExitUnavailable:
		reason := stderr
		if i := strings.LastIndexByte(reason, '\n'); i >= 0 {
			reason = reason[i+1:]
		}
		return stdout, stderr, &UnavailableError{Script: name, Reason: strings.TrimPrefix(reason, name+": unavailable: ")}
	default:
		return stdout, stderr, fmt.Errorf("scripts/%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr)
	}
}

// scriptPath finds scripts/<name> in the module root: the nearest directory
// above the working directory (a test's package directory) that holds
// go.mod.
func scriptPath(name string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("testrun: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "scripts", name), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testrun: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Shared is a server run by one of the project's scripts and shared by
// every test of every test binary in a run: the script's start is
// idempotent and serialised by a lock, so the first test in each binary to
// ask starts it (or finds it running) and the rest reuse the answer.
type Shared struct {
	// Script is the script's name ("clickhouse").
	Script string
	// Env is added to the script's environment: at least its no-install
	// variable, since only scripts/test may reach a package registry.
	Env []string
	// Timeout bounds the start, which may wait for another binary's.
	Timeout time.Duration
	// Override names an environment variable that, when set, is returned
	// instead of starting anything (an existing server's address).
	Override string
	// Help says how to get the server, for the failure when it cannot be
	// had.
	Help string

	once sync.Once
	out  string
	log  string
	err  error
}

// Start returns what the script's start printed (an address), or the
// Override variable's value. Where no server can be had, the test fails
// with the script's reason and Help: it never skips.
func (s *Shared) Start(t testing.TB) string {
	t.Helper()
	if v := os.Getenv(s.Override); s.Override != "" && v != "" {
		return v
	}
	s.once.Do(func() {
		s.out, s.log, s.err = Script(s.Script, s.Timeout, s.Env, "start")
		if s.err == nil && s.out == "" {
			s.err = fmt.Errorf("scripts/%s start printed nothing", s.Script)
		}
	})
	if s.log != "" {
		t.Logf("scripts/%s start: %s", s.Script, s.log)
	}
	Need(t, s.err, s.Help)
	return s.out
}

// Need fails the test when err is not nil; when err is an
// *UnavailableError, the failure gives the script's reason and help, what
// to run to get the server. It never skips.
func Need(t testing.TB, err error, help string) {
	t.Helper()
	var ue *UnavailableError
	switch {
	case errors.As(err, &ue):
		t.Fatalf("%v\nthis test needs it: %s", err, help)
	case err != nil:
		t.Fatalf("%v", err)
	}
}
