package testrun

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A script's exit code 3 is an UnavailableError carrying its last line's
// reason; other failures are plain errors; output comes back trimmed.
func TestScript(t *testing.T) {
	root := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("go.mod", "module example\n")
	write("scripts/ok", "echo \"  addr:1 $X\"\necho progress >&2\n")
	write("scripts/gone", "echo trying >&2\necho 'gone: unavailable: not installed' >&2\nexit 3\n")
	write("scripts/broken", "echo oops >&2\nexit 1\n")
	t.Chdir(filepath.Join(root, "scripts")) // found from below the module root

	out, errOut, err := Script("ok", time.Minute, []string{"X=y"})
	if err != nil || out != "addr:1 y" || errOut != "progress" {
		t.Errorf("ok: %q, %q, %v", out, errOut, err)
	}
	_, _, err = Script("gone", time.Minute, nil, "start")
	var ue *UnavailableError
	if !errors.As(err, &ue) || ue.Script != "gone" || ue.Reason != "not installed" {
		t.Errorf("gone: %v, want unavailable: not installed", err)
	}
	_, _, err = Script("broken", time.Minute, nil, "start")
	if err == nil || errors.As(err, &ue) {
		t.Errorf("broken: %v, want a plain error", err)
	}
}
