package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// settleInterval is how often settle compares the group's commits with the
// end offsets: the broker offers nothing to block on.
const settleInterval = 250 * time.Millisecond

// settle waits, up to cfg.SettleTimeout, until the group has committed the
// end offset of every partition of the event topics. It returns
// ErrNotSettled (wrapped with the last counts) on timeout.
func settle(ctx context.Context, cfg Config, log *slog.Logger) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		return fmt.Errorf("chaos: settle: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, cfg.SettleTimeout)
	defer cancel()
	tick := time.NewTicker(settleInterval)
	defer tick.Stop()
	var committed, end int64
	var lastErr error
	for {
		committed, end, lastErr = committedAndEnd(ctx, adm, cfg.Topics.Group, cfg.Topics.sources()...)
		if lastErr == nil && end > 0 && committed == end {
			log.Info("chaos: the group committed the end of the event topics", "records", end)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w within %s: committed %d of %d (last error: %v)", ErrNotSettled, cfg.SettleTimeout, committed, end, lastErr)
		case <-tick.C:
		}
	}
}

// committedAndEnd returns the group's committed offsets and the topics' end
// offsets, each summed over partitions (as kafkatest.CommittedAndEnd, which
// only tests may import).
func committedAndEnd(ctx context.Context, adm *kadm.Client, group string, topics ...string) (committed, end int64, err error) {
	offs, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		return 0, 0, err
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, 0, err
	}
	ends.Each(func(o kadm.ListedOffset) {
		end += o.Offset
		if c, ok := offs.Lookup(o.Topic, o.Partition); ok {
			committed += c.At
		}
	})
	return committed, end, nil
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
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		return fmt.Errorf("chaos: stable: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, cfg.SettleTimeout)
	defer cancel()
	outputs := []string{cfg.Topics.Decisions, cfg.Topics.Audit, cfg.Topics.DLQ}
	tick := time.NewTicker(settleInterval)
	defer tick.Stop()
	start := time.Now()
	var open int
	var lastErr error
	for {
		open, lastErr = openPartitions(ctx, adm, outputs)
		if lastErr == nil && open == 0 {
			log.Info("chaos: no open transaction on the outputs", "waited", time.Since(start).Round(time.Millisecond))
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("chaos: %d output partitions still had an open transaction after %s (last error: %v)", open, cfg.SettleTimeout, lastErr)
		case <-tick.C:
		}
	}
}

// openPartitions counts the partitions of topics whose last stable offset
// is below their end offset.
func openPartitions(ctx context.Context, adm *kadm.Client, topics []string) (int, error) {
	lso, err := adm.ListCommittedOffsets(ctx, topics...)
	if err == nil {
		err = lso.Error()
	}
	if err != nil {
		return 0, err
	}
	end, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = end.Error()
	}
	if err != nil {
		return 0, err
	}
	open := 0
	end.Each(func(e kadm.ListedOffset) {
		if s, ok := lso.Lookup(e.Topic, e.Partition); !ok || s.Offset < e.Offset {
			open++
		}
	})
	return open, nil
}
