package audit

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

type topicPartition struct {
	topic     string
	partition int32
}

func partitionOf(r *kgo.Record) topicPartition { return topicPartition{r.Topic, r.Partition} }

// batch is what the sink has polled and not yet committed.
type batch struct {
	rows rows
	// auditFrom and decisionsFrom are the source partitions of rows.audit
	// and rows.decisions, index for index.
	auditFrom, decisionsFrom []topicPartition
	// offsets are the next offsets to commit, per partition.
	offsets                  map[string]map[int32]kgo.EpochOffset
	records                  int       // polled records, bad ones included
	first                    time.Time // when the oldest record was added
	auditDone, decisionsDone bool      // inserted in this batch's attempts
}

func (b *batch) reset() {
	*b = batch{offsets: map[string]map[int32]kgo.EpochOffset{}}
}

func (b *batch) advance(r *kgo.Record) {
	parts := b.offsets[r.Topic]
	if parts == nil {
		parts = map[int32]kgo.EpochOffset{}
		b.offsets[r.Topic] = parts
	}
	parts[r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
}

// drop removes the rows and offsets of the given partitions.
func (b *batch) drop(parts map[string][]int32) {
	gone := map[topicPartition]bool{}
	for t, ps := range parts {
		for _, p := range ps {
			gone[topicPartition{t, p}] = true
			delete(b.offsets[t], p)
		}
		if len(b.offsets[t]) == 0 {
			delete(b.offsets, t)
		}
	}
	if len(gone) == 0 {
		return
	}
	audit, auditFrom := b.rows.audit[:0], b.auditFrom[:0]
	for i, tp := range b.auditFrom {
		if !gone[tp] {
			audit, auditFrom = append(audit, b.rows.audit[i]), append(auditFrom, tp)
		}
	}
	decisions, decisionsFrom := b.rows.decisions[:0], b.decisionsFrom[:0]
	for i, tp := range b.decisionsFrom {
		if !gone[tp] {
			decisions, decisionsFrom = append(decisions, b.rows.decisions[i]), append(decisionsFrom, tp)
		}
	}
	b.rows.audit, b.auditFrom = audit, auditFrom
	b.rows.decisions, b.decisionsFrom = decisions, decisionsFrom
	if len(b.offsets) == 0 {
		b.reset()
		return
	}
	// The count drives batching only: skipped records of the partitions
	// left are no longer counted, but their offsets still commit.
	b.records = max(b.rows.len(), 1)
}
