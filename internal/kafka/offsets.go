package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kadm"
)

// CommittedAndEnd returns the group's committed offsets and the topics' end
// offsets, each summed over partitions: equal once the group has consumed
// and committed everything written.
func CommittedAndEnd(ctx context.Context, adm *kadm.Client, group string, topics ...string) (committed, end int64, err error) {
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

// LastStable lists the last stable offsets of topics (up to which
// read_committed readers read) and counts the partitions whose last stable
// offset is still below their offset in high, or below their end offset
// when high is nil: those with a transaction open at high that has not
// ended. A member killed mid-transaction holds its partitions back until
// the broker aborts its transaction.
func LastStable(ctx context.Context, adm *kadm.Client, high kadm.ListedOffsets, topics ...string) (lso kadm.ListedOffsets, open int, err error) {
	if lso, err = adm.ListCommittedOffsets(ctx, topics...); err == nil {
		err = lso.Error()
	}
	if err != nil {
		return nil, 0, err
	}
	if high == nil {
		if high, err = adm.ListEndOffsets(ctx, topics...); err == nil {
			err = high.Error()
		}
		if err != nil {
			return nil, 0, err
		}
	}
	high.Each(func(h kadm.ListedOffset) {
		if s, ok := lso.Lookup(h.Topic, h.Partition); !ok || s.Offset < h.Offset {
			open++
		}
	})
	return lso, open, nil
}
