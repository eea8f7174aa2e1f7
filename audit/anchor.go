package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrNoCommits is returned by FetchAnchors for a group that has committed
// no offset: a mistyped group name would otherwise reconcile nothing and
// pass.
var ErrNoCommits = errors.New("audit: the group has no committed offsets")

// FetchAnchors reads, for every source partition the consumer group has
// committed an offset for, that offset and the partition's log start
// offset. Every partition the group commits is a source partition, so a
// partition whose chain was deleted entirely is anchored too.
func FetchAnchors(ctx context.Context, adm *kadm.Client, group string) ([]Anchor, error) {
	committed, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = committed.Error()
	}
	if errors.Is(err, kerr.GroupIDNotFound) {
		return nil, fmt.Errorf("%w: %s (%w)", ErrNoCommits, group, err)
	}
	if err != nil {
		return nil, fmt.Errorf("audit: committed offsets of group %s: %w", group, err)
	}
	var anchors []Anchor
	var topics []string
	committed.Each(func(o kadm.OffsetResponse) {
		if o.At < 0 {
			return
		}
		anchors = append(anchors, Anchor{Topic: o.Topic, Partition: o.Partition, Committed: o.At})
		if !slices.Contains(topics, o.Topic) {
			topics = append(topics, o.Topic)
		}
	})
	if len(anchors) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoCommits, group)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("audit: log start offsets of %v: %w", topics, err)
	}
	for i := range anchors {
		a := &anchors[i]
		o, ok := starts.Lookup(a.Topic, a.Partition)
		if !ok {
			return nil, fmt.Errorf("audit: no log start offset for %s", a.Chain())
		}
		a.Start = o.Offset
	}
	sort.Slice(anchors, func(i, j int) bool {
		if anchors[i].Topic != anchors[j].Topic {
			return anchors[i].Topic < anchors[j].Topic
		}
		return anchors[i].Partition < anchors[j].Partition
	})
	return anchors, nil
}
