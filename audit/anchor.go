package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrNoCommits is returned by FetchAnchors for a group that has committed
// no offset: a mistyped group name would otherwise reconcile nothing and
// pass.
var ErrNoCommits = errors.New("audit: the group has no committed offsets")

// FetchAnchors reads, for every source partition the consumer groups have
// committed an offset for, that offset and the partition's log start
// offset. Every partition a group commits is a source partition, so a
// partition whose chain was deleted entirely is anchored too. Pass the rule
// stage's group and the sampling stage's: the sampling topic's partitions
// are the sources of the sampling stage's chains. A group with no commits
// is skipped, but the groups together must have some.
func FetchAnchors(ctx context.Context, adm *kadm.Client, groups ...string) ([]Anchor, error) {
	var anchors []Anchor
	var topics []string
	for _, group := range groups {
		committed, err := adm.FetchOffsets(ctx, group)
		if err == nil {
			err = committed.Error()
		}
		if errors.Is(err, kerr.GroupIDNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("audit: committed offsets of group %s: %w", group, err)
		}
		committed.Each(func(o kadm.OffsetResponse) {
			if o.At < 0 {
				return
			}
			anchors = append(anchors, Anchor{Topic: o.Topic, Partition: o.Partition, Committed: o.At})
			if !slices.Contains(topics, o.Topic) {
				topics = append(topics, o.Topic)
			}
		})
	}
	if len(anchors) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoCommits, strings.Join(groups, ", "))
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

// recordsQuiet is how long RecordOffsets waits for the next record of a
// range before taking it that the rest of the range holds none.
const recordsQuiet = 5 * time.Second

// RecordOffsets sets each anchor's Records to a read of its partition,
// read_committed, through a client made with opts (the brokers, TLS,
// SASL): the offsets that hold records committed or not aborted. It reads
// only where Reconcile finds offsets without an audit record.
func RecordOffsets(anchors []Anchor, opts ...kgo.Opt) {
	for i := range anchors {
		a := &anchors[i]
		topic, partition := a.Topic, a.Partition
		a.Records = func(ctx context.Context, first, last int64) ([]Range, error) {
			return recordOffsets(ctx, opts, topic, partition, first, last)
		}
	}
}

func recordOffsets(ctx context.Context, opts []kgo.Opt, topic string, partition int32, first, last int64) ([]Range, error) {
	cl, err := kgo.NewClient(append(opts,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(first)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		return nil, fmt.Errorf("audit: read %s/%d: %w", topic, partition, err)
	}
	defer cl.Close()
	// The range is below the group's committed offset, so below the last
	// stable offset: a fetch returns its records at once. When none comes
	// for recordsQuiet, the rest of the range holds none (it ends in
	// transaction markers).
	var runs []Range
	for {
		pctx, cancel := context.WithTimeout(ctx, recordsQuiet)
		fetches := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		done := false
		fetches.EachError(func(_ string, _ int32, ferr error) {
			if !errors.Is(ferr, context.DeadlineExceeded) {
				err = ferr
			}
			done = true
		})
		if err != nil {
			return nil, fmt.Errorf("audit: read %s/%d: %w", topic, partition, err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			switch {
			case r.Offset > last:
				done = true
			case r.Offset < first:
			case len(runs) > 0 && runs[len(runs)-1].Last == r.Offset-1:
				runs[len(runs)-1].Last = r.Offset
			default:
				runs = append(runs, Range{r.Offset, r.Offset})
			}
			if r.Offset >= last {
				done = true
			}
		})
		if done {
			return runs, nil
		}
	}
}
