package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// binaryNames are the binaries a run needs.
var binaryNames = []string{"consumer", "producer", "sampler"}

// binaries returns the paths of the binaries in binDir or, with binDir
// empty, builds them with go build into a temporary directory that cleanup
// removes.
func binaries(ctx context.Context, binDir string, log *slog.Logger) (paths map[string]string, cleanup func(), err error) {
	paths = map[string]string{}
	cleanup = func() {}
	if binDir != "" {
		for _, name := range binaryNames {
			p := filepath.Join(binDir, name)
			if _, err := os.Stat(p); err != nil {
				return nil, cleanup, fmt.Errorf("--bin-dir: %w", err)
			}
			paths[name] = p
		}
		return paths, cleanup, nil
	}
	dir, err := os.MkdirTemp("", "triage-chaos-bin-")
	if err != nil {
		return nil, cleanup, fmt.Errorf("build: %w", err)
	}
	cleanup = func() { _ = os.RemoveAll(dir) }
	start := time.Now()
	for _, name := range binaryNames {
		p := filepath.Join(dir, name)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", p, "github.com/triage-dev/triage/cmd/"+name)
		if out, err := cmd.CombinedOutput(); err != nil {
			cleanup()
			return nil, func() {}, fmt.Errorf("go build %s (run inside the module, or pass --bin-dir): %w\n%s", name, err, out)
		}
		paths[name] = p
	}
	log.Info("built the binaries", "dir", dir, "took", time.Since(start).Round(time.Millisecond))
	return paths, cleanup, nil
}

// scriptsDir returns dir, or the scripts directory of the module around the
// working directory: the nearest directory above it holding go.mod.
func scriptsDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("scripts: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "scripts"), nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("scripts: no go.mod above the working directory; pass --scripts")
		}
	}
}

// scriptTimeout bounds one run of a server script: a stop (TERM, then
// KILL after its own deadline) or a start.
const scriptTimeout = 3 * time.Minute

// script runs scripts/<name> arg with this process's environment, never
// installing anything, its output appended to logPath.
func script(ctx context.Context, dir, logPath, name, arg string) error {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("scripts/%s %s: %w", name, arg, err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(ctx, scriptTimeout)
	defer cancel()
	fmt.Fprintf(f, "=== chaos: %s scripts/%s %s\n", time.Now().Format(time.RFC3339Nano), name, arg)
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(dir, name), arg)
	cmd.Env = append(os.Environ(), "KAFKA_NO_INSTALL=1", "CLICKHOUSE_NO_INSTALL=1")
	cmd.Stdout, cmd.Stderr = f, f
	// The scripts hand their servers their own stdio; WaitDelay guards
	// against one holding the file open.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("scripts/%s %s: %w (see %s)", name, arg, err, logPath)
	}
	return nil
}
