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
