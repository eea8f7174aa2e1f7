package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/deploy"
	"github.com/triage-dev/triage/internal/config"
)

// The ClickHouse side of the consumer:
//
//	consumer sink --clickhouse DSN --brokers …    the audit sink alone
//	consumer report --clickhouse DSN [--event-id ID [--tenant-id T]] [--spike-threshold N]
//	consumer audit verify --clickhouse DSN [--brokers B [--group G] [--strict]]
//	                                              exit 1 on any chain break or missing offset
//
// and, with --clickhouse on the pipeline itself, the sink in-process.

// catchUpTimeout bounds how long the demo waits for the sink to store what
// the pipeline wrote before it prints the report.
const catchUpTimeout = 2 * time.Minute

// subcommand runs the subcommand args start with; ok is false when they
// start with none (the pipeline itself runs).
func subcommand(ctx context.Context, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	switch args[0] {
	case "sink":
		return runSink(ctx, args[1:], stderr), true
	case "report":
		return runReport(ctx, args[1:], stdout, stderr), true
	case "audit":
		if len(args) < 2 || args[1] != "verify" {
			fmt.Fprintln(stderr, "usage: consumer audit verify --clickhouse DSN [--brokers B [--group G] [--strict]]")
			return 2, true
		}
		return runVerify(ctx, args[2:], stdout, stderr), true
	}
	return 0, false
}

// clickhouseSink is the audit sink with its connection, as the pipeline
// process and `consumer sink` run it. It reaches ClickHouse in the
// background (run), so that the decisions, which do not need ClickHouse,
// go on during an outage; what the pipeline writes meanwhile waits in the
// audit and decisions topics until the sink stores it.
type clickhouseSink struct {
	dsn       string
	opts      audit.SinkOptions
	log       *slog.Logger
	connected prometheus.Gauge

	up   chan struct{} // closed once conn and sink are set
	conn driver.Conn
	sink *audit.Sink

	mu          sync.Mutex
	unreachable error // the last failed attempt's error, until up
}

// newClickHouseSink checks cfg.ClickHouse and registers the sink's metrics;
// run connects and runs it. A DSN that does not parse fails here, at start,
// where an unreachable server is waited for.
func newClickHouseSink(cfg config.Config, brokers []string, log *slog.Logger, reg prometheus.Registerer) (*clickhouseSink, error) {
	if err := audit.CheckDSN(cfg.ClickHouse); err != nil {
		return nil, err
	}
	metrics, err := audit.NewSinkMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	connected := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "triage_sink_connected",
		Help: "1 once the ClickHouse sink has reached ClickHouse and applied the migrations; 0 while it waits for the server.",
	})
	if err := reg.Register(connected); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return &clickhouseSink{
		dsn: cfg.ClickHouse,
		opts: audit.SinkOptions{
			Brokers: brokers, Group: audit.SinkGroup(cfg.Group),
			AuditTopic: cfg.AuditTopic, DecisionsTopic: cfg.DecisionsTopic, DLQTopic: cfg.SinkDLQTopic,
			Logger: log, Metrics: metrics,
			GroupProtocol: cfg.GroupProtocol,
			ClientOpts:    []kgo.Opt{kgo.SessionTimeout(cfg.SessionTimeout)},
		},
		log:       log,
		connected: connected,
		up:        make(chan struct{}),
	}, nil
}

// run connects to ClickHouse, waiting out an unreachable server, applies
// the schema migrations and runs the sink, until ctx ends. Stopping before
// the server was reached is a clean stop: nothing was polled. Any error
// other than unreachability (refused credentials, a rejected migration)
// ends run.
func (c *clickhouseSink) run(ctx context.Context) error {
	conn, res, err := audit.OpenMigrated(ctx, c.dsn, audit.ConnectOptions{Logger: c.log, OnUnreachable: c.setUnreachable})
	if err != nil {
		if errors.Is(err, audit.ErrUnreachable) && ctx.Err() != nil {
			c.log.Info("sink: stopped before ClickHouse could be reached", "err", err)
			return nil
		}
		return fmt.Errorf("sink: %w", err)
	}
	defer conn.Close()
	c.log.Info("clickhouse schema up to date", "server", res.Server.String(), "applied", res.Applied, "waiting_for_newer_server", res.Waiting)
	sink, err := audit.NewSink(conn, c.opts)
	if err != nil {
		return err
	}
	c.conn, c.sink = conn, sink
	close(c.up)
	c.connected.Set(1)
	return sink.Run(ctx)
}

func (c *clickhouseSink) setUnreachable(err error) {
	c.mu.Lock()
	c.unreachable = err
	c.mu.Unlock()
}

// status is "" once the sink is storing, or what it waits for.
func (c *clickhouseSink) status() string {
	select {
	case <-c.up:
		select {
		case <-c.sink.Ready():
			return ""
		default:
			return "starting"
		}
	default:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.unreachable != nil {
		return "waiting for ClickHouse: " + c.unreachable.Error()
	}
	return "connecting to ClickHouse"
}

// waitCaughtUp waits, at most catchUpTimeout, until the sink has reached
// ClickHouse and stored everything written to the audit and decisions
// topics so far.
func (c *clickhouseSink) waitCaughtUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	defer cancel()
	select {
	case <-c.up:
	case <-ctx.Done():
		return fmt.Errorf("the sink never reached ClickHouse (%s; bound %s): %w", c.status(), catchUpTimeout, ctx.Err())
	}
	return c.sink.WaitCaughtUp(ctx)
}

// report prints the dashboards; it waits for nothing, so call it after
// waitCaughtUp.
func (c *clickhouseSink) report(ctx context.Context, w io.Writer) error {
	select {
	case <-c.up:
		return printReport(ctx, c.conn, map[string]string{}, w)
	default:
		return errors.New("the sink has not reached ClickHouse")
	}
}

func runSink(ctx context.Context, args []string, stderr io.Writer) int {
	cfg, err := config.Load("consumer sink", args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil && cfg.ClickHouse == "" {
		err = errors.New("sink: --clickhouse (or TRIAGE_CLICKHOUSE) is required")
	}
	if err == nil && cfg.Embedded {
		err = errors.New("sink: --embedded: the sink reads the topics of a running cluster; give --brokers")
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	log, err := newLogger(cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cs, err := newClickHouseSink(cfg, cfg.Brokers, log, reg)
	if err != nil {
		log.Error("sink stopped", "err", err)
		return 1
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return cs.run(gctx) })
	if cfg.HTTPListen != "" {
		if err := serveHTTP(g, gctx, cfg.HTTPListen, opsHandler(reg, part{name: "sink", status: cs.status, required: true}), log); err != nil {
			log.Error("sink stopped", "err", err)
			return 1
		}
	}
	if err := g.Wait(); err != nil {
		log.Error("sink stopped", "err", err)
		return 1
	}
	return 0
}

// clickhouseFlags parses the flags of report and verify, layered as
// config.Parse does: --clickhouse and whatever more bind adds.
func clickhouseFlags(name string, args []string, stderr io.Writer, bind func(*flag.FlagSet)) (dsn string, code int, ok bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&dsn, "clickhouse", "", "ClickHouse DSN, e.g. clickhouse://127.0.0.1:9000/default")
	if bind != nil {
		bind(fs)
	}
	if err := config.Parse(fs, args, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", 0, false
		}
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return "", 2, false
	}
	if dsn == "" {
		fmt.Fprintf(stderr, "%s: --clickhouse (or TRIAGE_CLICKHOUSE) is required\n", name)
		return "", 2, false
	}
	return dsn, 0, true
}

func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var eventID, tenantID, threshold, window string
	dsn, code, ok := clickhouseFlags("consumer report", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&eventID, "event-id", "", "event whose audit trail to print (default: the latest that reached the LLM)")
		fs.StringVar(&tenantID, "tenant-id", "", "the --event-id's tenant: an event is (tenant_id, event_id); empty shows every tenant's event of that id")
		fs.StringVar(&threshold, "spike-threshold", "", "sampling requests per hour and tenant above which an hour is a spike (default: the query's, 1000)")
		fs.StringVar(&window, "window-hours", "", "how many hours back the dashboards look (default: each query's own)")
	})
	if !ok {
		return code
	}
	values := map[string]string{}
	if threshold != "" {
		values["threshold"] = threshold
	}
	if window != "" {
		values["window_hours"] = window
	}
	if eventID != "" {
		values["event_id"] = eventID
		values["tenant_id"] = tenantID
	} else if tenantID != "" {
		fmt.Fprintln(stderr, "consumer report: --tenant-id needs --event-id")
		return 2
	}
	conn, err := audit.Open(ctx, dsn)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer conn.Close()
	if err := printReport(ctx, conn, values, stdout); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// printReport prints every dashboard query as a table. Without an event_id
// the trail shown is of an example event.
func printReport(ctx context.Context, conn driver.Conn, values map[string]string, w io.Writer) error {
	queries, err := audit.LoadQueries(deploy.Queries, deploy.QueriesDir)
	if err != nil {
		return err
	}
	if _, ok := values["event_id"]; !ok {
		tenant, id, err := audit.ExampleEvent(ctx, conn)
		if err != nil {
			return err
		}
		if id != "" {
			values["tenant_id"], values["event_id"] = tenant, id
		}
	}
	return audit.Report(ctx, conn, queries, values, w)
}

// runVerify recomputes the audit chains and, with --brokers, reconciles
// them against the group's committed offsets. It exits 1 on any chain
// break or missing offset, and on offsets decided twice only with
// --strict: until the pipeline writes in Kafka transactions, an event
// reprocessed after a crash is decided twice without anything being wrong.
func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var (
		brokers       []string
		group         string
		samplingGroup string
		strict        bool
		keyFile       string
	)
	dsn, code, ok := clickhouseFlags("consumer audit verify", args, stderr, func(fs *flag.FlagSet) {
		fs.Var(config.NewList(&brokers), "brokers", "Kafka seed brokers, comma-separated: reconcile every source partition with the group's committed offset (default: no reconciliation, so deleted segments and cut tails go unseen)")
		fs.StringVar(&group, "group", "triage", "consumer group of the pipeline whose committed offsets anchor the reconciliation")
		fs.StringVar(&samplingGroup, "sampling-group", "", "consumer group of the sampling stage, whose commits anchor the sampling topic's chains (empty: --group + \".sampling\")")
		fs.StringVar(&keyFile, "audit-key-file", "", "file holding the consumers' --audit-key-file key: check every checkpoint's signature (empty: checkpoints are checked as rows, and a rewritten chain would verify)")
		fs.BoolVar(&strict, "strict", false, "exit 1 on offsets decided twice too (right with the default exactly-once delivery; with --delivery at-least-once a crash makes them legitimately)")
	})
	if !ok {
		return code
	}
	signer, err := auditSigner(keyFile)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	conn, err := audit.Open(ctx, dsn)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer conn.Close()
	st, err := audit.VerifyTable(ctx, conn, signer, func(b audit.Break) {
		fmt.Fprintf(stdout, "BREAK chain=%s segment=%s seq=%d audit_id=%s problem=%q\n", b.Chain, b.Segment, b.Seq, b.AuditID, b.Problem)
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "verified %d rows in %d chains, %d segments: %s\n", st.Rows, st.Chains, st.Segments, plural(st.Breaks, "break"))
	if signer == nil {
		fmt.Fprintln(stdout, "checkpoint signatures not checked (no --audit-key-file): a chain rewritten from an edited row on would verify")
	} else {
		fmt.Fprintf(stdout, "checkpoint signatures checked with key %s\n", signer.ID())
	}
	failed := st.Breaks > 0
	if len(brokers) == 0 {
		fmt.Fprintln(stdout, "reconciliation not done (no --brokers): a deleted segment or a cut tail would not show")
	} else {
		if samplingGroup == "" {
			samplingGroup = group + ".sampling"
		}
		rs, err := reconcile(ctx, conn, brokers, []string{group, samplingGroup}, stdout)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		failed = failed || rs.Missing > 0 || strict && rs.Twice > 0
	}
	if failed {
		return 1
	}
	return 0
}

// auditSigner is the checkpoint signer of the key in file, or nil when
// file is empty.
func auditSigner(file string) (*audit.Signer, error) {
	key, err := config.ReadKeyFile("audit-key-file", file)
	if err != nil || key == nil {
		return nil, err
	}
	return audit.NewSigner(key)
}

// reconcile prints what audit.Reconcile finds against the groups'
// committed offsets.
func reconcile(ctx context.Context, conn driver.Conn, brokers []string, groups []string, stdout io.Writer) (audit.ReconcileStats, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return audit.ReconcileStats{}, fmt.Errorf("reconcile: kafka client: %w", err)
	}
	defer cl.Close()
	anchors, err := audit.FetchAnchors(ctx, kadm.NewClient(cl), groups...)
	if err != nil {
		return audit.ReconcileStats{}, err
	}
	audit.RecordOffsets(anchors, kgo.SeedBrokers(brokers...))
	st, err := audit.Reconcile(ctx, conn, anchors, func(d audit.Discrepancy) {
		label := "MISSING"
		if d.Problem == audit.ProblemTwice {
			label = "TWICE"
		}
		fmt.Fprintf(stdout, "%s %s\n", label, d)
	})
	if err != nil {
		return st, err
	}
	for _, c := range st.Unanchored {
		fmt.Fprintf(stdout, "NOT RECONCILED %s: no committed offset for it in group %s\n", c, strings.Join(groups, " or "))
	}
	fmt.Fprintf(stdout, "reconciled %d source partitions against the committed offsets of group %s: %d offsets, %d without a terminal audit record, %d decided twice\n",
		st.Partitions, strings.Join(groups, " and "), st.Offsets, st.Missing, st.Twice)
	return st, nil
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
