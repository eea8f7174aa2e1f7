// Command consumer runs the triage decision pipeline: a Kafka consumer group
// that decides events with rules, sends the ambiguous ones to a sampler and
// emits decisions, audit records and dead letters.
//
//	consumer --embedded --demo 20000      # everything in-process, then a summary
//	consumer --brokers kafka:9092 --rules rules.yaml
//
// Configuration comes from --config (YAML), TRIAGE_* environment variables
// and flags, in rising precedence; see --help.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/triage-dev/triage/internal/config"
	"github.com/triage-dev/triage/internal/demo"
	"github.com/triage-dev/triage/internal/embedded"
	"github.com/triage-dev/triage/internal/status"
	"github.com/triage-dev/triage/internal/tracing"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
)

func main() {
	// The first signal starts the graceful shutdown (which drains in-flight
	// events and commits). The default handling is restored before the
	// shutdown begins, so that a second signal, however soon, ends the
	// process at once, as operators expect of a stuck shutdown.
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		signal.Stop(sigs)
		cancel()
	}()
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	if code, ok := subcommand(ctx, args, os.Stdout, os.Stderr); ok {
		return code
	}
	cfg, err := config.Load("consumer", args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	log, err := newLogger(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := serve(ctx, cfg, log); err != nil {
		log.Error("consumer stopped", "err", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	tuneGC(cfg, log)
	brokers := cfg.Brokers
	if cfg.Embedded {
		topics := append([]string{cfg.DecisionsTopic, cfg.AuditTopic, cfg.DLQTopic, cfg.SinkDLQTopic}, cfg.Topics...)
		if cfg.Stage != "inline" {
			topics = append(topics, cfg.SamplingTopic)
		}
		b, err := embedded.Start(embedded.Config{Port: cfg.EmbeddedPort, Partitions: int32(cfg.Partitions), Topics: topics, DataDir: cfg.DataDir})
		if err != nil {
			return err
		}
		defer b.Close()
		brokers = b.Addrs()
		log.Info("embedded broker started", "addrs", brokers, "partitions", cfg.Partitions)
	}

	key, err := maskKey(cfg, log)
	if err != nil {
		return err
	}
	live, err := loadRules(ctx, cfg.Rules, key, log)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// The sink reaches ClickHouse in the background: the decisions do not
	// wait for it (see clickhouseSink).
	var ch *clickhouseSink
	if cfg.ClickHouse != "" {
		if ch, err = newClickHouseSink(cfg, brokers, log, reg); err != nil {
			return err
		}
	}

	tp, stopTracing, err := tracing.Setup(ctx, tracing.Config{Endpoint: cfg.OTLPEndpoint, Service: "triage-consumer"})
	if err != nil {
		return err
	}
	defer tracing.Stop(ctx, stopTracing, log)
	stage, err := newLLMStage(cfg, log, reg, tp)
	if err != nil {
		return err
	}

	var summary *demo.Summary
	if cfg.Demo > 0 {
		summary = demo.NewSummary()
	}
	signer, err := auditSigner(cfg.AuditKeyFile)
	if err != nil {
		return err
	}
	pcfg := pipeline.Config{
		Brokers: brokers, Group: cfg.Group, Topics: cfg.Topics, TopicTypes: cfg.TopicTypeMap(),
		DecisionsTopic: cfg.DecisionsTopic, AuditTopic: cfg.AuditTopic, DLQTopic: cfg.DLQTopic,
		SamplingTopic: cfg.SamplingTopic,
		Rules:         live, Decider: stage.decider, Workers: cfg.Workers, QueueSize: cfg.QueueSize, DrainTimeout: cfg.DrainTimeout,
		Logger: log, Observe: stage.history.Observe, AllLLM: cfg.AllLLM,
		GroupProtocol: cfg.GroupProtocol,
		Delivery:      cfg.Delivery, TransactionalID: cfg.TxnID,
		CommitInterval: cfg.CommitInterval, TransactionTimeout: cfg.TxnTimeout, Signer: signer,
		ClientOpts:     []kgo.Opt{kgo.SessionTimeout(cfg.SessionTimeout)},
		TracerProvider: tp,
	}
	// The status page follows every result; the demo summary too.
	agg := status.New(status.Options{})
	pcfg.OnResult = agg.Add
	if summary != nil {
		pcfg.OnResult = onResults(agg.Add, summary.Add)
	}
	pipes, err := newStages(cfg, pcfg, reg)
	if err != nil {
		return err
	}
	p := pipes[0] // the rule stage (or the only one): what the status page and the demo follow
	syncAPI, err := newSyncAPI(cfg, pcfg, stage, reg, log)
	if err != nil {
		return err
	}

	// The pipeline stops when the process is told to, when the demo is
	// done, or when any other part of the group fails. The LLM stage (MCP
	// endpoint, builtin sampler) outlives it: draining the pipeline needs
	// the samplers to answer what is in flight.
	g, gctx := errgroup.WithContext(ctx)
	pctx, cancelPipeline := context.WithCancel(gctx)
	defer cancelPipeline()
	sctx, stopStage := context.WithCancel(context.WithoutCancel(ctx))
	defer stopStage()
	// The LLM stage stops once every pipeline has drained.
	var running sync.WaitGroup
	var parts []part
	for _, pl := range pipes {
		running.Add(1)
		g.Go(func() error {
			defer running.Done()
			return pl.p.Run(pctx)
		})
		// /readyz/pipeline is the rule stage (or the one pipeline),
		// /readyz/sampling the sampling stage.
		name := "pipeline"
		if pl.name == pipeline.StageSampling {
			name = "sampling"
		}
		parts = append(parts, part{name: name, status: closedStatus(pl.p.Ready()), required: true})
	}
	go func() {
		running.Wait()
		// Synchronous decisions in flight finish before the samplers go.
		syncAPI.close()
		stopStage()
	}()
	g.Go(func() error {
		reloadOnSIGHUP(pctx, live, log)
		return nil
	})
	if ch != nil {
		g.Go(func() error { return ch.run(pctx) })
		// The sink's readiness is a detail: the decisions go on without it.
		parts = append(parts, part{name: "sink", status: ch.status})
	}
	if cfg.HTTPListen != "" {
		ops := syncAPI.routes(statusHandler(opsHandler(reg, parts...), agg, p.p, stage, log))
		if err := serveHTTP(g, pctx, cfg.HTTPListen, ops, log); err != nil {
			cancelPipeline()
			_ = g.Wait()
			return err
		}
	}
	if stage.pool != nil {
		// Closing the pool ends the samplers' long polls, so that the MCP
		// endpoint can shut down at once.
		stop := context.AfterFunc(sctx, func() { _ = stage.pool.Close() })
		defer stop()
		if cfg.MCPListen != "" {
			tokens := stage.tokens
			if host, _, _ := net.SplitHostPort(cfg.MCPListen); len(tokens) == 0 && !isLoopback(host) {
				log.Warn("the MCP endpoint listens beyond loopback without --mcp-token: anyone who reaches it can pull events", "addr", cfg.MCPListen)
			}
			mux := http.NewServeMux()
			mux.Handle("/mcp", stage.pool.HandlerTokens(tokens))
			if err := serveHTTP(g, sctx, cfg.MCPListen, mux, log); err != nil {
				cancelPipeline()
				_ = g.Wait()
				return err
			}
		}
	}
	if stage.builtin != nil {
		g.Go(func() error { return stage.builtin.Run(sctx) })
	}
	if summary != nil {
		opts := demo.Options{
			Brokers: brokers, Events: cfg.Demo, Seed: cfg.DemoSeed, Rate: cfg.DemoRate,
			Mix: cfg.DemoMix, Ambiguous: cfg.DemoAmbiguous, Bad: cfg.DemoBad, Repeat: cfg.DemoRepeat, Logger: log,
			Ready: p.p.Ready(), AuditTopic: cfg.AuditTopic, Sampler: stage.label, Out: os.Stdout, Progress: os.Stderr, SummaryJSON: cfg.SummaryJSON,
		}
		if ch != nil {
			opts.CatchUp = ch.waitCaughtUp
			opts.Dashboards = ch.report
		}
		g.Go(func() error {
			defer cancelPipeline()
			_, err := demo.Run(gctx, opts, summary)
			return err
		})
	}
	return g.Wait()
}

// maskKey is the key of the rules' hash mask: the configured one, or with
// --embedded and none configured a random one for this run (pseudonyms then
// match within the run only). Elsewhere no key means a rules file that uses
// hash does not load: pseudonyms must not silently become guessable.
func maskKey(cfg config.Config, log *slog.Logger) (rules.MaskKey, error) {
	secret, err := cfg.MaskSecret()
	switch {
	case err != nil:
		return rules.MaskKey{}, err
	case secret != nil:
		return rules.NewMaskKey(secret)
	case cfg.Embedded:
		log.Warn("no --mask-key: hash-masked fields are pseudonymised with a random key for this run only")
		return rules.RandomMaskKey(), nil
	}
	return rules.MaskKey{}, nil
}

func loadRules(ctx context.Context, path string, key rules.MaskKey, log *slog.Logger) (*rules.Live, error) {
	if path == "" {
		set, err := rules.Parse("default.yaml", rules.Default, rules.WithMaskKey(key))
		if err != nil {
			return nil, err
		}
		log.Info("rules loaded", "file", "built-in default.yaml", "types", set.Types())
		return rules.Static(set), nil
	}
	live, err := rules.Watch(ctx, path, log, rules.WithMaskKey(key))
	if err != nil {
		return nil, err
	}
	log.Info("rules loaded", "file", path, "types", live.Current().Types())
	return live, nil
}

func reloadOnSIGHUP(ctx context.Context, live *rules.Live, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := live.Reload(); err != nil {
				log.Error("rules reload failed; keeping the previous rules", "err", err)
			}
		}
	}
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// part is a component whose readiness /readyz reports.
type part struct {
	name string
	// status is "" once the part is ready, or what it waits for.
	status func() string
	// required parts decide /readyz; the others are details that
	// /readyz?verbose and /readyz/NAME show.
	required bool
}

// closedStatus is the status of a part that is ready once ready is closed.
func closedStatus(ready <-chan struct{}) func() string {
	return func() string {
		select {
		case <-ready:
			return ""
		default:
			return "starting"
		}
	}
}

// opsHandler serves the operational endpoints. /readyz answers 200 once
// every required part is ready, 503 before; with ?verbose it lists every
// part ("[+]name ready" or "[-]name what it waits for"). /readyz/NAME
// answers for one part, required or not.
func opsHandler(reg *prometheus.Registry, parts ...part) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		ready := true
		for _, p := range parts {
			st := p.status()
			switch {
			case st == "":
				fmt.Fprintf(&b, "[+]%s ready\n", p.name)
			case p.required:
				ready = false
				fmt.Fprintf(&b, "[-]%s %s\n", p.name, st)
			default:
				fmt.Fprintf(&b, "[-]%s %s (not required)\n", p.name, st)
			}
		}
		code, verdict := http.StatusOK, "ready"
		if !ready {
			code, verdict = http.StatusServiceUnavailable, "starting"
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		if r.URL.Query().Has("verbose") {
			fmt.Fprint(w, b.String())
		}
		fmt.Fprintln(w, verdict)
	})
	for _, p := range parts {
		mux.HandleFunc("GET /readyz/"+p.name, func(w http.ResponseWriter, _ *http.Request) {
			if st := p.status(); st != "" {
				http.Error(w, st, http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ready")
		})
	}
	return mux
}

// serveHTTP listens on addr now (so that a bad address fails start-up) and
// serves h in g until ctx ends.
func serveHTTP(g *errgroup.Group, ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	log.Info("http listening", "addr", ln.Addr().String())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http %s: %w", addr, err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("http: connections still open at shutdown; closing them", "addr", addr, "err", err)
			_ = srv.Close()
		}
		return nil
	})
	return nil
}

func newLogger(cfg config.Config) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("config: --log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
}

// pipe is one pipeline of the process and its name: the value of its
// metrics' stage label and its part in /readyz.
type pipe struct {
	name string
	p    *pipeline.Pipeline
}

// newStages creates the pipelines --stage asks for from base: with "all",
// the rule stage, which hands ambiguous events off to the sampling topic,
// and the sampling stage, which decides them with its own consumer group;
// with "rules" or "sampling", one of them; with "inline", one pipeline that
// decides ambiguous events itself. The rule stage (or the only one) comes
// first. Each has its own metrics, labelled with its stage.
func newStages(cfg config.Config, base pipeline.Config, reg prometheus.Registerer) ([]pipe, error) {
	var names []string
	switch cfg.Stage {
	case "all":
		names = []string{pipeline.StageRules, pipeline.StageSampling}
	default:
		names = []string{cfg.Stage}
	}
	var out []pipe
	for _, name := range names {
		pc := base
		pc.Stage = name
		switch name {
		case pipeline.StageRules:
			// The rule stage decides no ambiguous event itself.
			pc.Decider = nil
		case pipeline.StageSampling:
			// The rule stage observes every event; the two share the
			// history in one process.
			// It decides what the rule stage handed off; the history the
			// LLM's tools read is fed by the rule stage (shared in one
			// process).
			pc.Group, pc.Observe, pc.AllLLM = cfg.SamplingGroupOrDefault(), nil, false
			if pc.TransactionalID != "" {
				pc.TransactionalID += ".sampling"
			}
		}
		m, err := pipeline.NewMetrics(prometheus.WrapRegistererWith(prometheus.Labels{"stage": name}, reg))
		if err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
		pc.Metrics = m
		p, err := pipeline.New(pc)
		if err != nil {
			return nil, err
		}
		out = append(out, pipe{name: name, p: p})
	}
	return out, nil
}

// tuneGC applies --gogc and --memory-limit-mib, unless the environment's
// GOGC and GOMEMLIMIT, which the runtime read at start, set them.
func tuneGC(cfg config.Config, log *slog.Logger) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(cfg.GOGC)
		log.Debug("garbage collector target", "gogc", cfg.GOGC)
	}
	if os.Getenv("GOMEMLIMIT") == "" && cfg.MemoryLimitMiB > 0 {
		debug.SetMemoryLimit(int64(cfg.MemoryLimitMiB) << 20)
		log.Debug("memory limit", "mib", cfg.MemoryLimitMiB)
	}
}
