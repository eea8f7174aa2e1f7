package deploy_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/triage-dev/triage/internal/config"
	"github.com/triage-dev/triage/internal/config/configtest"
)

// The deployment files start the binaries with flags and TRIAGE_*
// variables; these helpers check both against the binaries themselves.
// The consumer's configuration is a package (config.Load), so its flags
// are parsed and validated in process, files included. The sampler and the
// producer parse theirs in package main, so they are built and run with
// the flags and --help: their flag sets refuse an unknown flag or a bad
// value before they print the help.

// binDir holds the binaries built for this test run.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "triage-deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildMu  sync.Mutex
	builtErr = map[string]error{}
)

// binary builds ./cmd/name once per run and returns its path.
func binary(t *testing.T, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	out := filepath.Join(binDir, name)
	err, done := builtErr[name]
	if !done {
		cmd := exec.Command("go", "build", "-o", out, "github.com/triage-dev/triage/cmd/"+name)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err = cmd.Run(); err != nil {
			err = fmt.Errorf("go build ./cmd/%s: %w\n%s", name, err, stderr.String())
		}
		builtErr[name] = err
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// helpFlag is a flag line of the binaries' --help: "  -name TYPE  text".
var helpFlag = regexp.MustCompile(`(?m)^  -([a-z][a-z0-9-]*)\b`)

// flagsOf returns the flags the help lists, by their TRIAGE_* variable.
func flagsOf(t *testing.T, help string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range helpFlag.FindAllStringSubmatch(help, -1) {
		env := config.EnvVar(m[1])
		if !strings.Contains(help, "env "+env) {
			t.Fatalf("the help of -%s does not name %s", m[1], env)
		}
		out[env] = m[1]
	}
	if len(out) < 5 {
		t.Fatalf("only %d flags found in the help:\n%s", len(out), help)
	}
	return out
}

// providerEnv are the variables outside TRIAGE_* that the binaries read:
// the providers' own key variables (config.APIKey), which the sampler and
// the consumer use when --api-key is empty.
var providerEnv = []string{"ANTHROPIC_API_KEY", "OPENAI_API_KEY"}

// consumerFlags returns the consumer's flags by variable.
func consumerFlags(t *testing.T) map[string]string {
	t.Helper()
	var help bytes.Buffer
	if _, err := config.Load("consumer", []string{"--help"}, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("consumer --help: %v", err)
	}
	return flagsOf(t, help.String())
}

// loadConsumer loads the consumer's configuration from args and env as
// the binary would, failing the test on a variable that names no flag (ff
// would ignore it silently) or on anything config.Load refuses.
func loadConsumer(t *testing.T, args []string, env map[string]string) config.Config {
	t.Helper()
	flags := consumerFlags(t)
	configtest.CleanEnv(t)
	for k, v := range env {
		if _, ok := flags[k]; !ok && !slices.Contains(providerEnv, k) {
			t.Errorf("consumer: environment variable %s names no flag of the consumer", k)
		}
		t.Setenv(k, v)
	}
	c, err := config.Load("consumer", args, io.Discard)
	if err != nil {
		t.Fatalf("consumer %q: %v", args, err)
	}
	return c
}

// checkBinary runs ./cmd/name with args, env turned into the flags they
// set, and --help: the flag set parses every value before the help, so an
// unknown flag or a bad value exits non-zero. A variable that names no
// flag fails the test.
func checkBinary(t *testing.T, name string, args []string, env map[string]string) {
	t.Helper()
	bin := binary(t, name)
	help, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --help: %v\n%s", name, err, help)
	}
	flags := flagsOf(t, string(help))
	all := slices.Clone(args)
	for _, k := range slices.Sorted(maps.Keys(env)) {
		f, ok := flags[k]
		switch {
		case ok:
			all = append(all, "--"+f, env[k])
		case !slices.Contains(providerEnv, k):
			t.Errorf("%s: environment variable %s names no flag of %s", name, k, name)
		}
	}
	cmd := exec.Command(bin, append(all, "--help")...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s %q: %v\n%s", name, all, err, firstLine(out))
	}
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return s
}

// portOf returns the port of a host:port listen address.
func portOf(t *testing.T, addr string) string {
	t.Helper()
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		t.Fatalf("%q has no port", addr)
	}
	return addr[i+1:]
}
