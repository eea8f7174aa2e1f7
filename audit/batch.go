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

// deadLetter is the dead letter of a polled record that cannot be stored.
type deadLetter struct {
	rec    *kgo.Record // to the DLQ topic
	reason string
}

// batch is what the sink has polled and not yet committed.
type batch struct {
	rows rows
	// auditFrom and decisionsFrom are the source partitions of rows.audit
	// and rows.decisions, index for index.
	auditFrom, decisionsFrom []topicPartition
	// dead are the dead letters not yet acknowledged by the broker, and
	// deadFrom their source partitions, index for index.
	dead     []deadLetter
	deadFrom []topicPartition
	// offsets are the next offsets to commit, per partition.
	offsets                  map[string]map[int32]kgo.EpochOffset
	records                  int       // polled records, bad ones included
	first                    time.Time // when the oldest record was added
	auditDone, decisionsDone bool      // inserted in this batch's attempts
}

func newBatch() *batch {
	b := &batch{}
	b.reset()
	return b
}

// reset empties b for the next records. Its slices keep their arrays: the
// next batch decodes into the same slots instead of growing new ones. The
// offsets map is new: the commit that used the old one may keep it.
func (b *batch) reset() {
	clear(b.rows.audit) // the decoded strings go
	clear(b.rows.decisions)
	clear(b.dead)
	*b = batch{
		rows:          rows{audit: b.rows.audit[:0], decisions: b.rows.decisions[:0]},
		auditFrom:     b.auditFrom[:0],
		decisionsFrom: b.decisionsFrom[:0],
		dead:          b.dead[:0],
		deadFrom:      b.deadFrom[:0],
		offsets:       map[string]map[int32]kgo.EpochOffset{},
	}
}

func (b *batch) advance(r *kgo.Record) {
	parts := b.offsets[r.Topic]
	if parts == nil {
		parts = map[int32]kgo.EpochOffset{}
		b.offsets[r.Topic] = parts
	}
	parts[r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
}

// drop removes the rows, dead letters and offsets of the given partitions.
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
	b.rows.audit, b.auditFrom = keep(b.rows.audit, b.auditFrom, func(i int) bool { return !gone[b.auditFrom[i]] })
	b.rows.decisions, b.decisionsFrom = keep(b.rows.decisions, b.decisionsFrom, func(i int) bool { return !gone[b.decisionsFrom[i]] })
	b.dead, b.deadFrom = keep(b.dead, b.deadFrom, func(i int) bool { return !gone[b.deadFrom[i]] })
	if len(b.offsets) == 0 {
		b.reset()
		return
	}
	// The count drives batching only: records of the partitions left that
	// need no row are no longer counted, but their offsets still commit.
	b.records = max(b.rows.len()+len(b.dead), 1)
}

// keep filters items, whose source partitions are from (index for index),
// to those whose index ok accepts, in place.
func keep[T any](items []T, from []topicPartition, ok func(i int) bool) ([]T, []topicPartition) {
	kept, keptFrom := items[:0], from[:0]
	for i := range items {
		if ok(i) {
			kept, keptFrom = append(kept, items[i]), append(keptFrom, from[i])
		}
	}
	clear(items[len(kept):]) // what was dropped is not kept alive
	return kept, keptFrom
}
