// Command chaos is triage's fault harness for operators (internal/chaos):
// it runs the real producer, consumers and sampler as processes against a
// running broker, SIGKILLs consumers (and now and then the sampler) at
// random times and restarts them, optionally restarts the broker or takes
// ClickHouse down once, then verifies that every produced record has a
// decision or a dead letter and an audit record, as "producer verify" does,
// and with --clickhouse that the audit table holds unbroken chains and one
// decision or dead letter per committed source offset, as "consumer audit
// verify --strict" does (checking the checkpoints' signatures with
// --audit-key-file).
//
//	chaos --brokers 127.0.0.1:19092 --events 20000 --rate 500 --kills 5 --kill-every 8s-15s
//	chaos --brokers 127.0.0.1:19092 --restart-broker            # scripts/kafka stop, start midway
//	chaos --brokers … --clickhouse clickhouse://127.0.0.1:19000/chaos --audit-key-file audit.key --clickhouse-outage 30s
//
// Without --bin-dir it builds the three binaries with go build (run it
// inside the module). Every run has its own topics and group (--prefix);
// each process writes to its own log file in the run directory (--dir, by
// default a new temporary directory), whose path is printed first. The
// table goes to stdout, progress to stderr. Exit status: 0 when nothing was
// lost, duplicated (unless --allow-duplicates), decided outside its type's
// outcomes or left without an audit record, no chain in ClickHouse broke
// and no committed offset is missing there or (unless --allow-duplicates)
// decided twice, and every process behaved; 1 otherwise; 2 for bad flags
// or binaries that would not build.
//
// --restart-broker runs scripts/kafka stop, then start, with this process's
// KAFKA_DIR, KAFKA_PORT and KAFKA_CONTROLLER_PORT; --clickhouse-outage runs
// scripts/clickhouse stop, waits, and starts it again. Neither installs
// anything.
//
// Every flag is also a TRIAGE_* environment variable and a key of the YAML
// file given with --config (see --help). The children inherit the
// environment, so a TRIAGE_* variable meant for the harness reaches them
// too.
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
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/triage-dev/triage/internal/chaos"
	"github.com/triage-dev/triage/internal/config"
	"github.com/triage-dev/triage/rules"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// flags are chaos's flags; parseFlags documents each.
type flags struct {
	brokers          []string
	binDir, dir      string
	prefix           string
	partitions       int
	events           int
	rate, bad        float64
	seed             int64
	consumers        int
	groupProtocol    string
	sessionTimeout   time.Duration
	drainTimeout     time.Duration
	stableTxnIDs     bool
	consumerArgs     repeated
	noSampler        bool
	samplerLatency   time.Duration
	samplerArgs      repeated
	killEvery        string
	kills            int
	killSampler      float64
	restartDelay     time.Duration
	killSeed         int64
	restartBroker    bool
	restartBrokerAt  time.Duration
	clickhouse       string
	auditKeyFile     string
	outage           time.Duration
	outageAt         time.Duration
	scripts          string
	rules            string
	settleTimeout    time.Duration
	verifyTimeout    time.Duration
	allowDuplicates  bool
	logLevel         slog.Level
	killMin, killMax time.Duration
}

// repeated is a flag that may be given many times, each value kept whole
// (commas included).
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, " ") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func parseFlags(args []string, stderr io.Writer) (flags, error) {
	f := flags{brokers: []string{"127.0.0.1:9092"}}
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.Var(config.NewList(&f.brokers), "brokers", "comma-separated seed brokers of the broker to run against")
	fs.StringVar(&f.binDir, "bin-dir", "", "directory holding the consumer, producer and sampler binaries (empty: go build them into a temporary directory)")
	fs.StringVar(&f.dir, "dir", "", "run directory for the process logs (empty: a new temporary directory, kept)")
	fs.StringVar(&f.prefix, "prefix", "", "prefix of the run's topics and group (empty: chaos-<unix time>)")
	fs.IntVar(&f.partitions, "partitions", 6, "partitions of the run's topics, created up front (0: the consumers and producer auto-create them)")
	fs.IntVar(&f.events, "events", 20000, "events to produce")
	fs.Float64Var(&f.rate, "rate", 500, "events per second (0: as fast as possible, which leaves the kills little to hit)")
	fs.Float64Var(&f.bad, "bad", 0.01, "share of malformed records, which end in the DLQ")
	fs.Int64Var(&f.seed, "seed", 1, "the producer's seed")
	fs.IntVar(&f.consumers, "consumers", chaos.DefaultConsumers, "consumer processes in the group")
	fs.StringVar(&f.groupProtocol, "group-protocol", chaos.DefaultGroupProtocol, "the consumers' --group-protocol; with consumer (KIP-848) a killed member's partitions wait for the broker's session timeout, 45 s by default")
	fs.DurationVar(&f.sessionTimeout, "session-timeout", chaos.DefaultSessionTimeout, "the consumers' --session-timeout")
	fs.DurationVar(&f.drainTimeout, "drain-timeout", chaos.DefaultDrainTimeout, "the consumers' --drain-timeout")
	fs.BoolVar(&f.stableTxnIDs, "stable-transactional-ids", false, "give each consumer slot a --transactional-id its restarts keep, as a StatefulSet would (default: a new one per process)")
	fs.Var(&f.consumerArgs, "consumer-arg", "extra argument for every consumer, after the harness's own (repeatable: --consumer-arg --workers --consumer-arg 16)")
	fs.BoolVar(&f.noSampler, "no-sampler", false, "no sampler process: the consumers run their builtin sampler")
	fs.DurationVar(&f.samplerLatency, "sampler-latency", 50*time.Millisecond, "the offline scorer's latency per answer")
	fs.Var(&f.samplerArgs, "sampler-arg", "extra argument for the sampler, after the harness's own (repeatable)")
	fs.StringVar(&f.killEvery, "kill-every", "8s-15s", "MIN-MAX: wait before each consumer SIGKILL, drawn uniformly (or one duration)")
	fs.IntVar(&f.kills, "kills", 5, "consumer SIGKILLs")
	fs.Float64Var(&f.killSampler, "kill-sampler", 0.2, "probability, at each kill, of SIGKILLing the sampler too")
	fs.DurationVar(&f.restartDelay, "restart-delay", chaos.DefaultRestartDelay, "how long a killed process stays down")
	fs.Int64Var(&f.killSeed, "kill-seed", 0, "seed of the kill schedule (0: from the clock; the report prints it)")
	fs.BoolVar(&f.restartBroker, "restart-broker", false, "restart the broker once with scripts/kafka stop and start (KAFKA_DIR, KAFKA_PORT from the environment)")
	fs.DurationVar(&f.restartBrokerAt, "restart-broker-at", 0, "when to restart the broker, from the producer's start (0: half the production time)")
	fs.StringVar(&f.clickhouse, "clickhouse", "", "ClickHouse DSN passed to the consumers (--clickhouse), which then run the audit sink; the run then also verifies the audit table's chains and reconciles it with the group's commits (give it a database of its own: the whole table is verified)")
	fs.StringVar(&f.auditKeyFile, "audit-key-file", "", "file holding an HMAC key (at least 32 bytes) passed to the consumers (--audit-key-file), which then sign checkpoints; with --clickhouse every signature is checked")
	fs.DurationVar(&f.outage, "clickhouse-outage", 0, "take ClickHouse down this long once with scripts/clickhouse stop and start (needs --clickhouse)")
	fs.DurationVar(&f.outageAt, "clickhouse-outage-at", 0, "when the ClickHouse outage starts, from the producer's start (0: a quarter of the production time)")
	fs.StringVar(&f.scripts, "scripts", "", "the project's scripts directory (empty: scripts/ of the module around the working directory)")
	fs.StringVar(&f.rules, "rules", "", "rules file for the consumers and the verification (empty: the built-in rules)")
	fs.DurationVar(&f.settleTimeout, "settle-timeout", chaos.DefaultSettleTimeout, "how long to wait at the end for the group to commit the end of the event topics")
	fs.DurationVar(&f.verifyTimeout, "verify-timeout", chaos.DefaultVerifyTimeout, "bound of the verification's reading")
	fs.BoolVar(&f.allowDuplicates, "allow-duplicates", false, "do not fail on records decided or dead-lettered more than once (at-least-once pipelines)")
	fs.TextVar(&f.logLevel, "log-level", slog.LevelInfo, "debug, info, warn or error")
	if err := config.Parse(fs, args, stderr); err != nil {
		return f, err
	}
	var err error
	if f.killMin, f.killMax, err = parseSpan(f.killEvery); err != nil {
		return f, fmt.Errorf("--kill-every: %w", err)
	}
	switch {
	case len(f.brokers) == 0:
		return f, errors.New("--brokers is empty")
	case f.outage > 0 && f.clickhouse == "":
		return f, errors.New("--clickhouse-outage needs --clickhouse: without the sink an outage tests nothing")
	}
	return f, nil
}

// parseSpan parses "8s-15s" or "10s".
func parseSpan(s string) (lo, hi time.Duration, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		b = a
	}
	if lo, err = time.ParseDuration(a); err != nil {
		return 0, 0, err
	}
	if hi, err = time.ParseDuration(b); err != nil {
		return 0, 0, err
	}
	if lo < 0 || hi < lo {
		return 0, 0, fmt.Errorf("%q: want 0 <= MIN <= MAX", s)
	}
	return lo, hi, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "chaos:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: f.logLevel}))

	if f.dir == "" {
		if f.dir, err = os.MkdirTemp("", "triage-chaos-"); err != nil {
			log.Error("run directory", "err", err)
			return 2
		}
	}
	fmt.Fprintln(stderr, "chaos: run directory", f.dir)
	scripts, err := scriptsDir(f.scripts)
	if err != nil && (f.restartBroker || f.outage > 0) {
		log.Error("scripts", "err", err)
		return 2
	}
	bins, cleanup, err := binaries(ctx, f.binDir, log)
	if err != nil {
		log.Error("binaries", "err", err)
		return 2
	}
	defer cleanup()
	cfg, err := f.config(bins, scripts, log)
	if err != nil {
		log.Error("bad flags", "err", err)
		return 2
	}

	rep, err := chaos.Run(ctx, cfg)
	if werr := rep.WriteTable(stdout); werr != nil {
		log.Error("write report", "err", werr)
	}
	fmt.Fprintln(stderr, "chaos: process logs in", rep.Dir, "kill seed", rep.Seed)
	if err != nil {
		log.Error("run", "err", err)
		return 1
	}
	if rep.Failed(f.allowDuplicates) {
		v := rep.Verification
		attrs := []any{"lost", v.Lost, "duplicated", v.Duplicated, "outside", v.Outside,
			"audit_missing", v.AuditMissing, "unexpected_exits", rep.UnexpectedExits, "stop_errors", len(rep.StopErrors)}
		if c := rep.ClickHouse; c != nil {
			attrs = append(attrs, "clickhouse_verified", c.Verified, "chain_breaks", c.Table.Breaks,
				"missing_in_clickhouse", c.Reconciled.Missing, "twice_in_clickhouse", c.Reconciled.Twice)
		}
		log.Error("faults found", attrs...)
		return 1
	}
	return 0
}

// config turns the flags into the harness's configuration.
func (f flags) config(bins map[string]string, scripts string, log *slog.Logger) (chaos.Config, error) {
	prefix := f.prefix
	if prefix == "" {
		prefix = fmt.Sprintf("chaos-%d", time.Now().Unix())
	}
	cfg := chaos.Config{
		Consumer: bins["consumer"], Producer: bins["producer"], Sampler: bins["sampler"],
		Brokers: f.brokers, Topics: chaos.NewTopics(prefix), Partitions: int32(f.partitions), Dir: f.dir,
		ClickHouse: f.clickhouse, AuditKeyFile: f.auditKeyFile,
		Events: f.events, Rate: f.rate, Bad: f.bad, ProducerSeed: f.seed,
		Consumers: f.consumers, GroupProtocol: f.groupProtocol, SessionTimeout: f.sessionTimeout, DrainTimeout: f.drainTimeout,
		ConsumerArgs: f.consumerArgs, StableTransactionalIDs: f.stableTxnIDs,
		SamplerLatency: f.samplerLatency, SamplerArgs: f.samplerArgs,
		Kills: f.kills, KillMin: f.killMin, KillMax: f.killMax, SamplerKillChance: f.killSampler,
		RestartDelay: f.restartDelay, Seed: f.killSeed,
		SettleTimeout: f.settleTimeout, VerifyTimeout: f.verifyTimeout,
		Logger: log,
	}
	if f.noSampler {
		cfg.Sampler = ""
	}
	if f.rules != "" {
		set, err := rules.Load(f.rules, rules.WithMaskKey(rules.RandomMaskKey())) // only the outcomes matter here
		if err != nil {
			return cfg, err
		}
		cfg.Rules = set
		cfg.ConsumerArgs = append([]string{"--rules", f.rules}, cfg.ConsumerArgs...)
	}
	// The production time, to place the one-off faults inside it.
	produce := 30 * time.Second
	if f.rate > 0 {
		produce = time.Duration(float64(f.events) / f.rate * float64(time.Second))
	}
	scriptLog := filepath.Join(f.dir, "scripts.log")
	if f.restartBroker {
		at := f.restartBrokerAt
		if at == 0 {
			at = produce / 2
		}
		cfg.Faults = append(cfg.Faults, chaos.Fault{Name: "broker restart", At: at, Inject: func(ctx context.Context) error {
			if err := script(ctx, scripts, scriptLog, "kafka", "stop"); err != nil {
				return err
			}
			return script(ctx, scripts, scriptLog, "kafka", "start")
		}})
	}
	if f.outage > 0 {
		at := f.outageAt
		if at == 0 {
			at = produce / 4
		}
		cfg.Faults = append(cfg.Faults, chaos.Fault{Name: "clickhouse outage", At: at, Inject: func(ctx context.Context) error {
			if err := script(ctx, scripts, scriptLog, "clickhouse", "stop"); err != nil {
				return err
			}
			t := time.NewTimer(f.outage)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
			}
			return script(ctx, scripts, scriptLog, "clickhouse", "start")
		}})
	}
	return cfg, nil
}
