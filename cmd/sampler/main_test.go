package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage/internal/config/configtest"
)

// env sets the test's environment: the pairs kv, every TRIAGE_* variable
// and the providers' keys empty otherwise.
func env(t *testing.T, kv ...string) {
	t.Helper()
	configtest.CleanEnv(t)
	t.Setenv("ANTHROPIC_API_KEY", "")
	t.Setenv("OPENAI_API_KEY", "")
	for i := 0; i+1 < len(kv); i += 2 {
		t.Setenv(kv[i], kv[i+1])
	}
}

func TestParse(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  []string
		want options // only the fields compared below
		err  string
	}{
		{
			name: "defaults",
			args: []string{"--server", "http://a/mcp"},
			want: options{tools: true, servers: []string{"http://a/mcp"}, concurrency: 4, provider: "offline", structured: "json_schema", logFormat: "json", logLevel: slog.LevelInfo},
		},
		{
			name: "servers repeated and comma-separated, secrets from env",
			args: []string{"--server", "http://a/mcp, http://b/mcp", "--server=http://c/mcp", "--provider", "anthropic", "--concurrency", "8"},
			env:  []string{"TRIAGE_TOKEN", "tok", "ANTHROPIC_API_KEY", "ak", "OPENAI_API_KEY", "ok"},
			want: options{tools: true, servers: []string{"http://a/mcp", "http://b/mcp", "http://c/mcp"}, token: "tok", apiKey: "ak",
				concurrency: 8, provider: "anthropic", structured: "json_schema", logFormat: "json", logLevel: slog.LevelInfo},
		},
		{
			name: "deprecated token variable when nothing else sets --token",
			args: []string{"--server", "http://a/mcp"},
			env:  []string{"TRIAGE_SAMPLER_TOKEN", "old"},
			want: options{tools: true, servers: []string{"http://a/mcp"}, token: "old", deprecatedToken: true, concurrency: 4, provider: "offline", structured: "json_schema",
				logFormat: "json", logLevel: slog.LevelInfo},
		},
		{
			name: "TRIAGE_TOKEN beats the deprecated name",
			args: []string{"--server", "http://a/mcp"},
			env:  []string{"TRIAGE_SAMPLER_TOKEN", "old", "TRIAGE_TOKEN", "new"},
			want: options{tools: true, servers: []string{"http://a/mcp"}, token: "new", concurrency: 4, provider: "offline", structured: "json_schema",
				logFormat: "json", logLevel: slog.LevelInfo},
		},
		{
			name: "flags beat env",
			args: []string{"--server", "http://a/mcp", "--token", "flagtok", "--provider", "openai", "--api-key", "flagkey",
				"--base-url", "http://127.0.0.1:11434/v1", "--model", "llama3.2", "--log-format", "text", "--log-level", "debug"},
			env: []string{"TRIAGE_TOKEN", "tok", "TRIAGE_API_KEY", "envkey", "OPENAI_API_KEY", "ok"},
			want: options{tools: true, servers: []string{"http://a/mcp"}, token: "flagtok", apiKey: "flagkey", concurrency: 4, provider: "openai", structured: "json_schema",
				baseURL: "http://127.0.0.1:11434/v1", model: "llama3.2", logFormat: "text", logLevel: slog.LevelDebug},
		},
		{
			name: "TRIAGE_API_KEY beats the provider's variable",
			args: []string{"--server", "http://a/mcp", "--provider", "openai"},
			env:  []string{"TRIAGE_API_KEY", "envkey", "OPENAI_API_KEY", "ok"},
			want: options{tools: true, servers: []string{"http://a/mcp"}, apiKey: "envkey", concurrency: 4, provider: "openai", structured: "json_schema", logFormat: "json", logLevel: slog.LevelInfo},
		},
		{
			name: "openai key may be absent",
			args: []string{"--server", "http://a/mcp", "--provider", "openai", "--push-only", "--protocol-version", "2025-11-25"},
			env:  []string{"ANTHROPIC_API_KEY", "ak"},
			want: options{tools: true, servers: []string{"http://a/mcp"}, concurrency: 4, provider: "openai", structured: "json_schema", pushOnly: true,
				protocolVersion: "2025-11-25", logFormat: "json", logLevel: slog.LevelInfo},
		},
		{
			name: "tools off",
			args: []string{"--server", "http://a/mcp", "--tools=false"},
			want: options{servers: []string{"http://a/mcp"}, concurrency: 4, provider: "offline", structured: "json_schema", logFormat: "json", logLevel: slog.LevelInfo},
		},
		{name: "no server", args: nil, err: "--server is required"},
		{name: "bad log format", args: []string{"--server", "http://a/mcp", "--log-format", "xml"}, err: "want json or text"},
		{name: "bad log level in env", args: []string{"--server", "http://a/mcp"}, env: []string{"TRIAGE_LOG_LEVEL", "loud"}, err: `TRIAGE_LOG_LEVEL="loud"`},
		{name: "bad concurrency", args: []string{"--server", "http://a/mcp", "--concurrency", "many"}, err: "concurrency"},
		{name: "stray argument", args: []string{"--server", "http://a/mcp", "extra"}, err: "unexpected arguments"},
		{name: "unknown flag", args: []string{"--nope"}, err: `unknown flag "nope"`},
		{name: "unknown key", args: []string{"--server", "http://a/mcp", "--config", "FILE:servers: [http://b/mcp]\n"}, err: `unknown key "servers"`},
		{name: "bad value in file", args: []string{"--config", "FILE:server: http://a/mcp\nwait_ms: soon\n"}, err: `line 2: wait_ms "soon"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env(t, c.env...)
			got, err := parse(configtest.Files(t, c.args), &bytes.Buffer{})
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want it to mention %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func parseArgs(args []string) (options, error) { return parse(args, io.Discard) }

// TestSources sets each kind of flag by flag, TRIAGE_* variable and YAML
// key, and checks that they layer in that order.
func TestSources(t *testing.T) {
	configtest.Sources(t, parseArgs, nil,
		configtest.Flag("server", "http://a/mcp,http://b/mcp", []string{"http://a/mcp", "http://b/mcp"}, func(o options) any { return o.servers }))
	server := []string{"--server", "http://a/mcp"}
	configtest.Sources(t, parseArgs, server,
		configtest.Flag("token", "tok", "tok", func(o options) any { return o.token }),
		configtest.Flag("concurrency", "8", 8, func(o options) any { return o.concurrency }),
		configtest.Flag("offline-latency", "20ms", 20*time.Millisecond, func(o options) any { return o.offlineLatency }),
		configtest.Flag("push-only", "true", true, func(o options) any { return o.pushOnly }),
		configtest.Flag("tools", "false", false, func(o options) any { return o.tools }),
		configtest.Flag("log-level", "debug", slog.LevelDebug, func(o options) any { return o.logLevel }),
		configtest.Flag("protocol-version", "2025-11-25", "2025-11-25", func(o options) any { return o.protocolVersion }),
	)
	configtest.Precedence(t, parseArgs, server, "provider", func(o options) string { return o.provider }, "offline")
}

func TestHelp(t *testing.T) {
	env(t, "TRIAGE_TOKEN", "do-not-print")
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &out); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	configtest.Help(t, out.String(), "server", "token", "concurrency", "wait-ms", "provider", "model", "base-url", "api-key",
		"protocol-version", "push-only", "tools", "offline-latency", "log-format", "log-level")
	for _, want := range []string{"(default: 4)", "(default: offline)", "(default: INFO)", "TRIAGE_SAMPLER_TOKEN", "ANTHROPIC_API_KEY"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, &out)
		}
	}
	if strings.Contains(out.String(), "do-not-print") {
		t.Fatalf("help shows a configured secret:\n%s", &out)
	}
}

func TestRun(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name string
		args []string
		code int
		log  string
	}{
		{"stops cleanly when cancelled", []string{"--server", "http://127.0.0.1:1/mcp"}, 0, `"msg":"sampler stopped"`},
		{"tools on by default", []string{"--server", "http://127.0.0.1:1/mcp"}, 0, `"tools":true`},
		{"tools off", []string{"--server", "http://127.0.0.1:1/mcp", "--tools=false"}, 0, `"tools":false`},
		{"help", []string{"--help"}, 0, "-concurrency"},
		{"unknown provider", []string{"--server", "http://127.0.0.1:1/mcp", "--provider", "gpt"}, 2, `unknown provider "gpt"`},
		{"invalid config", []string{"--server", "127.0.0.1:1/mcp"}, 2, "not an http(s) URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env(t)
			var out bytes.Buffer
			if code := run(cancelled, c.args, &out); code != c.code || !strings.Contains(out.String(), c.log) {
				t.Fatalf("exit %d, want %d; output %q should contain %q", code, c.code, out.String(), c.log)
			}
		})
	}
}
