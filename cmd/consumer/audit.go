package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/deploy"
	"github.com/triage-dev/triage/internal/config"
)

// The ClickHouse side of the consumer:
//
//	consumer sink --clickhouse DSN --brokers …    the audit sink alone
//	consumer report --clickhouse DSN [--event-id ID] [--spike-threshold N]
//	consumer audit verify --clickhouse DSN        exit 1 on any chain break
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
			fmt.Fprintln(stderr, "usage: consumer audit verify --clickhouse DSN")
			return 2, true
		}
		return runVerify(ctx, args[2:], stdout, stderr), true
	}
	return 0, false
}

// clickhouseSink is the audit sink with its connection, as the pipeline
// process and `consumer sink` run it.
type clickhouseSink struct {
	conn driver.Conn
	sink *audit.Sink
}

// startClickHouse connects to cfg.ClickHouse, applies the schema
// migrations and creates the sink; Run starts it.
func startClickHouse(ctx context.Context, cfg config.Config, brokers []string, log *slog.Logger, reg prometheus.Registerer) (*clickhouseSink, error) {
	conn, err := openMigrated(ctx, cfg.ClickHouse, log)
	if err != nil {
		return nil, err
	}
	metrics, err := audit.NewSinkMetrics(reg)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("metrics: %w", err)
	}
	sink, err := audit.NewSink(conn, audit.SinkOptions{
		Brokers: brokers, Group: cfg.Group + "-clickhouse",
		AuditTopic: cfg.AuditTopic, DecisionsTopic: cfg.DecisionsTopic, DLQTopic: cfg.SinkDLQTopic,
		Logger: log, Metrics: metrics,
		ClientOpts: []kgo.Opt{kgo.SessionTimeout(cfg.SessionTimeout)},
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &clickhouseSink{conn: conn, sink: sink}, nil
}

func (c *clickhouseSink) close() { c.conn.Close() }

// waitCaughtUp waits until everything written to the audit and decisions
// topics so far is stored.
func (c *clickhouseSink) waitCaughtUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	defer cancel()
	return c.sink.WaitCaughtUp(ctx)
}

// openMigrated creates the DSN's database if need be, connects and applies
// the schema migrations.
func openMigrated(ctx context.Context, dsn string, log *slog.Logger) (driver.Conn, error) {
	if err := audit.CreateDatabase(ctx, dsn); err != nil {
		return nil, err
	}
	conn, err := audit.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	res, err := audit.Migrate(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	log.Info("clickhouse schema up to date", "server", res.Server.String(), "applied", res.Applied, "waiting_for_newer_server", res.Waiting)
	return conn, nil
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
	cs, err := startClickHouse(ctx, cfg, cfg.Brokers, log, reg)
	if err != nil {
		log.Error("sink stopped", "err", err)
		return 1
	}
	defer cs.close()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return cs.sink.Run(gctx) })
	if cfg.HTTPListen != "" {
		if err := serveHTTP(g, gctx, cfg.HTTPListen, opsHandler(reg, cs.sink.Ready()), log); err != nil {
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
	var eventID, threshold, window string
	dsn, code, ok := clickhouseFlags("consumer report", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&eventID, "event-id", "", "event whose audit trail to print (default: the latest that reached the LLM)")
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
		id, err := audit.ExampleEventID(ctx, conn)
		if err != nil {
			return err
		}
		if id != "" {
			values["event_id"] = id
		}
	}
	return audit.Report(ctx, conn, queries, values, w)
}

// runVerify recomputes the audit chains; it exits 1 on any break.
func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	dsn, code, ok := clickhouseFlags("consumer audit verify", args, stderr, nil)
	if !ok {
		return code
	}
	conn, err := audit.Open(ctx, dsn)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer conn.Close()
	st, err := audit.VerifyTable(ctx, conn, func(b audit.Break) {
		fmt.Fprintf(stdout, "BREAK chain=%s segment=%s seq=%d audit_id=%s problem=%q\n", b.Chain, b.Segment, b.Seq, b.AuditID, b.Problem)
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "verified %d rows in %d chains, %d segments: %s\n", st.Rows, st.Chains, st.Segments, plural(st.Breaks, "break"))
	if st.Breaks > 0 {
		return 1
	}
	return 0
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
