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
)

// SamplingGroupOrDefault is the sampling stage's consumer group.
func (c Config) SamplingGroupOrDefault() string {
	if c.SamplingGroup != "" {
		return c.SamplingGroup
	}
	return c.Group + ".sampling"
}

// Config is the consumer's whole configuration, one field per flag of
// cmd/consumer (see Load). The default of each field is in Default.
type Config struct {
	Brokers        []string
	Group          string
	Topics         []string
	TopicTypes     []string
	DecisionsTopic string
	AuditTopic     string
	DLQTopic       string
	SinkDLQTopic   string
	// Stage is which stages this process runs: all (the rule stage and
	// the sampling stage, each its own consumer group), rules, sampling,
	// or inline (one stage deciding ambiguous events in memory).
	Stage string
	// SamplingTopic carries ambiguous events from the rule stage to the
	// sampling stage; SamplingGroup is the sampling stage's consumer
	// group (empty: Group + ".sampling").
	SamplingTopic  string
	SamplingGroup  string
	Rules          string
	Workers        int
	QueueSize      int
	DrainTimeout   time.Duration
	SessionTimeout time.Duration
	GroupProtocol  string
	Delivery       string
	TxnID          string
	CommitInterval time.Duration
	TxnTimeout     time.Duration
	HTTPListen     string
	LogFormat      string
	LogLevel       string

	MCPListen string
	MCPToken  string
	// MCPTokensFile names a file of region-bound sampler tokens, one
	// "region token" pair a line (see sampling.Token).
	MCPTokensFile string
	// APIToken is the bearer token of POST /v1/decide (its caller is
	// named "api"); APITokensFile names a file of named tokens, one "name
	// token [tenant,...]" a line (see internal/httpapi). Without either,
	// the endpoint is off.
	APIToken      string
	APITokensFile string
	// DecideSampling is where the sampling requests of synchronous
	// decisions go: "caller" (back to an MCP caller that declared
	// sampling, else the pool) or "pool".
	DecideSampling string
	// DecideBatch bounds the events of one POST /v1/decide; DecideWindow
	// is how long a synchronous decision answers retries of its request.
	DecideBatch  int
	DecideWindow time.Duration
	// Region is where this consumer runs: the region of its builtin
	// sampler and of --llm direct's provider, for tenants restricted to
	// regions.
	Region         string
	Sampler        string
	LLM            string
	Provider       string
	Model          string
	BaseURL        string
	Structured     string
	APIKey         string
	OfflineLatency time.Duration
	// GOGC is the garbage collector's target percentage (runtime/debug
	// SetGCPercent) unless the GOGC environment variable sets one.
	GOGC int
	// MemoryLimitMiB is the runtime's soft memory limit in MiB
	// (SetMemoryLimit) unless GOMEMLIMIT sets one; 0: none.
	MemoryLimitMiB int
	QueueWait      time.Duration
	// QuarantineAfter and QuarantineFor are sampling.Options' circuit
	// breaker per sampler session.
	QuarantineAfter int
	QuarantineFor   time.Duration
	SamplerCalls    int

	// MaskKey is the secret of the keyed pseudonymisation (HMAC-SHA256) of
	// the fields the rules mask with hash; MaskKeyFile names a file holding
	// it. At most one is set. With neither, a rules file that uses hash
	// does not load, except with --embedded, which uses a random key for
	// the run.
	MaskKey     string
	MaskKeyFile string
	// AuditKeyFile names a file holding the HMAC key that signs the
	// audit chains' checkpoints; empty means no checkpoints.
	AuditKeyFile string

	Embedded     bool
	EmbeddedPort int
	Partitions   int
	DataDir      string

	Demo          int
	SummaryJSON   string
	DemoSeed      int64
	DemoRate      float64
	DemoMix       string
	DemoAmbiguous string
	DemoBad       float64
	DemoRepeat    float64
	// AllLLM is pipeline.Config.AllLLM: every event to the LLM stage, the
	// decision economy's baseline.
	AllLLM bool

	ClickHouse string

	// OTLPEndpoint is where traces go (internal/tracing.Config.Endpoint);
	// empty leaves it to the OTEL_EXPORTER_OTLP_* variables, and tracing
	// is off without them.
	OTLPEndpoint string
}

// Default returns the defaults every source overrides.
func Default() Config {
	return Config{
		Brokers:         []string{"127.0.0.1:9092"},
		Group:           "triage",
		Topics:          []string{"events.transactions", "events.documents"},
		DecisionsTopic:  "decisions",
		AuditTopic:      "audit",
		DLQTopic:        "events.dlq",
		SinkDLQTopic:    "audit.dlq",
		Stage:           "all",
		GOGC:            400,
		DecideSampling:  "caller",
		DecideBatch:     100,
		DecideWindow:    10 * time.Minute,
		SamplingTopic:   "sampling.requests",
		Workers:         64,
		DrainTimeout:    30 * time.Second,
		SessionTimeout:  45 * time.Second,
		GroupProtocol:   "consumer",
		Delivery:        "exactly-once",
		TxnTimeout:      10 * time.Second,
		HTTPListen:      "127.0.0.1:9464",
		LogFormat:       "json",
		LogLevel:        "info",
		MCPListen:       "127.0.0.1:7070",
		LLM:             "mcp",
		Provider:        "offline",
		Structured:      "json_schema",
		QueueWait:       5 * time.Second,
		QuarantineAfter: 3,
		QuarantineFor:   5 * time.Second,
		EmbeddedPort:    9092,
		Partitions:      6,
		DemoSeed:        1,
		DemoBad:         0.01,
		DemoRepeat:      0.1,
		DemoRate:        2000,
	}
}

// Load builds the consumer's configuration from args, TRIAGE_* variables,
// the YAML file named by --config and Default, as Parse layers them, and
// validates it. name is the flag set's name in errors and help (consumer,
// consumer sink). It returns flag.ErrHelp after writing the help to help.
func Load(name string, args []string, help io.Writer) (Config, error) {
	c := Default()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	bind(fs, &c)
	if err := Parse(fs, args, help); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, fmt.Errorf("config: %w", err)
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
	case c.Stage != "all" && c.Stage != "rules" && c.Stage != "sampling" && c.Stage != "inline":
		return fmt.Errorf("config: --stage %q: want all, rules, sampling or inline", c.Stage)
	case c.Stage != "inline" && c.SamplingTopic == "":
		return fmt.Errorf("config: --stage %s needs a --sampling-topic", c.Stage)
	case c.GOGC < -1 || c.MemoryLimitMiB < 0:
		return fmt.Errorf("config: --gogc %d (want a percentage, or -1 for off) and --memory-limit-mib %d (want 0 or more)", c.GOGC, c.MemoryLimitMiB)
	case c.Demo < 0:
		return fmt.Errorf("config: --demo %d must not be negative", c.Demo)
	case c.Sampler != "" && c.Sampler != "builtin" && c.Sampler != "none":
		return fmt.Errorf("config: --sampler %q: want builtin or none", c.Sampler)
	case c.LLM != "mcp" && c.LLM != "direct":
		return fmt.Errorf("config: --llm %q: want mcp or direct", c.LLM)
	case c.LogFormat != "json" && c.LogFormat != "text":
		return fmt.Errorf("config: --log-format %q: want json or text", c.LogFormat)
	case c.GroupProtocol != "consumer" && c.GroupProtocol != "classic":
		return fmt.Errorf("config: --group-protocol %q: want consumer or classic", c.GroupProtocol)
	case c.Delivery != "exactly-once" && c.Delivery != "at-least-once":
		return fmt.Errorf("config: --delivery %q: want exactly-once or at-least-once", c.Delivery)
	case c.CommitInterval < 0 || c.TxnTimeout < 0:
		return errors.New("config: --commit-interval and --transaction-timeout must not be negative")
	case c.topicTypesErr() != nil:
		return c.topicTypesErr()
	case c.DecideSampling != "caller" && c.DecideSampling != "pool":
		return fmt.Errorf("config: --decide-sampling %q: want caller or pool", c.DecideSampling)
	case c.DecideBatch < 1 || c.DecideWindow <= 0:
		return fmt.Errorf("config: --decide-batch %d (want 1 or more) and --decide-window %s (want more than 0)", c.DecideBatch, c.DecideWindow)
	case c.MaskKey != "" && c.MaskKeyFile != "":
		return errors.New("config: --mask-key and --mask-key-file are both set: give the key one way")
	}
	return nil
}

func bind(fs *flag.FlagSet, c *Config) {
	fs.Var(NewList(&c.Brokers), "brokers", "Kafka seed brokers, comma-separated")
	fs.StringVar(&c.Group, "group", c.Group, "consumer group id")
	fs.Var(NewList(&c.Topics), "topics", "event topics to consume, comma-separated")
	fs.Var(NewList(&c.TopicTypes), "topic-types", "topic=type pairs, comma-separated (a topic may repeat): the event types each topic carries; others there are dead-lettered as wrong_topic (empty: every topic takes every type)")
	fs.StringVar(&c.DecisionsTopic, "decisions-topic", c.DecisionsTopic, "topic for decisions")
	fs.StringVar(&c.AuditTopic, "audit-topic", c.AuditTopic, "topic for audit records")
	fs.StringVar(&c.DLQTopic, "dlq-topic", c.DLQTopic, "dead-letter topic for invalid records")
	fs.StringVar(&c.SinkDLQTopic, "sink-dlq-topic", c.SinkDLQTopic, "dead-letter topic of the ClickHouse sink, for audit and decision records it cannot store")
	fs.StringVar(&c.Stage, "stage", c.Stage, "all: the rule stage hands ambiguous events to --sampling-topic and the sampling stage decides them, both in this process, each its own consumer group; rules or sampling: one of them (scale them apart); inline: one stage that decides ambiguous events in memory and pauses a partition whose ambiguous events do not fit")
	fs.StringVar(&c.SamplingTopic, "sampling-topic", c.SamplingTopic, "topic of the ambiguous events between the rule stage and the sampling stage: the LLM backlog, as its lag (it holds what the event topics hold: give it their ACLs and retention)")
	fs.StringVar(&c.SamplingGroup, "sampling-group", c.SamplingGroup, "consumer group of the sampling stage (empty: --group + \".sampling\")")
	fs.StringVar(&c.Rules, "rules", c.Rules, "rules file, reloaded on change and SIGHUP (empty: the built-in policy)")
	fs.IntVar(&c.Workers, "workers", c.Workers, "ambiguous events decided concurrently")
	fs.IntVar(&c.QueueSize, "queue-size", c.QueueSize, "ambiguous events waiting for a worker before fetching pauses (0: 4 × workers)")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", c.DrainTimeout, "graceful shutdown bound; unfinished events stay uncommitted")
	fs.DurationVar(&c.SessionTimeout, "session-timeout", c.SessionTimeout, "group session timeout: how soon partitions of a crashed member move to the others")
	fs.StringVar(&c.GroupProtocol, "group-protocol", c.GroupProtocol, "consumer: KIP-848 (broker-assigned, cooperative) where the broker offers it, else classic; classic: client-driven cooperative-sticky (use it on Kafka 4.0-4.2, whose KIP-848 commits can fail with STALE_MEMBER_EPOCH)")
	fs.StringVar(&c.Delivery, "delivery", c.Delivery, "exactly-once: decisions, audit records, dead letters and offsets in one Kafka transaction (read them read_committed); at-least-once: for brokers without transactions, a crash may repeat outputs")
	fs.StringVar(&c.TxnID, "transactional-id", c.TxnID, "exactly-once: this member's transactional id, unique among live members (empty: group, instance and a random suffix); a stable one lets a restart abort its predecessor's open transaction at once")
	fs.DurationVar(&c.CommitInterval, "commit-interval", c.CommitInterval, "how often finished work is committed, and so visible to read_committed readers (0: 100ms exactly-once, 1s at-least-once)")
	fs.DurationVar(&c.TxnTimeout, "transaction-timeout", c.TxnTimeout, "exactly-once: how long the broker keeps a transaction of a crashed member open before aborting it")
	fs.StringVar(&c.HTTPListen, "http-listen", c.HTTPListen, "address for /metrics, /healthz, /readyz (empty: off)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "json or text")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.MCPListen, "mcp-listen", c.MCPListen, "address of the MCP server (Streamable HTTP at /mcp) that samplers connect to (empty: off)")
	fs.StringVar(&c.MCPToken, "mcp-token", c.MCPToken, "bearer token remote samplers must send on /mcp (empty: none; set one beyond loopback)")
	fs.StringVar(&c.MCPTokensFile, "mcp-tokens-file", c.MCPTokensFile, `file of region-bound sampler tokens, one "region token" pair a line (# comments): a sampler's region is its token's, for tenants the rules restrict to regions; works beside --mcp-token, whose samplers have no region`)
	fs.StringVar(&c.APIToken, "api-token", c.APIToken, "bearer token of POST /v1/decide on --http-listen, whose caller is named api (empty, and no --api-tokens-file: the endpoint is off); ps shows flags: prefer TRIAGE_API_TOKEN")
	fs.StringVar(&c.APITokensFile, "api-tokens-file", c.APITokensFile, `file of POST /v1/decide tokens, one "name token [tenant,...]" a line (# comments): the name is the caller in audit records and rate limits; with tenants, the token decides only for them`)
	fs.StringVar(&c.DecideSampling, "decide-sampling", c.DecideSampling, "where synchronous decisions' sampling requests go: caller (back to the MCP client calling the decide tool, when it declared sampling; else the samplers) or pool (always the samplers)")
	fs.IntVar(&c.DecideBatch, "decide-batch", c.DecideBatch, "most events in one POST /v1/decide")
	fs.DurationVar(&c.DecideWindow, "decide-window", c.DecideWindow, "how long a synchronous decision answers a retry of its request (same tenant, event id and event) instead of deciding again")
	fs.StringVar(&c.Region, "region", c.Region, "region this consumer runs in: the region of its builtin sampler and of --llm direct's provider, for tenants the rules restrict to regions")
	fs.StringVar(&c.Sampler, "sampler", c.Sampler, "builtin: an in-process MCP sampler with the --provider; none: wait for remote samplers (empty: builtin with --embedded, else none)")
	fs.StringVar(&c.LLM, "llm", c.LLM, "mcp: reach the LLM through MCP sampling; direct: call the --provider API from the consumer")
	fs.StringVar(&c.Provider, "provider", c.Provider, "LLM provider of the builtin sampler and of --llm direct: offline, anthropic or openai")
	fs.StringVar(&c.Model, "model", c.Model, "provider model, overriding the hint table")
	fs.StringVar(&c.BaseURL, "base-url", c.BaseURL, "provider base URL (openai-compatible servers: Ollama, vLLM, llama.cpp, LiteLLM)")
	fs.StringVar(&c.Structured, "structured", c.Structured, "how openai asks for answers that follow the decision schema: json_schema (OpenAI, vLLM, Ollama, llama-server), json_object (llama-cpp-python) or none")
	fs.StringVar(&c.APIKey, "api-key", c.APIKey, "provider API key (empty: $ANTHROPIC_API_KEY or $OPENAI_API_KEY, by --provider)")
	fs.DurationVar(&c.OfflineLatency, "offline-latency", c.OfflineLatency, "simulated latency of the offline scorer")
	fs.IntVar(&c.GOGC, "gogc", c.GOGC, "garbage collector target percentage, unless $GOGC is set: the MCP SDK allocates a 32 KiB buffer per message it decodes, most of what a sampled decision allocates, and a higher target collects that short-lived garbage less often (pair it with --memory-limit-mib)")
	fs.IntVar(&c.MemoryLimitMiB, "memory-limit-mib", c.MemoryLimitMiB, "soft memory limit of the Go runtime in MiB, unless $GOMEMLIMIT is set: the collector works harder near it, whatever --gogc says (0: none; in a container, set it below the container's limit)")
	fs.DurationVar(&c.QueueWait, "queue-wait", c.QueueWait, "how long an ambiguous event waits for a sampler before the no_sampler fallback")
	fs.IntVar(&c.QuarantineAfter, "quarantine-after", c.QuarantineAfter, "failed leases in a row (with failures at least half of the last 10 s, and another sampler standing by) after which a sampler session gets no work for --quarantine-for; negative: never")
	fs.DurationVar(&c.QuarantineFor, "quarantine-for", c.QuarantineFor, "how long a quarantined sampler session gets no work before one trial lease")
	fs.IntVar(&c.SamplerCalls, "sampler-calls", c.SamplerCalls, "work-tool calls in flight of the builtin sampler (0: --workers)")
	fs.StringVar(&c.MaskKey, "mask-key", c.MaskKey, "secret of the keyed pseudonymisation of fields the rules mask with hash (at least 32 bytes; empty: a rules file that uses hash does not load, except with --embedded, which uses a random key for the run); ps shows flags: prefer TRIAGE_MASK_KEY or --mask-key-file")
	fs.StringVar(&c.MaskKeyFile, "mask-key-file", c.MaskKeyFile, "file holding the --mask-key secret (not both)")
	fs.StringVar(&c.AuditKeyFile, "audit-key-file", c.AuditKeyFile, "file holding the HMAC key (at least 32 bytes) that signs a checkpoint closing each audit chain at every commit, so that audit verify can tell rewritten rows from genuine ones (empty: no checkpoints)")
	fs.BoolVar(&c.Embedded, "embedded", c.Embedded, "run an in-process Kafka-protocol broker on 127.0.0.1 (no infrastructure needed)")
	fs.IntVar(&c.EmbeddedPort, "embedded-port", c.EmbeddedPort, "port of the embedded broker")
	fs.IntVar(&c.Partitions, "partitions", c.Partitions, "partitions per topic created by the embedded broker")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "persist the embedded broker's log here (empty: memory only)")
	fs.IntVar(&c.Demo, "demo", c.Demo, "produce N synthetic events, process them, print a summary and exit")
	fs.StringVar(&c.SummaryJSON, "summary-json", c.SummaryJSON, "with --demo, also write the summary as JSON to this file")
	fs.Int64Var(&c.DemoSeed, "demo-seed", c.DemoSeed, "with --demo, the generator's seed")
	fs.Float64Var(&c.DemoRate, "demo-rate", c.DemoRate, "with --demo, events/s at a steady rate, which the latency figures are for (0: all at once, a burst whose latency includes the wait behind the events before)")
	fs.StringVar(&c.DemoMix, "demo-mix", c.DemoMix, "with --demo, event type shares, e.g. transaction=0.8,document=0.2")
	fs.StringVar(&c.DemoAmbiguous, "demo-ambiguous", c.DemoAmbiguous, "with --demo, share per type crafted for sampling, e.g. transaction=0.05,document=0.2")
	fs.Float64Var(&c.DemoBad, "demo-bad", c.DemoBad, "with --demo, share of malformed records")
	fs.BoolVar(&c.AllLLM, "all-llm", c.AllLLM, "send every event to the LLM stage, ignoring the rules' verdict: the baseline that measures what the rules save (scripts/bench economy); never for production")
	fs.Float64Var(&c.DemoRepeat, "demo-repeat", c.DemoRepeat, "with --demo, share of ambiguous events that re-send a recent one under a new event_id (a retry, a re-upload): what the result cache answers")
	fs.StringVar(&c.ClickHouse, "clickhouse", c.ClickHouse, "ClickHouse DSN (clickhouse://host:9000/db): run the audit sink in this process, as group <group>-clickhouse; with --demo, print the dashboard report at the end")
	fs.StringVar(&c.OTLPEndpoint, "otlp-endpoint", c.OTLPEndpoint, "OTLP/HTTP endpoint for traces, e.g. http://collector:4318 (empty: $OTEL_EXPORTER_OTLP_ENDPOINT, and no tracing without it); OTEL_TRACES_SAMPLER_ARG sets the traced share of events (default 0.01)")
}

// MaskSecret returns the mask key's secret: --mask-key, or the content of
// --mask-key-file without its trailing line break; nil when neither is set.
func (c Config) MaskSecret() ([]byte, error) {
	if c.MaskKeyFile == "" {
		if c.MaskKey == "" {
			return nil, nil
		}
		return []byte(c.MaskKey), nil
	}
	return ReadKeyFile("mask-key-file", c.MaskKeyFile)
}

// ReadKeyFile reads a secret from the file the named flag gives, without
// its trailing line break; nil when the flag is empty.
func ReadKeyFile(flag, path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: --%s: %w", flag, err)
	}
	return bytes.TrimRight(b, "\r\n"), nil
}

// TopicTypeMap is --topic-types as a map from topic to its event types.
func (c Config) TopicTypeMap() map[string][]string {
	if len(c.TopicTypes) == 0 {
		return nil
	}
	m := map[string][]string{}
	for _, pair := range c.TopicTypes {
		topic, typ, _ := strings.Cut(pair, "=")
		m[topic] = append(m[topic], typ)
	}
	return m
}

func (c Config) topicTypesErr() error {
	for _, pair := range c.TopicTypes {
		if topic, typ, ok := strings.Cut(pair, "="); !ok || topic == "" || typ == "" {
			return fmt.Errorf("config: --topic-types %q: want topic=type", pair)
		}
	}
	return nil
}
