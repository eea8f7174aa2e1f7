package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// cleanEnv empties every TRIAGE_* variable of the test process (ff skips
// empty ones), so that the tests see only what they set.
func cleanEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, EnvPrefix+"_") {
			t.Setenv(k, "")
		}
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestEachSourceSetsEachKind sets one flag of each kind of value through
// its flag, its environment variable and its YAML key in both spellings.
func TestEachSourceSetsEachKind(t *testing.T) {
	for _, tc := range []struct {
		flag, value string
		got         func(Config) any
		want        any
	}{
		{"group", "g1", func(c Config) any { return c.Group }, "g1"},
		{"decisions-topic", "dec", func(c Config) any { return c.DecisionsTopic }, "dec"},
		{"workers", "7", func(c Config) any { return c.Workers }, 7},
		{"demo-seed", "42", func(c Config) any { return c.DemoSeed }, int64(42)},
		{"drain-timeout", "3s", func(c Config) any { return c.DrainTimeout }, 3 * time.Second},
		{"demo-rate", "2.5", func(c Config) any { return c.DemoRate }, 2.5},
		{"embedded", "true", func(c Config) any { return c.Embedded }, true},
		{"topics", "a, b", func(c Config) any { return c.Topics }, []string{"a", "b"}},
		{"mask-key", "s3cret", func(c Config) any { return c.MaskKey }, "s3cret"},
		{"mask-key-file", "/run/secrets/mask", func(c Config) any { return c.MaskKeyFile }, "/run/secrets/mask"},
	} {
		sources := map[string]func(t *testing.T) []string{
			"flag": func(*testing.T) []string { return []string{"--" + tc.flag, tc.value} },
			"single-dash flag": func(*testing.T) []string { return []string{"-" + tc.flag + "=" + tc.value} },
			"env": func(t *testing.T) []string {
				t.Setenv(EnvVar(tc.flag), tc.value)
				return nil
			},
			"yaml": func(t *testing.T) []string {
				return []string{"--config", writeFile(t, "c.yaml", YAMLKey(tc.flag)+": "+tc.value+"\n")}
			},
			"yaml with the flag name": func(t *testing.T) []string {
				return []string{"--config", writeFile(t, "c.yaml", tc.flag+": "+tc.value+"\n")}
			},
		}
		for source, args := range sources {
			t.Run(tc.flag+"/"+source, func(t *testing.T) {
				cleanEnv(t)
				c, err := Load("consumer", args(t), &bytes.Buffer{})
				if err != nil {
					t.Fatal(err)
				}
				if got := tc.got(c); !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("%s from %s = %#v, want %#v", tc.flag, source, got, tc.want)
				}
			})
		}
	}
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "triage.yaml", "group: file\nworkers: 8\ndlq_topic: file-dlq\ntopics: [a, b]\n")
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string // the group
	}{
		{"default", nil, nil, "triage"},
		{"file beats default", []string{"--config", file}, nil, "file"},
		{"env beats file", []string{"--config", file}, map[string]string{"TRIAGE_GROUP": "env"}, "env"},
		{"flag beats env", []string{"--config", file, "--group", "flag"}, map[string]string{"TRIAGE_GROUP": "env"}, "flag"},
		{"TRIAGE_CONFIG names the file", nil, map[string]string{"TRIAGE_CONFIG": file}, "file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cleanEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := Load("consumer", tc.args, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if c.Group != tc.want {
				t.Fatalf("group = %q, want %q", c.Group, tc.want)
			}
		})
	}
	// Each source sets only what the ones before it left unset.
	cleanEnv(t)
	t.Setenv("TRIAGE_WORKERS", "16")
	c, err := Load("consumer", []string{"--config", file, "--topics", "x", "--topics", "y,z"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Group != "file" || c.Workers != 16 || c.DLQTopic != "file-dlq" || c.AuditTopic != "audit" {
		t.Fatalf("got %+v", c)
	}
	if !reflect.DeepEqual(c.Topics, []string{"x", "y", "z"}) || !reflect.DeepEqual(c.Brokers, Default().Brokers) {
		t.Fatalf("topics %v brokers %v", c.Topics, c.Brokers)
	}
}

// TestDeployExample loads deploy/triage.yaml, whose keys use '_'.
func TestDeployExample(t *testing.T) {
	cleanEnv(t)
	c, err := Load("consumer", []string{"--config", "../../deploy/triage.yaml"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.QueueSize != 256 || c.DecisionsTopic != "decisions" || !reflect.DeepEqual(c.Topics, []string{"events.transactions", "events.documents"}) {
		t.Fatalf("got %+v", c)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		file string // YAML given with --config when set
		want string // in the error
	}{
		{name: "unknown key in file", file: "group: g\ngrup: typo\n", want: `line 2: unknown key "grup"`},
		{name: "config key in file", file: "config: other.yaml\n", want: `unknown key "config"`},
		{name: "bad value in file", file: "workers: many\n", want: `line 1: workers "many"`},
		{name: "list for a single value", file: "group: [a, b]\n", want: "a list for a flag that takes one value"},
		{name: "mapping for a value", file: "group: {a: b}\n", want: "want a value or a list"},
		{name: "key in both spellings", file: "dlq_topic: a\ndlq-topic: b\n", want: "line 2: dlq-topic: already set by dlq_topic"},
		{name: "not a mapping", file: "- a\n", want: "want a mapping"},
		{name: "not YAML", file: "group: [a\n", want: "yaml"},
		{name: "missing file", args: []string{"--config", "/nonexistent/triage.yaml"}, want: "no such file"},
		{name: "unknown flag", args: []string{"--grup", "g"}, want: `unknown flag "grup"`},
		{name: "bad flag value", args: []string{"--workers", "many"}, want: "workers"},
		{name: "bad env value", env: map[string]string{"TRIAGE_WORKERS": "x"}, want: `TRIAGE_WORKERS="x"`},
		{name: "zero workers", args: []string{"--workers", "0"}, want: "--workers 0 must be positive"},
		{name: "empty topics in file", file: "topics: []\n", want: "--topics is empty"},
		{name: "stray argument", args: []string{"extra"}, want: `unexpected arguments ["extra"]`},
		{name: "bad log format", args: []string{"--log-format", "xml"}, want: "want json or text"},
		{name: "both mask keys", args: []string{"--mask-key-file", "/k"}, env: map[string]string{"TRIAGE_MASK_KEY": "s"}, want: "--mask-key and --mask-key-file are both set"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cleanEnv(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			args := c.args
			if c.file != "" {
				args = append([]string{"--config", writeFile(t, "bad.yaml", c.file)}, args...)
			}
			_, err := Load("consumer", args, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestEmptyFileMeansDefaults(t *testing.T) {
	for name, content := range map[string]string{"empty": "", "comments only": "# nothing yet\n", "null": "~\n"} {
		t.Run(name, func(t *testing.T) {
			cleanEnv(t)
			c, err := Load("consumer", []string{"--config=" + writeFile(t, "c.yaml", content)}, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c, Default()) {
				t.Fatalf("got %+v, want defaults", c)
			}
		})
	}
}

// TestHelp checks that --help names, for every flag, its variable and YAML
// key, and shows the defaults but never a configured value.
func TestHelp(t *testing.T) {
	cleanEnv(t)
	t.Setenv("TRIAGE_MASK_KEY", "do-not-print")
	for _, arg := range []string{"--help", "-h", "-help"} {
		var out bytes.Buffer
		if _, err := Load("consumer", []string{arg}, &out); !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%s: err = %v, want flag.ErrHelp", arg, err)
		}
		help := out.String()
		fs := flag.NewFlagSet("consumer", flag.ContinueOnError)
		c := Default()
		bind(fs, &c)
		fs.VisitAll(func(f *flag.Flag) {
			if !strings.Contains(help, "-"+f.Name+" ") || !strings.Contains(help, "env "+EnvVar(f.Name)+", yaml "+YAMLKey(f.Name)+"\n") {
				t.Errorf("%s: help lacks -%s with env %s and yaml %s", arg, f.Name, EnvVar(f.Name), YAMLKey(f.Name))
			}
		})
		for _, want := range []string{"env TRIAGE_CONFIG\n", "(default: 127.0.0.1:9092)", "(default: 30s)", "(default: 64)"} {
			if !strings.Contains(help, want) {
				t.Errorf("%s: help lacks %q:\n%s", arg, want, help)
			}
		}
		if strings.Contains(help, "do-not-print") {
			t.Fatalf("help shows a configured secret:\n%s", help)
		}
	}
}

func TestList(t *testing.T) {
	def := []string{"d"}
	got := def
	l := NewList(&got)
	if l.String() != "d" {
		t.Fatalf("String() = %q before Set", l.String())
	}
	for _, s := range []string{"a, b", "", " c ,"} {
		if err := l.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(got, []string{"a", "b", "c"}) || !reflect.DeepEqual(def, []string{"d"}) || l.String() != "a,b,c" {
		t.Fatalf("got %v (default now %v)", got, def)
	}
	if (*List)(nil).String() != "" {
		t.Fatal("nil List has a value")
	}
}
