package llmtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/triage-dev/triage/rules"
)

// Timeout is every sampling timeout in PolicyFile: a small model on the CPU
// answers in seconds, and the server takes one request at a time, so a
// request may wait for several others.
const Timeout = "2m"

// PolicyFile writes the shipped policy (rules.Default) with every sampling
// timeout raised to Timeout and returns its path.
func PolicyFile(t testing.TB) string {
	t.Helper()
	policy := string(rules.Default)
	n := 0
	for _, d := range []string{"1s", "2s", "3s", "5s", "10s"} {
		old := "      timeout: " + d + "\n"
		n += strings.Count(policy, old)
		policy = strings.ReplaceAll(policy, old, "      timeout: "+Timeout+"\n")
	}
	if n < 2 {
		t.Fatal("llmtest: the shipped policy's sampling timeouts moved: update PolicyFile")
	}
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
