package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/internal/kafka"
	"github.com/triage-dev/triage/internal/loadgen"
)

// settleInterval is how often the waits of the run's end poll the broker:
// it offers nothing to block on.
const settleInterval = 250 * time.Millisecond

// errTimedOut ends a wait that cfg.SettleTimeout cut short.
var errTimedOut = errors.New("timed out")

// waitFor calls done with an admin client of cfg's brokers every
// settleInterval until it returns true, or up to cfg.SettleTimeout, after
// which it returns errTimedOut (wrapped with done's last error).
func waitFor(ctx context.Context, cfg Config, done func(context.Context, *kadm.Client) (bool, error)) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	wctx, cancel := context.WithTimeout(ctx, cfg.SettleTimeout)
	defer cancel()
	tick := time.NewTicker(settleInterval)
	defer tick.Stop()
	for {
		ok, err := done(wctx, adm)
		if err == nil && ok {
			return nil
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted: %w", ctx.Err())
			}
			return fmt.Errorf("%w after %s (last error: %v)", errTimedOut, cfg.SettleTimeout, err)
		case <-tick.C:
		}
	}
}

// atEnd waits, up to cfg.SettleTimeout, until group has committed the end
// offset of every partition of topics, and returns the sum of those
// offsets. On timeout its error says, wrapping errTimedOut, how far the
// group got.
func atEnd(ctx context.Context, cfg Config, group string, topics ...string) (end int64, err error) {
	var committed int64
	err = waitFor(ctx, cfg, func(ctx context.Context, adm *kadm.Client) (bool, error) {
		var err error
		committed, end, err = kafka.CommittedAndEnd(ctx, adm, group, topics...)
		return end > 0 && committed == end, err
	})
	if errors.Is(err, errTimedOut) {
		err = fmt.Errorf("committed %d of %d: %w", committed, end, err)
	}
	return end, err
}

// settle waits, up to cfg.SettleTimeout, until the group has committed the
// end offset of every partition of the event topics, and then until the
// sampling stage has decided every event handed off to it. It returns
// ErrNotSettled (wrapped with the last counts) on timeout.
func settle(ctx context.Context, cfg Config, log *slog.Logger) error {
	records, err := atEnd(ctx, cfg, cfg.Topics.Group, cfg.Topics.sources()...)
	if errors.Is(err, errTimedOut) {
		return fmt.Errorf("%w: %w", ErrNotSettled, err)
	}
	if err != nil {
		return fmt.Errorf("chaos: settle: %w", err)
	}
	log.Info("chaos: the group committed the end of the event topics", "records", records)
	// The sampling stage decides what the rule stage handed off: wait
	// until every event has its decision or dead letter. (The sampling
	// group's committed offsets would say so sooner, but kfake's answer
	// to an offset fetch for a group whose members were killed can hang.)
	lost := -1
	err = waitFor(ctx, cfg, func(ctx context.Context, _ *kadm.Client) (bool, error) {
		v, err := loadgen.Verify(ctx, []kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, loadgen.VerifyOptions{
			SourceTopics:   cfg.Topics.sources(),
			DecisionsTopic: cfg.Topics.Decisions, AuditTopic: cfg.Topics.Audit, DLQTopic: cfg.Topics.DLQ,
			Rules: cfg.Rules,
		})
		lost = v.Lost
		return err == nil && v.Lost == 0, err
	})
	if errors.Is(err, errTimedOut) {
		return fmt.Errorf("%w: the sampling stage left %d events undecided: %w", ErrNotSettled, lost, err)
	}
	if err != nil {
		return fmt.Errorf("chaos: settle: %w", err)
	}
	log.Info("chaos: the sampling stage decided every handed-off event")
	return nil
}

// inject waits until f.At, counted from now, then runs f.Inject.
func inject(ctx context.Context, f Fault, log *slog.Logger) FaultResult {
	res := FaultResult{Name: f.Name}
	t := time.NewTimer(f.At)
	select {
	case <-ctx.Done():
		t.Stop()
		return res
	case <-t.C:
	}
	log.Info("chaos: fault starts", "fault", f.Name)
	start := time.Now()
	res.Injected = true
	res.Err = f.Inject(ctx)
	res.Took = time.Since(start)
	if res.Err != nil {
		log.Error("chaos: fault failed", "fault", f.Name, "took", res.Took, "err", res.Err)
	} else {
		log.Info("chaos: fault over", "fault", f.Name, "took", res.Took)
	}
	return res
}

// stable waits, up to cfg.SettleTimeout, until no output partition has an
// open transaction: its last stable offset, up to which Verify reads
// read_committed, is its end offset. A SIGKILLed consumer's open
// transaction holds it back until a successor with the same transactional
// ID aborts it or the broker's transaction timeout does; outputs after it
// would otherwise count as lost.
func stable(ctx context.Context, cfg Config, log *slog.Logger) error {
	outputs := []string{cfg.Topics.Decisions, cfg.Topics.Audit, cfg.Topics.DLQ}
	start := time.Now()
	var open int
	err := waitFor(ctx, cfg, func(ctx context.Context, adm *kadm.Client) (bool, error) {
		var err error
		_, open, err = kafka.LastStable(ctx, adm, nil, outputs...)
		return open == 0, err
	})
	if errors.Is(err, errTimedOut) {
		return fmt.Errorf("chaos: %d output partitions still had an open transaction: %w", open, err)
	}
	if err != nil {
		return fmt.Errorf("chaos: stable: %w", err)
	}
	log.Info("chaos: no open transaction on the outputs", "waited", time.Since(start).Round(time.Millisecond))
	return nil
}
