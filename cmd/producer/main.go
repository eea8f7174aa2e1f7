// Command producer is triage's synthetic load generator: it produces
// transactions and documents (see internal/loadgen) to Kafka, reports what
// it sent and, with --measure, reads the decisions and DLQ topics back to
// report end-to-end latency and any event left without a decision.
//
// Without --events or --duration it produces until interrupted. The first
// SIGINT or SIGTERM stops producing (buffered records are still flushed);
// with --measure, measuring then starts and a second signal stops it.
//
// "producer verify" reads the event topics and the decisions, audit and
// DLQ topics of any cluster, say after a fault run, and reports source
// records lost, duplicated, decided outside their type's outcomes or
// missing from the audit (see loadgen.Verify); --help lists its flags.
//
// Progress goes to stderr, the final tables to stdout. The exit status is 1
// when a record failed or, with --measure, an event is missing or ended up
// somewhere its kind says it should not; 2 for bad flags.
//
// Every flag is also a TRIAGE_* environment variable and a key of the YAML
// file given with --config (see --help); flags win over the environment,
// which wins over the file.
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

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/internal/config"
	"github.com/triage-dev/triage/internal/loadgen"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// flags are the producer's flags; parseFlags documents each.
type flags struct {
	brokers                  []string
	events                   int
	duration, grace          time.Duration
	deliveryTimeout          time.Duration
	rate, bad, repeat        float64
	mix, ambiguous           string
	seed                     int64
	measure                  bool
	topicTxns, topicDocs     string
	decisionsTopic, dlqTopic string
}

// parseFlags layers args, TRIAGE_* variables and the --config file as
// config.Parse does; on --help it writes the help to stderr.
func parseFlags(args []string, stderr io.Writer) (flags, error) {
	f := flags{brokers: []string{"127.0.0.1:9092"}}
	fs := flag.NewFlagSet("producer", flag.ContinueOnError)
	fs.Var(config.NewList(&f.brokers), "brokers", "comma-separated seed brokers")
	fs.IntVar(&f.events, "events", 0, "stop after this many events (0: no limit)")
	fs.DurationVar(&f.duration, "duration", 0, "stop after this long (0: no limit)")
	fs.Float64Var(&f.rate, "rate", 0, "events per second (0: as fast as possible)")
	fs.StringVar(&f.mix, "mix", "transaction=0.8,document=0.2", "share of each event type")
	fs.StringVar(&f.ambiguous, "ambiguous", "transaction=0.05,document=0.20",
		"per type, share of valid events the default policy sends to sampling; a bare number applies to all types")
	fs.Float64Var(&f.bad, "bad", 0, "share of malformed records (0..1)")
	fs.Float64Var(&f.repeat, "repeat", 0, "share of ambiguous events that re-send a recent one under a new event_id (a client's retry, a document uploaded again): what the result cache answers (0..1)")
	fs.Int64Var(&f.seed, "seed", 1, "random seed: the same seed produces the same events")
	fs.BoolVar(&f.measure, "measure", false, "read decisions and the DLQ back and report end-to-end latency")
	fs.DurationVar(&f.deliveryTimeout, "delivery-timeout", 30*time.Second, "how long a record may wait for the brokers before it counts as not acknowledged")
	fs.DurationVar(&f.grace, "grace", 30*time.Second, "with --measure, how long to wait without progress before declaring events missing")
	fs.StringVar(&f.topicTxns, "topic-transactions", loadgen.DefaultTransactionsTopic, "topic for transactions")
	fs.StringVar(&f.topicDocs, "topic-documents", loadgen.DefaultDocumentsTopic, "topic for documents")
	fs.StringVar(&f.decisionsTopic, "decisions-topic", loadgen.DefaultDecisionsTopic, "decisions topic read by --measure")
	fs.StringVar(&f.dlqTopic, "dlq-topic", loadgen.DefaultDLQTopic, "dead-letter topic read by --measure")
	if err := config.Parse(fs, args, stderr); err != nil {
		return f, err
	}
	if len(f.brokers) == 0 {
		return f, errors.New("--brokers is empty")
	}
	return f, nil
}

func (f flags) config() (loadgen.Config, error) {
	mix, err := loadgen.ParseShares(f.mix)
	if err != nil {
		return loadgen.Config{}, fmt.Errorf("--mix: %w", err)
	}
	amb, err := loadgen.ParseShares(f.ambiguous)
	if err != nil {
		return loadgen.Config{}, fmt.Errorf("--ambiguous: %w", err)
	}
	return loadgen.Config{
		Seed: f.seed, Mix: mix, Ambiguous: amb, Bad: f.bad, Repeat: f.repeat,
		Topics: map[string]string{loadgen.TypeTransaction: f.topicTxns, loadgen.TypeDocument: f.topicDocs},
	}, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "verify" {
		return runVerify(args[1:], stdout, stderr)
	}
	f, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "producer:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	cfg, err := f.config()
	if err != nil {
		log.Error("bad flags", "err", err)
		return 2
	}
	g, err := loadgen.NewGenerator(cfg)
	if err != nil {
		log.Error("bad flags", "err", err)
		return 2
	}
	// Options apply in order: the flag's timeout replaces the default one.
	cl, err := kgo.NewClient(append(append([]kgo.Opt{kgo.SeedBrokers(f.brokers...)}, loadgen.ProducerClientOpts()...),
		kgo.RecordDeliveryTimeout(f.deliveryTimeout))...)
	if err != nil {
		log.Error("kafka client", "err", err)
		return 2
	}
	defer cl.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("producing", "brokers", f.brokers, "events", f.events, "duration", f.duration, "rate", f.rate,
		"mix", f.mix, "ambiguous", f.ambiguous, "bad", f.bad, "seed", f.seed)
	start := time.Now()
	rep, err := loadgen.Produce(ctx, cl, g, loadgen.ProduceOptions{
		Events: f.events, Duration: f.duration, Rate: f.rate, Track: f.measure,
		Progress: func(p loadgen.Progress) {
			log.Info("progress", "elapsed", p.Elapsed.Round(time.Second), "sent", p.Sent, "acked", p.Acked,
				"errors", p.Errors, "rate", fmt.Sprintf("%.0f/s", p.Rate))
		},
	})
	if err != nil {
		log.Error("produce", "err", err)
		return 2
	}
	stop() // a second signal from here on only interrupts measuring
	code := 0
	fmt.Fprintln(stdout, "produced")
	if err := rep.WriteTable(stdout); err != nil {
		log.Error("write report", "err", err)
		code = 1
	}
	if rep.Errors > 0 || rep.Acked < rep.Sent {
		log.Error("not every record was acknowledged", "sent", rep.Sent, "acked", rep.Acked, "errors", rep.Errors, "first_error", rep.FirstError)
		code = 1
	}
	if f.measure {
		if c := measure(f, rep, start, stdout, log); c != 0 {
			code = c
		}
	}
	return code
}

// measure reads the decisions back for the tracked events.
func measure(f flags, rep loadgen.Report, start time.Time, stdout io.Writer, log *slog.Logger) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := loadgen.MeasureOptions{
		DecisionsTopic: f.decisionsTopic, DLQTopic: f.dlqTopic, Sent: rep.Produced, Grace: f.grace,
		// Earlier runs with the same seed reuse event ids; the second of
		// slack allows for clock skew between this host and the consumer's.
		Since: start.Add(-time.Second),
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(f.brokers...)}, loadgen.MeasureClientOpts(opts)...)...)
	if err != nil {
		log.Error("kafka client", "err", err)
		return 2
	}
	defer cl.Close()
	log.Info("measuring", "events", len(rep.Produced), "decisions_topic", opts.DecisionsTopic, "dlq_topic", opts.DLQTopic, "grace", f.grace)
	m, err := loadgen.Measure(ctx, cl, opts)
	fmt.Fprintln(stdout, "\nmeasured")
	if werr := m.WriteTable(stdout); werr != nil {
		log.Error("write measurement", "err", werr)
		return 1
	}
	switch {
	case err != nil:
		log.Error("measure", "err", err)
		return 1
	case m.Missing > 0:
		log.Error("events without a decision", "missing", m.Missing, "first", m.MissingIDs)
		return 1
	case m.Mismatched > 0:
		log.Error("events routed against their kind", "mismatched", m.Mismatched)
		return 1
	}
	return 0
}
