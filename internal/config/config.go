// Package config owns the consumer's configuration: one YAML file, then
// TRIAGE_* environment variables, then command-line flags, each overriding
// the one before. Library packages never read the environment; cmd/consumer
// loads a Config here and passes plain values down.
package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the consumer's whole configuration. YAML keys are the flag
// names with '-' replaced by '_'.
type Config struct {
	Brokers        []string      `yaml:"brokers"`
	Group          string        `yaml:"group"`
	Topics         []string      `yaml:"topics"`
	DecisionsTopic string        `yaml:"decisions_topic"`
	AuditTopic     string        `yaml:"audit_topic"`
	DLQTopic       string        `yaml:"dlq_topic"`
	Rules          string        `yaml:"rules"`
	Workers        int           `yaml:"workers"`
	QueueSize      int           `yaml:"queue_size"`
	DrainTimeout   time.Duration `yaml:"drain_timeout"`
	SessionTimeout time.Duration `yaml:"session_timeout"`
	HTTPListen     string        `yaml:"http_listen"`
	LogFormat      string        `yaml:"log_format"`
	LogLevel       string        `yaml:"log_level"`

	MCPListen      string        `yaml:"mcp_listen"`
	MCPToken       string        `yaml:"mcp_token"`
	Sampler        string        `yaml:"sampler"`
	LLM            string        `yaml:"llm"`
	Provider       string        `yaml:"provider"`
	Model          string        `yaml:"model"`
	BaseURL        string        `yaml:"base_url"`
	APIKey         string        `yaml:"api_key"`
	OfflineLatency time.Duration `yaml:"offline_latency"`
	QueueWait      time.Duration `yaml:"queue_wait"`
	SamplerCalls   int           `yaml:"sampler_calls"`

	Embedded     bool   `yaml:"embedded"`
	EmbeddedPort int    `yaml:"embedded_port"`
	Partitions   int    `yaml:"partitions"`
	DataDir      string `yaml:"data_dir"`

	Demo          int     `yaml:"demo"`
	SummaryJSON   string  `yaml:"summary_json"`
	DemoSeed      int64   `yaml:"demo_seed"`
	DemoRate      float64 `yaml:"demo_rate"`
	DemoMix       string  `yaml:"demo_mix"`
	DemoAmbiguous string  `yaml:"demo_ambiguous"`
	DemoBad       float64 `yaml:"demo_bad"`

	ClickHouse string `yaml:"clickhouse"`
}

// Default returns the defaults every source overrides.
func Default() Config {
	return Config{
		Brokers:        []string{"127.0.0.1:9092"},
		Group:          "triage",
		Topics:         []string{"events.transactions", "events.documents"},
		DecisionsTopic: "decisions",
		AuditTopic:     "audit",
		DLQTopic:       "events.dlq",
		Workers:        64,
		DrainTimeout:   30 * time.Second,
		SessionTimeout: 45 * time.Second,
		HTTPListen:     "127.0.0.1:9464",
		LogFormat:      "json",
		LogLevel:       "info",
		MCPListen:      "127.0.0.1:7070",
		LLM:            "mcp",
		Provider:       "offline",
		QueueWait:      5 * time.Second,
		EmbeddedPort:   9092,
		Partitions:     6,
		DemoSeed:       1,
		DemoBad:        0.01,
	}
}

// Load builds the configuration from defaults, the YAML file named by
// --config (or TRIAGE_CONFIG), TRIAGE_* variables from getenv and args.
// It returns flag.ErrHelp when args ask for help.
func Load(name string, args []string, getenv func(string) string) (Config, error) {
	c := Default()
	path := getenv("TRIAGE_CONFIG")
	for i, a := range args {
		switch {
		case a == "--config" || a == "-config":
			if i+1 < len(args) {
				path = args[i+1]
			}
		case strings.HasPrefix(a, "--config="), strings.HasPrefix(a, "-config="):
			path = a[strings.Index(a, "=")+1:]
		}
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		// An empty file (io.EOF) means all defaults.
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return c, fmt.Errorf("config: %s: %w", path, err)
		}
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	bind(fs, &c)
	fs.String("config", path, "YAML configuration file (env TRIAGE_CONFIG)")
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		env := "TRIAGE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(env); v != "" && f.Name != "config" {
			if err := fs.Set(f.Name, v); err != nil && envErr == nil {
				envErr = fmt.Errorf("config: %s=%q: %w", env, v, err)
			}
		}
	})
	if envErr != nil {
		return c, envErr
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("config: unexpected arguments %q", fs.Args())
	}
	return c, c.validate()
}

func (c Config) validate() error {
	switch {
	case !c.Embedded && len(c.Brokers) == 0:
		return errors.New("config: --brokers is empty (or use --embedded)")
	case c.Workers <= 0:
		return fmt.Errorf("config: --workers %d must be positive", c.Workers)
	case c.QueueSize < 0:
		return fmt.Errorf("config: --queue-size %d must not be negative", c.QueueSize)
	case len(c.Topics) == 0:
		return errors.New("config: --topics is empty")
	case c.Demo < 0:
		return fmt.Errorf("config: --demo %d must not be negative", c.Demo)
	case c.Demo > 0 && !c.Embedded && len(c.Brokers) == 0:
		return errors.New("config: --demo needs brokers or --embedded")
	case c.Sampler != "" && c.Sampler != "builtin" && c.Sampler != "none":
		return fmt.Errorf("config: --sampler %q: want builtin or none", c.Sampler)
	case c.LLM != "mcp" && c.LLM != "direct":
		return fmt.Errorf("config: --llm %q: want mcp or direct", c.LLM)
	case c.LogFormat != "json" && c.LogFormat != "text":
		return fmt.Errorf("config: --log-format %q: want json or text", c.LogFormat)
	}
	return nil
}

func bind(fs *flag.FlagSet, c *Config) {
	fs.Var((*list)(&c.Brokers), "brokers", "Kafka seed brokers, comma-separated")
	fs.StringVar(&c.Group, "group", c.Group, "consumer group id")
	fs.Var((*list)(&c.Topics), "topics", "event topics to consume, comma-separated")
	fs.StringVar(&c.DecisionsTopic, "decisions-topic", c.DecisionsTopic, "topic for decisions")
	fs.StringVar(&c.AuditTopic, "audit-topic", c.AuditTopic, "topic for audit records")
	fs.StringVar(&c.DLQTopic, "dlq-topic", c.DLQTopic, "dead-letter topic for invalid records")
	fs.StringVar(&c.Rules, "rules", c.Rules, "rules file, reloaded on change and SIGHUP (default: the built-in policy)")
	fs.IntVar(&c.Workers, "workers", c.Workers, "ambiguous events decided concurrently")
	fs.IntVar(&c.QueueSize, "queue-size", c.QueueSize, "ambiguous events waiting for a worker before fetching pauses (default 4 × workers)")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", c.DrainTimeout, "graceful shutdown bound; unfinished events stay uncommitted")
	fs.DurationVar(&c.SessionTimeout, "session-timeout", c.SessionTimeout, "group session timeout: how soon partitions of a crashed member move to the others")
	fs.StringVar(&c.HTTPListen, "http-listen", c.HTTPListen, "address for /metrics, /healthz, /readyz (empty: off)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "json or text")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.MCPListen, "mcp-listen", c.MCPListen, "address of the MCP server (Streamable HTTP at /mcp) that samplers connect to (empty: off)")
	fs.StringVar(&c.MCPToken, "mcp-token", c.MCPToken, "bearer token remote samplers must send on /mcp (empty: none; set one beyond loopback)")
	fs.StringVar(&c.Sampler, "sampler", c.Sampler, "builtin: an in-process MCP sampler with the --provider; none: wait for remote samplers (default: builtin with --embedded, else none)")
	fs.StringVar(&c.LLM, "llm", c.LLM, "mcp: reach the LLM through MCP sampling; direct: call the --provider API from the consumer")
	fs.StringVar(&c.Provider, "provider", c.Provider, "LLM provider of the builtin sampler and of --llm direct: offline, anthropic or openai")
	fs.StringVar(&c.Model, "model", c.Model, "provider model, overriding the hint table")
	fs.StringVar(&c.BaseURL, "base-url", c.BaseURL, "provider base URL (openai-compatible servers: Ollama, vLLM, llama.cpp, LiteLLM)")
	fs.StringVar(&c.APIKey, "api-key", c.APIKey, "provider API key (default: ANTHROPIC_API_KEY or OPENAI_API_KEY)")
	fs.DurationVar(&c.OfflineLatency, "offline-latency", c.OfflineLatency, "simulated latency of the offline scorer")
	fs.DurationVar(&c.QueueWait, "queue-wait", c.QueueWait, "how long an ambiguous event waits for a sampler before the no_sampler fallback")
	fs.IntVar(&c.SamplerCalls, "sampler-calls", c.SamplerCalls, "work-tool calls in flight of the builtin sampler (default: --workers)")
	fs.BoolVar(&c.Embedded, "embedded", c.Embedded, "run an in-process Kafka-protocol broker on 127.0.0.1 (no infrastructure needed)")
	fs.IntVar(&c.EmbeddedPort, "embedded-port", c.EmbeddedPort, "port of the embedded broker")
	fs.IntVar(&c.Partitions, "partitions", c.Partitions, "partitions per topic created by the embedded broker")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "persist the embedded broker's log here (default: memory only)")
	fs.IntVar(&c.Demo, "demo", c.Demo, "produce N synthetic events, process them, print a summary and exit")
	fs.StringVar(&c.SummaryJSON, "summary-json", c.SummaryJSON, "with --demo, also write the summary as JSON to this file")
	fs.Int64Var(&c.DemoSeed, "demo-seed", c.DemoSeed, "with --demo, the generator's seed")
	fs.Float64Var(&c.DemoRate, "demo-rate", c.DemoRate, "with --demo, events/s (0: as fast as possible)")
	fs.StringVar(&c.DemoMix, "demo-mix", c.DemoMix, "with --demo, event type shares, e.g. transaction=0.8,document=0.2")
	fs.StringVar(&c.DemoAmbiguous, "demo-ambiguous", c.DemoAmbiguous, "with --demo, share per type crafted for sampling, e.g. transaction=0.05,document=0.2")
	fs.Float64Var(&c.DemoBad, "demo-bad", c.DemoBad, "with --demo, share of malformed records")
	fs.StringVar(&c.ClickHouse, "clickhouse", c.ClickHouse, "ClickHouse DSN (clickhouse://host:9000/db): run the audit sink in this process, as group <group>-clickhouse; with --demo, print the dashboard report at the end")
}

// list is a comma-separated flag value.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }

func (l *list) Set(s string) error {
	*l = nil
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}
