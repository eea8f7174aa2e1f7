package main

import (
	"bytes"
	"context"
	"log/slog"
	"reflect"
	"strings"
	"testing"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestParse(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  func(string) string
		want options // only the fields compared below
		err  string
	}{
		{
			name: "defaults",
			args: []string{"--server", "http://a/mcp"},
			env:  env(),
			want: options{servers: []string{"http://a/mcp"}, concurrency: 4, provider: "offline", logFormat: "json", logLevel: slog.LevelInfo},
		},
		{
			name: "servers repeated and comma-separated, secrets from env",
			args: []string{"--server", "http://a/mcp, http://b/mcp", "--server=http://c/mcp", "--provider", "anthropic", "--concurrency", "8"},
			env:  env("TRIAGE_SAMPLER_TOKEN", "tok", "ANTHROPIC_API_KEY", "ak", "OPENAI_API_KEY", "ok"),
			want: options{servers: []string{"http://a/mcp", "http://b/mcp", "http://c/mcp"}, token: "tok", apiKey: "ak",
				concurrency: 8, provider: "anthropic", logFormat: "json", logLevel: slog.LevelInfo},
		},
		{
			name: "flags beat env",
			args: []string{"--server", "http://a/mcp", "--token", "flagtok", "--provider", "openai", "--api-key", "flagkey",
				"--base-url", "http://127.0.0.1:11434/v1", "--model", "llama3.2", "--log-format", "text", "--log-level", "debug"},
			env: env("TRIAGE_SAMPLER_TOKEN", "tok", "OPENAI_API_KEY", "ok"),
			want: options{servers: []string{"http://a/mcp"}, token: "flagtok", apiKey: "flagkey", concurrency: 4, provider: "openai",
				baseURL: "http://127.0.0.1:11434/v1", model: "llama3.2", logFormat: "text", logLevel: slog.LevelDebug},
		},
		{
			name: "openai key may be absent",
			args: []string{"--server", "http://a/mcp", "--provider", "openai", "--push-only", "--protocol-version", "2025-11-25"},
			env:  env("ANTHROPIC_API_KEY", "ak"),
			want: options{servers: []string{"http://a/mcp"}, concurrency: 4, provider: "openai", pushOnly: true,
				protocolVersion: "2025-11-25", logFormat: "json", logLevel: slog.LevelInfo},
		},
		{name: "no server", args: nil, env: env(), err: "--server is required"},
		{name: "bad log format", args: []string{"--server", "http://a/mcp", "--log-format", "xml"}, env: env(), err: "want json or text"},
		{name: "stray argument", args: []string{"--server", "http://a/mcp", "extra"}, env: env(), err: "unexpected arguments"},
		{name: "unknown flag", args: []string{"--nope"}, env: env(), err: "not defined"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parse(c.args, c.env, &bytes.Buffer{})
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
		{"help", []string{"--help"}, 0, "-concurrency"},
		{"unknown provider", []string{"--server", "http://127.0.0.1:1/mcp", "--provider", "gpt"}, 2, `unknown provider "gpt"`},
		{"invalid config", []string{"--server", "127.0.0.1:1/mcp"}, 2, "not an http(s) URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			if code := run(cancelled, c.args, env(), &out); code != c.code || !strings.Contains(out.String(), c.log) {
				t.Fatalf("exit %d, want %d; output %q should contain %q", code, c.code, out.String(), c.log)
			}
		})
	}
}
