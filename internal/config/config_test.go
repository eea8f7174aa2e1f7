package config_test

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage/internal/config"
	"github.com/triage-dev/triage/internal/config/configtest"
)

func load(args []string) (config.Config, error) { return config.Load("consumer", args, io.Discard) }

func TestSources(t *testing.T) {
	configtest.Sources(t, load, nil,
		configtest.Flag("group", "g1", "g1", func(c config.Config) any { return c.Group }),
		configtest.Flag("decisions-topic", "dec", "dec", func(c config.Config) any { return c.DecisionsTopic }),
		configtest.Flag("workers", "7", 7, func(c config.Config) any { return c.Workers }),
		configtest.Flag("demo-seed", "42", int64(42), func(c config.Config) any { return c.DemoSeed }),
		configtest.Flag("drain-timeout", "3s", 3*time.Second, func(c config.Config) any { return c.DrainTimeout }),
		configtest.Flag("demo-rate", "2.5", 2.5, func(c config.Config) any { return c.DemoRate }),
		configtest.Flag("embedded", "true", true, func(c config.Config) any { return c.Embedded }),
		configtest.Flag("topics", "a, b", []string{"a", "b"}, func(c config.Config) any { return c.Topics }),
		configtest.Flag("topic-types", "a=x, a=y", []string{"a=x", "a=y"}, func(c config.Config) any { return c.TopicTypes }),
		configtest.Flag("delivery", "at-least-once", "at-least-once", func(c config.Config) any { return c.Delivery }),
		configtest.Flag("mask-key", "s3cret", "s3cret", func(c config.Config) any { return c.MaskKey }),
		configtest.Flag("mask-key-file", "/run/secrets/mask", "/run/secrets/mask", func(c config.Config) any { return c.MaskKeyFile }),
	)
}

func TestPrecedence(t *testing.T) {
	configtest.Precedence(t, load, nil, "group", func(c config.Config) string { return c.Group }, "triage")
	file := configtest.File(t, "group: file\nworkers: 8\ndlq_topic: file-dlq\ntopics: [a, b]\n")
	// Each source sets only what the ones before it left unset.
	configtest.CleanEnv(t)
	t.Setenv("TRIAGE_WORKERS", "16")
	c, err := load([]string{"--config", file, "--topics", "x", "--topics", "y,z"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Group != "file" || c.Workers != 16 || c.DLQTopic != "file-dlq" || c.AuditTopic != "audit" {
		t.Fatalf("got %+v", c)
	}
	if !reflect.DeepEqual(c.Topics, []string{"x", "y", "z"}) || !reflect.DeepEqual(c.Brokers, config.Default().Brokers) {
		t.Fatalf("topics %v brokers %v", c.Topics, c.Brokers)
	}
}

// TestDeployExample loads deploy/triage.yaml, whose keys use '_'.
func TestDeployExample(t *testing.T) {
	configtest.CleanEnv(t)
	c, err := load([]string{"--config", "../../deploy/triage.yaml"})
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
		{name: "topic type without a type", args: []string{"--topic-types", "events.transactions=transaction,events.documents"}, want: `--topic-types "events.documents": want topic=type`},
		{name: "bad delivery", args: []string{"--delivery", "maybe-once"}, want: "want exactly-once or at-least-once"},
		{name: "both mask keys", args: []string{"--mask-key-file", "/k"}, env: map[string]string{"TRIAGE_MASK_KEY": "s"}, want: "--mask-key and --mask-key-file are both set"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			configtest.Env(t, c.env)
			args := c.args
			if c.file != "" {
				args = append([]string{"--config", configtest.File(t, c.file)}, args...)
			}
			_, err := load(args)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestEmptyFileMeansDefaults(t *testing.T) {
	for name, content := range map[string]string{"empty": "", "comments only": "# nothing yet\n", "null": "~\n"} {
		t.Run(name, func(t *testing.T) {
			configtest.CleanEnv(t)
			c, err := load([]string{"--config=" + configtest.File(t, content)})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c, config.Default()) {
				t.Fatalf("got %+v, want defaults", c)
			}
		})
	}
}

// TestHelp checks that --help names, for every flag, its variable and YAML
// key, and shows the defaults but never a configured value.
func TestHelp(t *testing.T) {
	configtest.CleanEnv(t)
	t.Setenv("TRIAGE_MASK_KEY", "do-not-print")
	for _, arg := range []string{"--help", "-h", "-help"} {
		var out bytes.Buffer
		if _, err := config.Load("consumer", []string{arg}, &out); !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%s: err = %v, want flag.ErrHelp", arg, err)
		}
		help := out.String()
		configtest.Help(t, help, "brokers", "decisions-topic", "workers", "embedded", "mask-key", "mask-key-file", "clickhouse")
		for _, want := range []string{"(default: 127.0.0.1:9092)", "(default: 30s)", "(default: 64)", "PRECEDENCE"} {
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
	l := config.NewList(&got)
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
	if (*config.List)(nil).String() != "" {
		t.Fatal("nil List has a value")
	}
}

func TestAPIKey(t *testing.T) {
	env := map[string]string{"ANTHROPIC_API_KEY": "a-env", "OPENAI_API_KEY": "o-env"}
	getenv := func(k string) string { return env[k] }
	for _, tc := range []struct{ provider, key, want string }{
		{"anthropic", "", "a-env"},
		{"openai", "", "o-env"},
		{"anthropic", "flag", "flag"},
		{"offline", "", ""},
	} {
		if got := config.APIKey(tc.provider, tc.key, getenv); got != tc.want {
			t.Errorf("APIKey(%q, %q) = %q, want %q", tc.provider, tc.key, got, tc.want)
		}
	}
}
