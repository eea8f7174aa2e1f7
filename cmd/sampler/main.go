// Command sampler answers triage's sampling requests with an LLM provider.
// It is an MCP client: it connects to one or more consumers' /mcp
// endpoints, pulls ambiguous items from their triage_next tool with
// --concurrency calls in flight per server, answers them (and any sampling
// request a legacy server pushes) with the provider, and reconnects with
// back-off when a consumer goes away. It declares tool use unless
// --tools=false: consumers may then offer tools (transaction_history, ...)
// in their sampling requests, and the model's tool calls go back to the
// consumer, which runs them; the sampler never runs a tool.
//
//	sampler --server http://127.0.0.1:8080/mcp                       # offline scorer, not an LLM
//	sampler --server https://a/mcp,https://b/mcp --provider anthropic --concurrency 8
//	sampler --server http://127.0.0.1:8080/mcp --provider openai \
//	        --base-url http://127.0.0.1:11434/v1 --model llama3.2     # Ollama
//
// Every flag is also a TRIAGE_* environment variable and a key of the YAML
// file given with --config (see --help); flags win over the environment,
// which wins over the file. Secrets are best given in the environment:
// TRIAGE_TOKEN (the consumer's bearer token; TRIAGE_SAMPLER_TOKEN, its
// deprecated name, still applies when no source sets --token) and the
// provider's key, TRIAGE_API_KEY or else ANTHROPIC_API_KEY or
// OPENAI_API_KEY (may be empty for local OpenAI-compatible servers).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/triage-dev/triage/internal/config"
	"github.com/triage-dev/triage/internal/tracing"
	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/sampling/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts the graceful shutdown (which ends its calls);
	// restoring the default handling then lets a second one end the process
	// at once, as operators expect of a stuck shutdown.
	context.AfterFunc(ctx, stop)
	os.Exit(run(ctx, os.Args[1:], os.Stderr))
}

// deprecatedTokenEnv is the old name of TRIAGE_TOKEN, read when no source
// sets --token.
const deprecatedTokenEnv = "TRIAGE_SAMPLER_TOKEN"

// options are the parsed flags, environment fallbacks applied.
type options struct {
	servers         []string
	token           string
	concurrency     int
	items           int
	waitMS          int
	provider        string
	model           string
	baseURL         string
	structured      string
	apiKey          string
	protocolVersion string
	pushOnly        bool
	tools           bool
	offlineLatency  time.Duration
	logFormat       string
	logLevel        slog.Level
	otlpEndpoint    string
	// deprecatedToken is set when the token came from deprecatedTokenEnv.
	deprecatedToken bool
}

// parse layers args, TRIAGE_* variables and the --config file as
// config.Parse does, then applies the fallbacks of --token and --api-key.
func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("sampler", flag.ContinueOnError)
	fs.Var(config.NewList(&o.servers), "server", "consumer MCP endpoint, e.g. http://127.0.0.1:8080/mcp (repeatable or comma-separated); dns+http://NAME:PORT/mcp connects to every address NAME resolves to (every consumer behind a headless Service), followed as it changes")
	fs.StringVar(&o.token, "token", "", "bearer token for the consumers' /mcp (empty: $"+deprecatedTokenEnv+", deprecated)")
	fs.IntVar(&o.concurrency, "concurrency", client.DefaultConcurrency, "work calls in flight per server: items answered at once")
	fs.IntVar(&o.items, "items", 0, "items one work call may take when several are queued, 0..16 (0: one): fewer MCP round trips a decision, up to --concurrency × --items provider requests at once")
	fs.IntVar(&o.waitMS, "wait-ms", 0, "long-poll wait per call in ms, 1..30000 (0: the server's default)")
	fs.StringVar(&o.provider, "provider", "offline", "anthropic, openai (any OpenAI-compatible server) or offline (a deterministic scorer, not an LLM)")
	fs.StringVar(&o.model, "model", "", "fixed model, overriding the provider's hint-to-model table")
	fs.StringVar(&o.baseURL, "base-url", "", "provider endpoint, e.g. http://127.0.0.1:11434/v1 for Ollama (openai)")
	fs.StringVar(&o.structured, "structured", llm.StructuredJSONSchema, "how openai asks for answers that follow the decision schema: json_schema (OpenAI, vLLM, Ollama, llama-server), json_object (llama-cpp-python) or none")
	fs.StringVar(&o.apiKey, "api-key", "", "provider API key (empty: $ANTHROPIC_API_KEY or $OPENAI_API_KEY, by --provider)")
	fs.StringVar(&o.protocolVersion, "protocol-version", "", `MCP protocol version to ask for (empty: the newest, 2026-07-28; "2025-11-25" for legacy servers)`)
	fs.BoolVar(&o.pushOnly, "push-only", false, "do not pull; answer only sampling requests the server sends (legacy 2025-11-25 sessions; for testing push)")
	fs.BoolVar(&o.tools, "tools", true, "declare tool use: servers may offer tools in their sampling requests, whose calls go back to the server that runs them (false: requests without tools, as before tools existed)")
	fs.DurationVar(&o.offlineLatency, "offline-latency", 0, "offline provider only: simulated model latency per answer")
	fs.StringVar(&o.logFormat, "log-format", "json", "json or text")
	fs.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "debug, info, warn or error")
	fs.StringVar(&o.otlpEndpoint, "otlp-endpoint", "", "OTLP/HTTP endpoint for traces, e.g. http://collector:4318: each provider call is a span in the consumer's trace of its event (empty: $OTEL_EXPORTER_OTLP_ENDPOINT, and no tracing without it)")
	if err := config.Parse(fs, args, stderr); err != nil {
		return o, err
	}
	if len(o.servers) == 0 {
		return o, errors.New("--server is required")
	}
	if o.logFormat != "json" && o.logFormat != "text" {
		return o, fmt.Errorf("--log-format %q: want json or text", o.logFormat)
	}
	if o.token == "" {
		o.token = os.Getenv(deprecatedTokenEnv)
		o.deprecatedToken = o.token != ""
	}
	o.apiKey = config.APIKey(o.provider, o.apiKey, os.Getenv)
	return o, nil
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "sampler:", err)
		return 2
	}
	hopts := &slog.HandlerOptions{Level: o.logLevel}
	log := slog.New(slog.NewJSONHandler(stderr, hopts))
	if o.logFormat == "text" {
		log = slog.New(slog.NewTextHandler(stderr, hopts))
	}
	if o.deprecatedToken {
		log.Warn(deprecatedTokenEnv + " is deprecated: set TRIAGE_TOKEN")
	}

	prov, err := llm.New(o.provider, llm.Options{APIKey: o.apiKey, BaseURL: o.baseURL, Model: o.model, Structured: o.structured, Latency: o.offlineLatency})
	if err != nil {
		fmt.Fprintln(stderr, "sampler:", err)
		return 2
	}
	tp, stopTracing, err := tracing.Setup(ctx, tracing.Config{Endpoint: o.otlpEndpoint, Service: "triage-sampler"})
	if err != nil {
		fmt.Fprintln(stderr, "sampler:", err)
		return 2
	}
	defer tracing.Stop(ctx, stopTracing, log)
	s, err := client.New(client.Config{
		Servers:         o.servers,
		Token:           o.token,
		Provider:        prov,
		Concurrency:     o.concurrency,
		Items:           o.items,
		WaitMS:          o.waitMS,
		ProtocolVersion: o.protocolVersion,
		PushOnly:        o.pushOnly,
		DisableTools:    !o.tools,
		Logger:          log,
		TracerProvider:  tp,
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	log.Info("sampler starting", "servers", o.servers, "provider", prov.Name(), "model", o.model,
		"concurrency", o.concurrency, "items", max(o.items, 1), "push_only", o.pushOnly, "tools", o.tools, "token", o.token != "")
	if err := s.Run(ctx); err != nil {
		log.Error("sampler stopped", "err", err)
		return 1
	}
	st := s.Stats()
	log.Info("sampler stopped", "calls", st.Calls, "decided", st.Decided, "fallback", st.Fallback,
		"expired", st.Expired, "idle", st.Idle, "answered", st.Answered, "errors", st.Errors, "reconnects", st.Reconnects)
	return 0
}
