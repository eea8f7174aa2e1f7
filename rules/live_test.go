package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage/internal/testrun"
)

// ruleVersion is a valid rules file whose one rule has the given action.
func ruleVersion(action string) []byte {
	return []byte(fmt.Sprintf(ruleFile, "event.n > params.limit", action))
}

var badVersion = []byte(fmt.Sprintf(ruleFile, "event.n >", "ok"))

// action returns the action of the rule in force.
func action(l *Live) string {
	t, _ := l.Current().Type("t")
	return t.Rules[0].Action
}

// waitFor waits, without sleeping, until cond holds after some reload.
func waitFor(t *testing.T, l *Live, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		ch := l.Changed() // before checking, so a reload in between is not missed
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s (Err: %v)", what, l.Err())
		}
	}
}

// writeFile writes data to path; renamed, it writes a temporary file and
// renames it over path, as editors and config tools do.
func writeFile(t *testing.T, path string, data []byte, renamed bool) {
	t.Helper()
	target := path
	if renamed {
		target = path + ".tmp"
	}
	if err := os.WriteFile(target, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if renamed {
		if err := os.Rename(target, path); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWatchReloadsOnChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	writeFile(t, path, ruleVersion("bad"), false)
	var logs testrun.Buffer
	l, err := Watch(t.Context(), path, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if got := action(l); got != "bad" {
		t.Fatalf("initial action = %s, want bad", got)
	}

	writeFile(t, path, ruleVersion("ok"), true)
	waitFor(t, l, "the renamed-in file", func() bool { return action(l) == "ok" })
	good := l.Current()

	writeFile(t, path, badVersion, false)
	waitFor(t, l, "the bad file to be reported", func() bool { return l.Err() != nil })
	if l.Current() != good {
		t.Error("a bad file replaced the Set; want the previous one kept")
	}
	if err := l.Err(); !strings.Contains(err.Error(), path+":15:") {
		t.Errorf("Err = %v, want the path and line", err)
	}
	if !strings.Contains(logs.String(), "reload failed") {
		t.Errorf("log does not report the failed reload:\n%s", logs.String())
	}

	writeFile(t, path, ruleVersion("sample"), false)
	waitFor(t, l, "the fixed file", func() bool { return action(l) == "sample" })
	if err := l.Err(); err != nil {
		t.Errorf("Err after a good reload = %v, want nil", err)
	}
	if ok, failed := l.Reloads(); ok != 2 || failed == 0 {
		t.Errorf("Reloads = %d ok, %d failed; want 2 ok and some failed", ok, failed)
	}
}

// TestWatchKeepsMaskKey checks that a reload parses with Watch's mask key:
// a file that hashes reloads, and its pseudonyms stay the same.
func TestWatchKeepsMaskKey(t *testing.T) {
	hashed := func(action string) []byte { return append(ruleVersion(action), "      mask: {n: hash}\n"...) }
	pseudonym := func(l *Live) any {
		typ, _ := l.Current().Type("t")
		p, err := typ.Prompt(validated(t, l.Current(), "t", map[string]any{"id": "x", "n": 7}, nil), "r1")
		if err != nil {
			t.Fatal(err)
		}
		return p.Context["n"]
	}
	path := filepath.Join(t.TempDir(), "rules.yaml")
	writeFile(t, path, hashed("bad"), false)
	if _, err := Watch(t.Context(), path, nil); !errors.Is(err, ErrNoMaskKey) {
		t.Fatalf("Watch without a key = %v, want ErrNoMaskKey", err)
	}
	l, err := Watch(t.Context(), path, nil, WithMaskKey(testKey))
	if err != nil {
		t.Fatal(err)
	}
	before := pseudonym(l)
	if before != MaskValue(MaskHash, 7.0, testKey) {
		t.Fatalf("pseudonym = %v, want the test key's", before)
	}
	writeFile(t, path, hashed("ok"), false)
	if err := l.Reload(); err != nil {
		t.Fatalf("Reload = %v", err)
	}
	if got := action(l); got != "ok" {
		t.Errorf("action after reload = %s, want ok", got)
	}
	if got := pseudonym(l); got != before {
		t.Errorf("pseudonym after reload = %v, want %v as before", got, before)
	}
}

func TestReloadLikeSIGHUP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	writeFile(t, path, ruleVersion("bad"), false)
	l, err := Watch(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		data       []byte
		wantErr    string
		wantAction string
		wantSame   bool // the Set (and its counters) is kept
	}{
		{"changed", ruleVersion("ok"), "", "ok", false},
		{"unchanged", ruleVersion("ok"), "", "ok", true},
		{"bad", badVersion, `t rule "r1": compile:`, "ok", true},
		{"fixed", ruleVersion("sample"), "", "sample", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := l.Current()
			writeFile(t, path, tt.data, false)
			// The watcher may reload the same content first; Reload's answer
			// and the Set in force are the same either way.
			err := l.Reload()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Reload = %v, want error containing %q", err, tt.wantErr)
			}
			if got := action(l); got != tt.wantAction {
				t.Errorf("action = %s, want %s", got, tt.wantAction)
			}
			if same := l.Current() == before; same != tt.wantSame {
				t.Errorf("Set kept = %v, want %v", same, tt.wantSame)
			}
		})
	}
}

// TestWatchConfigMapSwap follows a Kubernetes ConfigMap volume: the file is
// a symlink through ..data, and an update swaps ..data to a new directory.
func TestWatchConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	for i, act := range []string{"bad", "ok"} {
		v := filepath.Join(dir, fmt.Sprintf("..v%d", i))
		if err := os.Mkdir(v, 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(v, "rules.yaml"), ruleVersion(act), false)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("..v0", filepath.Join(dir, "..data")))
	path := filepath.Join(dir, "rules.yaml")
	must(os.Symlink(filepath.Join("..data", "rules.yaml"), path))
	l, err := Watch(t.Context(), path, nil)
	must(err)

	must(os.Symlink("..v1", filepath.Join(dir, "..data_tmp")))
	must(os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	waitFor(t, l, "the swapped ConfigMap", func() bool { return action(l) == "ok" })
}

func TestWatchFailsOnBadFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, badVersion, false)
	tests := []struct{ name, path, want string }{
		{"bad file", bad, "bad.yaml:15:"},
		{"missing file", filepath.Join(dir, "missing.yaml"), "no such file"},
		{"missing directory", filepath.Join(dir, "nope", "rules.yaml"), "watch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Watch(t.Context(), tt.path, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Watch = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestWatchStopsWithContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	writeFile(t, path, ruleVersion("ok"), false)
	ctx, cancel := context.WithCancel(t.Context())
	l, err := Watch(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-l.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("watcher did not stop after its context ended")
	}
	if got := action(l); got != "ok" {
		t.Errorf("after stop, action = %s, want ok", got)
	}
}

func TestStatic(t *testing.T) {
	set := mustParse(t, "default.yaml", Default)
	l := Static(set)
	if l.Current() != set {
		t.Error("Current is not the Set given")
	}
	if err := l.Reload(); err != nil || l.Current() != set {
		t.Errorf("Reload = %v and changed the Set; want a no-op", err)
	}
	select {
	case <-l.Done():
	default:
		t.Error("Done is open for a Static Live")
	}
	select {
	case <-l.Changed():
		t.Error("Changed fired for a Static Live")
	default:
	}
}
