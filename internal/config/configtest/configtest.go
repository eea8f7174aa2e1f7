// Package configtest checks a binary's configuration the way config.Parse
// layers it: that each flag is set by its flag, its TRIAGE_* environment
// variable and its YAML key; that flags win over the environment, which
// wins over the file, which wins over the default; and that the help names
// every flag's variable and key. Tests that use it set environment
// variables, so they cannot run in parallel.
package configtest

import (
	"bufio"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/triage-dev/triage/internal/config"
)

// Parse parses args into the binary's configuration T.
type Parse[T any] func(args []string) (T, error)

// Case is one flag, a value for it as text, and what Got reads from the
// configuration once that value is set.
type Case[T any] struct {
	Flag  string
	Value string
	Got   func(T) any
	Want  any
}

// Flag returns the Case of the flag name set to value, read back by got.
func Flag[T any](name, value string, want any, got func(T) any) Case[T] {
	return Case[T]{Flag: name, Value: value, Got: got, Want: want}
}

// CleanEnv empties every TRIAGE_* variable for the test (ff ignores empty
// ones), so that the test sees only what it sets.
func CleanEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, config.EnvPrefix+"_") {
			t.Setenv(k, "")
		}
	}
}

// Env empties every TRIAGE_* variable for the test, as CleanEnv does, then
// sets the variables of env.
func Env(t *testing.T, env map[string]string) {
	t.Helper()
	CleanEnv(t)
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// Files returns a copy of args in which each argument "FILE:content" is
// replaced by the path of a YAML file holding content.
func Files(t *testing.T, args []string) []string {
	t.Helper()
	out := append([]string(nil), args...)
	for i, a := range out {
		if content, ok := strings.CutPrefix(a, "FILE:"); ok {
			out[i] = File(t, content)
		}
	}
	return out
}

// File writes content to a YAML file in a temporary directory and returns
// its path.
func File(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Sources checks that each case's value, given alone as a flag (with two
// dashes and with one), as the flag's environment variable or under its
// YAML key (spelt with '_' and with '-'), sets the flag. base are
// arguments every parse needs (a required flag).
func Sources[T any](t *testing.T, parse Parse[T], base []string, cases ...Case[T]) {
	t.Helper()
	for _, c := range cases {
		sources := []struct {
			name string
			args func(t *testing.T) []string
		}{
			{"flag", func(*testing.T) []string { return []string{"--" + c.Flag, c.Value} }},
			{"single-dash flag", func(*testing.T) []string { return []string{"-" + c.Flag + "=" + c.Value} }},
			{"env", func(t *testing.T) []string {
				t.Setenv(config.EnvVar(c.Flag), c.Value)
				return nil
			}},
			{"yaml", func(t *testing.T) []string {
				return []string{"--config", File(t, config.YAMLKey(c.Flag)+": "+c.Value+"\n")}
			}},
			{"yaml with the flag name", func(t *testing.T) []string {
				return []string{"--config", File(t, c.Flag+": "+c.Value+"\n")}
			}},
		}
		for _, s := range sources {
			t.Run(c.Flag+"/"+s.name, func(t *testing.T) {
				CleanEnv(t)
				got, err := parse(append(s.args(t), base...))
				if err != nil {
					t.Fatal(err)
				}
				if v := c.Got(got); !reflect.DeepEqual(v, c.Want) {
					t.Fatalf("--%s from %s = %#v, want %#v", c.Flag, s.name, v, c.Want)
				}
			})
		}
	}
}

// Precedence checks, with the string flag name, that the file beats the
// default def, the environment the file, and the command line the
// environment; and that TRIAGE_CONFIG names the file as --config does.
func Precedence[T any](t *testing.T, parse Parse[T], base []string, name string, got func(T) string, def string) {
	t.Helper()
	file := File(t, config.YAMLKey(name)+": file\n")
	env := map[string]string{config.EnvVar(name): "env"}
	for _, c := range []struct {
		what string
		args []string
		env  map[string]string
		want string
	}{
		{"default", nil, nil, def},
		{"file beats default", []string{"--config", file}, nil, "file"},
		{"TRIAGE_CONFIG names the file", nil, map[string]string{config.EnvVar(config.FileFlag): file}, "file"},
		{"env beats file", []string{"--config", file}, env, "env"},
		{"flag beats env", []string{"--config", file, "--" + name, "flag"}, env, "flag"},
	} {
		t.Run(name+"/"+c.what, func(t *testing.T) {
			Env(t, c.env)
			cfg, err := parse(append(c.args, base...))
			if err != nil {
				t.Fatal(err)
			}
			if v := got(cfg); v != c.want {
				t.Fatalf("--%s = %q, want %q", name, v, c.want)
			}
		})
	}
}

var flagLine = regexp.MustCompile(`^  -([a-z0-9-]+)\b`)

// Help checks that help lists each of names and, under every flag it
// lists, that flag's environment variable and, but for --config, its YAML
// key.
func Help(t *testing.T, help string, names ...string) {
	t.Helper()
	listed := map[string]bool{}
	var last string
	sc := bufio.NewScanner(strings.NewReader(help))
	for sc.Scan() {
		line := sc.Text()
		if m := flagLine.FindStringSubmatch(line); m != nil {
			last = m[1]
			continue
		}
		if last == "" {
			continue
		}
		want := "env " + config.EnvVar(last)
		if last != config.FileFlag {
			want += ", yaml " + config.YAMLKey(last)
		}
		if strings.TrimSpace(line) != want {
			t.Errorf("help: -%s is followed by %q, want %q", last, strings.TrimSpace(line), want)
		}
		listed[last] = true
		last = ""
	}
	for _, n := range append(names, config.FileFlag) {
		if !listed[n] {
			t.Errorf("help does not list -%s:\n%s", n, help)
		}
	}
}
