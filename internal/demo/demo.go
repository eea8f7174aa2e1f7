// Package demo runs the one-command demonstration: once the pipeline is
// ready it feeds the load generator's synthetic events into it, waits until
// every event has a decision or a DLQ record (and, with an audit sink, until
// the sink has stored them), reports what happened, and says whether every
// event was accounted for. cmd/consumer builds the parts and runs Run beside
// the pipeline.
package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/internal/loadgen"
)

// Options configure Run. Zero values of the generator's fields mean the
// load generator's defaults.
type Options struct {
	Brokers []string
	// Events is how many events to produce.
	Events int
	Seed   int64
	// Rate in events/s; 0 produces as fast as the broker acknowledges.
	Rate float64
	// Mix and Ambiguous are share lists as loadgen.ParseShares reads them.
	Mix, Ambiguous string
	// Bad is the share of malformed records.
	Bad float64
	// Repeat is the share of ambiguous events that re-send a recent one
	// (loadgen.Config.Repeat).
	Repeat float64
	// Grace is how long to wait without progress before giving up on
	// events that have no outcome yet. Default 60 s.
	Grace time.Duration
	// Logger receives the run's log lines. Nil: none are logged.
	Logger *slog.Logger
	// Progress, when set, receives a line a second while the run goes:
	// events produced, decided (or dead-lettered) and in flight.
	Progress io.Writer

	// Ready is closed once the pipeline consumes; Run produces nothing
	// before. Nil: the pipeline is ready.
	Ready <-chan struct{}
	// CatchUp, when set, waits until the audit sink has stored everything
	// the pipeline wrote; Run reports only after it returns nil.
	CatchUp func(context.Context) error
	// AuditTopic is the topic the pipeline writes audit records to; Run
	// reads this run's back to check them. Default "audit".
	AuditTopic string
	// Sampler names what decides ambiguous events, for the report.
	Sampler string
	// Out receives the report as a table. Nil: the table is not written.
	Out io.Writer
	// SummaryJSON, when set, is the file Run writes the report to as JSON.
	SummaryJSON string
	// Dashboards, when set, writes more to Out after the table: the
	// consumer passes the ClickHouse dashboard report.
	Dashboards func(ctx context.Context, w io.Writer) error
}

// feed produces the events and waits until the summary accounts for each
// of them (or Grace passes without progress).
func feed(ctx context.Context, o Options, s *Summary) error {
	gcfg := loadgen.Config{Seed: o.Seed, Bad: o.Bad, Repeat: o.Repeat}
	var err error
	if o.Mix != "" {
		if gcfg.Mix, err = loadgen.ParseShares(o.Mix); err != nil {
			return fmt.Errorf("demo: mix: %w", err)
		}
	}
	if o.Ambiguous != "" {
		if gcfg.Ambiguous, err = loadgen.ParseShares(o.Ambiguous); err != nil {
			return fmt.Errorf("demo: ambiguous: %w", err)
		}
	}
	gen, err := loadgen.NewGenerator(gcfg)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if o.Grace <= 0 {
		o.Grace = 60 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	cl, err := kgo.NewClient(append(loadgen.ProducerClientOpts(), kgo.SeedBrokers(o.Brokers...))...)
	if err != nil {
		return fmt.Errorf("demo: kafka client: %w", err)
	}
	defer cl.Close()

	s.Restart()
	var produced atomic.Int64
	line := progressLine(o.Progress, o.Events, s)
	// Track: the check matches each acknowledged event with its result.
	rep, err := loadgen.Produce(ctx, cl, gen, loadgen.ProduceOptions{
		Events: o.Events,
		Rate:   o.Rate,
		Track:  true,
		// Called about once a second with the producer's own count: the
		// line shows the count and the decisions at the same moment.
		Progress: func(p loadgen.Progress) {
			line(int64(p.Acked))
			o.Logger.Debug("demo: producing", "sent", p.Sent, "acked", p.Acked)
		},
	})
	produced.Store(int64(len(rep.Produced)))
	s.SetProduced(rep.Produced)
	if err != nil {
		return fmt.Errorf("demo: produce: %w", err)
	}
	o.Logger.Info("demo: produced", "events", len(rep.Produced), "rate", fmt.Sprintf("%.0f/s", rep.Rate))
	stop := every(time.Second, func() { line(produced.Load()) })
	defer stop()
	return await(ctx, s, len(rep.Produced), o.Grace)
}

// progressLine returns a function that writes one progress line to w
// (nothing when w is nil): the events produced so far of total, those with
// a decision or a dead letter, and the difference, in flight.
func progressLine(w io.Writer, total int, s *Summary) func(produced int64) {
	return func(produced int64) {
		if w == nil {
			return
		}
		decided, _ := s.Done()
		fmt.Fprintf(w, "demo: %d of %d events produced, %d decided or dead-lettered, %d in flight\n",
			produced, total, decided, max(0, produced-int64(decided)))
	}
}

// every calls f every d until stop is called.
func every(d time.Duration, f func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(d)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				f()
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// await waits until n events are accounted for. It gives up only when no
// record completes for a whole grace period, so slow machines are not
// mistaken for lost events.
func await(ctx context.Context, s *Summary, n int, grace time.Duration) error {
	timer := time.NewTimer(grace)
	defer timer.Stop()
	for {
		done, changed := s.Done()
		if done >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil // interrupted: the summary shows what was done
		case <-changed:
			timer.Reset(grace)
		case <-timer.C:
			return fmt.Errorf("demo: %d of %d events have no decision or DLQ record after %s without progress", n-done, n, grace)
		}
	}
}
