package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/audit"
)

// commitTimeout bounds one synchronous commit during a revoke or shutdown.
const commitTimeout = 10 * time.Second

// markCommits hands the completed watermarks to franz-go, whose autocommit
// (AutoCommitMarks) commits them in the background.
func (p *Pipeline) markCommits() {
	marks := p.offsets.Marks()
	if len(marks) == 0 {
		return
	}
	m := make(map[string]map[int32]kgo.EpochOffset, 2)
	for tp, mk := range marks {
		if m[tp.Topic] == nil {
			m[tp.Topic] = make(map[int32]kgo.EpochOffset)
		}
		m[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: mk.Epoch, Offset: mk.Offset}
	}
	p.client().MarkCommitOffsets(m)
}

// markPartition hands one partition's watermark to franz-go: the per-record
// path, which need not rebuild every partition's marks.
func (p *Pipeline) markPartition(tp TopicPartition) {
	if mk, ok := p.offsets.Mark(tp); ok {
		p.client().MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{
			tp.Topic: {tp.Partition: {Epoch: mk.Epoch, Offset: mk.Offset}},
		})
	}
}

// commit synchronously commits every completed watermark (at-least-once;
// exactly-once commits by ending its transaction, see commitTxn).
func (p *Pipeline) commit(ctx context.Context) error {
	p.markCommits()
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	if err := p.client().CommitMarkedOffsets(ctx); err != nil {
		return fmt.Errorf("pipeline: commit offsets: %w", err)
	}
	return nil
}

// leave leaves the consumer group so that partitions move to the remaining
// members at once rather than after a session timeout.
func (p *Pipeline) leave(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	if err := p.client().LeaveGroupContext(ctx); err != nil {
		p.log.Warn("leave group", "err", err)
	}
}

// onRevoked runs inside franz-go's group management when partitions move to
// another member: it waits (bounded) for this member's in-flight events of
// those partitions, commits what is done and forgets them. Setting our own
// callback turns off franz-go's commit-on-revoke, so committing here is
// what keeps a rebalance from replaying finished work.
//
// With exactly-once, the open transaction is doomed instead (the
// transactional session aborts a transaction a revoke overlapped, and so
// does commitTxn): the revoked partitions are dropped at once, so that
// nothing more is emitted for them, and their in-flight events are left to
// the next owner.
func (p *Pipeline) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	tps := flatten(revoked)
	if p.txn != nil {
		if len(tps) > 0 && p.txn.revoke() {
			p.forget(tps)
			p.log.Info("partitions revoked; the open transaction aborts and their events go to the next owner", "partitions", revoked)
		}
		return
	}
	p.cfg.Metrics.pausedDelta(-p.stalled.drop(tps))
	p.client().ResumeFetchPartitions(revoked) // a pause outlives the assignment
	waitCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.RevokeTimeout)
	defer cancel()
	if err := p.offsets.Wait(waitCtx, tps); err != nil {
		p.log.Warn("revoke: in-flight events not finished in time; the next owner processes them again",
			"in_flight", p.offsets.InFlight(tps))
	}
	if err := p.commit(context.WithoutCancel(ctx)); err != nil {
		p.log.Warn("revoke: commit", "err", err)
	}
	p.offsets.Drop(tps)
	p.chains.Reset(chainNames(tps))
	p.cfg.Metrics.setLag(p.lag.drop(tps))
	if len(tps) > 0 {
		p.log.Info("partitions revoked", "partitions", revoked)
	}
}

// onLost forgets partitions that were taken away without a chance to commit
// (session expired, fenced): their uncommitted work is redone by the new
// owner.
func (p *Pipeline) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	if p.txn != nil {
		p.txn.revoke()
	}
	p.forget(flatten(lost))
	p.log.Warn("partitions lost", "partitions", lost)
}

// forget drops the bookkeeping, stalls and chains of partitions this
// member no longer owns: tickets still out for them are no longer live,
// so their events emit nothing here.
func (p *Pipeline) forget(tps []TopicPartition) {
	p.cfg.Metrics.pausedDelta(-p.stalled.drop(tps))
	p.client().ResumeFetchPartitions(byTopic(tps))
	p.offsets.Drop(tps)
	p.chains.Reset(chainNames(tps))
	p.cfg.Metrics.setLag(p.lag.drop(tps))
}

func byTopic(tps []TopicPartition) map[string][]int32 {
	m := map[string][]int32{}
	for _, tp := range tps {
		m[tp.Topic] = append(m[tp.Topic], tp.Partition)
	}
	return m
}

func flatten(m map[string][]int32) []TopicPartition {
	tps := []TopicPartition{}
	for t, ps := range m {
		for _, part := range ps {
			tps = append(tps, TopicPartition{t, part})
		}
	}
	return tps
}

func chainNames(tps []TopicPartition) []string {
	names := make([]string, len(tps))
	for i, tp := range tps {
		names[i] = audit.ChainName(tp.Topic, tp.Partition)
	}
	return names
}

// fail records the first fatal error and stops the pipeline.
func (p *Pipeline) fail(err error) {
	p.failOnce.Do(func() {
		p.log.Error("pipeline failed", "err", err)
		p.failErr = err
		close(p.failed)
	})
}
