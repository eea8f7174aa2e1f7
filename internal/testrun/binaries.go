package testrun

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// commands are the project's binaries the process tests run.
var commands = []string{"consumer", "producer", "sampler"}

var built struct {
	once  sync.Once
	paths map[string]string
	err   error
}

// Binaries builds the consumer, producer and sampler once per test binary,
// with go build into a temporary directory, and returns their paths by
// name. A build that fails fails the test.
func Binaries(t testing.TB) map[string]string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "triage-bin-")
		if err != nil {
			built.err = err
			return
		}
		paths := map[string]string{}
		for _, name := range commands {
			p := filepath.Join(dir, name)
			out, err := exec.Command("go", "build", "-ldflags=-s -w", "-o", p, "github.com/triage-dev/triage/cmd/"+name).CombinedOutput()
			if err != nil {
				built.err = fmt.Errorf("go build %s: %w\n%s", name, err, out)
				return
			}
			paths[name] = p
		}
		built.paths = paths
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.paths
}
