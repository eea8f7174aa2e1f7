package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadRange reads every partition in start from its offset up to its offset
// in end with a fresh direct client (opts: seeds, TLS, SASL) of the given
// isolation, calling fn for each data record, in offset order within a
// partition. Control records are kept so that a partition whose tail is a
// transaction marker is known to be read to its end. ctx bounds the read.
func ReadRange(ctx context.Context, opts []kgo.Opt, iso kgo.IsolationLevel, start, end kadm.ListedOffsets, fn func(*kgo.Record)) error {
	parts := map[string]map[int32]kgo.Offset{}
	ends := map[string]map[int32]int64{}
	pending := 0
	start.Each(func(so kadm.ListedOffset) {
		eo, ok := end.Lookup(so.Topic, so.Partition)
		if !ok || eo.Offset <= so.Offset {
			return
		}
		if parts[so.Topic] == nil {
			parts[so.Topic], ends[so.Topic] = map[int32]kgo.Offset{}, map[int32]int64{}
		}
		parts[so.Topic][so.Partition] = kgo.NewOffset().At(so.Offset)
		ends[so.Topic][so.Partition] = eo.Offset
		pending++
	})
	if pending == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append(slices.Clone(opts),
		kgo.ConsumePartitions(parts), kgo.FetchIsolationLevel(iso), kgo.KeepControlRecords())...)
	if err != nil {
		return fmt.Errorf("kafka: read: %w", err)
	}
	defer cl.Close()
	for pending > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("kafka: read: %d partitions not read to their end: %w", pending, err)
		}
		if fs.IsClientClosed() {
			return fmt.Errorf("kafka: read: %w", kgo.ErrClientClosed)
		}
		var ferr error
		fs.EachError(func(topic string, partition int32, err error) {
			ferr = errors.Join(ferr, fmt.Errorf("fetch %s[%d]: %w", topic, partition, err))
		})
		if ferr != nil {
			return fmt.Errorf("kafka: read: %w", ferr)
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			end, ok := ends[p.Topic][p.Partition]
			if !ok {
				return
			}
			for _, r := range p.Records {
				if r.Offset < end && !r.Attrs.IsControl() {
					fn(r)
				}
				// A compacted tail can skip end-1: any offset at or past it ends the partition.
				if r.Offset+1 >= end {
					delete(ends[p.Topic], p.Partition)
					cl.PauseFetchPartitions(map[string][]int32{p.Topic: {p.Partition}})
					pending--
					break
				}
			}
		})
	}
	return nil
}
