// Package headless runs Debian's Chromium headless for the tests of the
// status page: it loads a page kept off the network and returns the
// rendered DOM, or writes a screenshot.
//
// Chromium is driven by its command-line modes (--dump-dom, --screenshot)
// rather than the DevTools protocol, so the tests need no module beyond
// the standard library. scripts/test installs the chromium package; a test
// that cannot find it must fail, not skip.
package headless

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// ErrNoChromium means no Chromium binary is on PATH.
var ErrNoChromium = errors.New("headless: no chromium on PATH: scripts/test installs it (apt-get install -y chromium)")

// Find returns the path of the Chromium binary.
func Find() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNoChromium
}

// Browser is a Chromium binary and the options of each run.
type Browser struct {
	// Bin is the binary (Find).
	Bin string
	// ProfileDir is an empty directory for the run's profile; each run
	// needs its own (a test's t.TempDir()).
	ProfileDir string
	// Width and Height size the window. Default 1366x768, a laptop.
	Width, Height int
	// BudgetMS is the virtual time the page gets before Chromium dumps or
	// shoots it: its timers run, and time stands still while its requests
	// are in flight, so the first fetches and renders finish. Default 5000.
	BudgetMS int
}

// DumpDOM loads url and returns the DOM as serialised after the budget.
func (b Browser) DumpDOM(ctx context.Context, url string) (string, error) {
	return b.run(ctx, url, "--dump-dom")
}

// Screenshot loads url and writes a PNG of the window to path.
func (b Browser) Screenshot(ctx context.Context, url, path string) error {
	_, err := b.run(ctx, url, "--screenshot="+path, "--hide-scrollbars")
	return err
}

// run starts Chromium kept off the network: no background services, no
// first-run, sync or component updates, and every host name but
// 127.0.0.1 resolving to nothing. --no-sandbox because tests run as root.
func (b Browser) run(ctx context.Context, url string, mode ...string) (string, error) {
	if b.Bin == "" || b.ProfileDir == "" {
		return "", errors.New("headless: Browser needs Bin and ProfileDir")
	}
	w, h, budget := b.Width, b.Height, b.BudgetMS
	if w <= 0 || h <= 0 {
		w, h = 1366, 768
	}
	if budget <= 0 {
		budget = 5000
	}
	args := append([]string{
		"--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--metrics-recording-only", "--disable-default-apps",
		"--disable-extensions", "--no-default-browser-check", "--disable-dev-shm-usage",
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--user-data-dir=" + b.ProfileDir,
		fmt.Sprintf("--window-size=%d,%d", w, h),
		fmt.Sprintf("--virtual-time-budget=%d", budget),
	}, mode...)
	cmd := exec.CommandContext(ctx, b.Bin, append(args, url)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("headless: chromium %s: %w\n%s", strings.Join(mode, " "), err, lastLines(stderr.String(), 20))
	}
	return stdout.String(), nil
}

// Version is the binary's version line, e.g. "Chromium 156.0.8078.114 …".
func (b Browser) Version(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, b.Bin, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("headless: chromium --version: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
