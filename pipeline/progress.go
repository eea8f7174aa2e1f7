package pipeline

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/internal/retry"
)

// progressPrefix starts the offset commit metadata that carries a
// partition's done ranges; metadata without it (another tool's, or
// franz-go's default member id) carries none.
const progressPrefix = "triage/1:"

// MaxProgressBytes bounds the metadata of one partition's offset commit:
// Kafka refuses more than offset.metadata.max.bytes, 4096 by default.
const MaxProgressBytes = 4000

// encodeProgress encodes the done ranges above a committed offset as
// offset commit metadata: the prefix, then base64 of unsigned varints, for
// each range its distance from the end of the one before (from the
// committed offset for the first) and its length minus one. Ranges must be
// sorted, merged and above committed.
func encodeProgress(committed int64, done []Range) string {
	if len(done) == 0 {
		return ""
	}
	buf := make([]byte, 0, 4*len(done))
	prev := committed
	for _, r := range done {
		buf = binary.AppendUvarint(buf, uint64(r.First-prev))
		buf = binary.AppendUvarint(buf, uint64(r.Last-r.First))
		prev = r.Last + 1
	}
	return progressPrefix + base64.RawURLEncoding.EncodeToString(buf)
}

// decodeProgress reverses encodeProgress. Metadata without the prefix
// carries no ranges; metadata with it that does not decode is an error.
func decodeProgress(committed int64, meta string) ([]Range, error) {
	enc, ok := strings.CutPrefix(meta, progressPrefix)
	if !ok {
		return nil, nil
	}
	buf, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("progress metadata: %w", err)
	}
	var done []Range
	prev := committed
	for len(buf) > 0 {
		gap, n := binary.Uvarint(buf)
		if n <= 0 {
			return nil, errors.New("progress metadata: truncated range")
		}
		buf = buf[n:]
		length, n := binary.Uvarint(buf)
		if n <= 0 {
			return nil, errors.New("progress metadata: truncated range")
		}
		buf = buf[n:]
		first := prev + int64(gap)
		last := first + int64(length)
		if gap > 1<<62 || length > 1<<62 || first < prev || last < first {
			return nil, errors.New("progress metadata: range out of bounds")
		}
		done = append(done, Range{first, last})
		prev = last + 1
	}
	return done, nil
}

// loadTimeout bounds reading the committed state of newly assigned
// partitions. A pending transaction of the partition's previous owner
// holds the read back until it ends, which its transaction timeout bounds.
const loadTimeout = time.Minute

// load starts the bookkeeping of partitions this member has no state for
// (newly assigned, or rewound after an abort) from their committed state:
// the committed offset and the done ranges its metadata carries. The read
// requires stable offsets, so a transaction of the partition's previous
// owner that is still open is waited for: its offsets and its decisions
// commit or abort together.
func (p *Pipeline) load(ctx context.Context, tps []TopicPartition) error {
	if len(tps) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	adm := kadm.NewClient(p.client())
	if p.topicIDs == nil {
		topics, err := backoff.Retry(ctx, func() (kadm.TopicDetails, error) {
			return retriable(adm.ListTopics(ctx, p.cfg.Topics...))
		}, loadBackOff()...)
		if err != nil {
			return fmt.Errorf("pipeline: list topics: %w", err)
		}
		ids := make(map[string][16]byte, len(topics))
		for name, d := range topics {
			ids[name] = d.ID
		}
		p.topicIDs = ids
	}
	fetch := func() (kadm.OffsetResponses, error) {
		resps, err := adm.FetchOffsets(kadm.RequireStable(ctx), p.cfg.Group)
		if err != nil {
			return nil, err
		}
		for _, tp := range tps {
			if r, ok := resps.Lookup(tp.Topic, tp.Partition); ok && r.Err != nil {
				return nil, fmt.Errorf("%s/%d: %w", tp.Topic, tp.Partition, r.Err)
			}
		}
		return resps, nil
	}
	resps, err := backoff.Retry(ctx, func() (kadm.OffsetResponses, error) {
		return retriable(fetch())
	}, loadBackOff()...)
	if err != nil {
		return fmt.Errorf("pipeline: read committed progress of group %s: %w", p.cfg.Group, err)
	}
	for _, tp := range tps {
		committed, meta := int64(-1), ""
		if r, ok := resps.Lookup(tp.Topic, tp.Partition); ok {
			committed, meta = r.At, r.Metadata
		}
		done, err := decodeProgress(committed, meta)
		if err != nil {
			// Never a loss: without the ranges, their records are
			// decided again.
			p.log.Warn("ignoring unreadable progress; records above the committed offset are processed again",
				"topic", tp.Topic, "partition", tp.Partition, "committed", committed, "err", err)
		}
		p.offsets.Inherit(tp, committed, done)
		if len(done) > 0 {
			p.log.Info("resuming partition with records already decided above its committed offset",
				"topic", tp.Topic, "partition", tp.Partition, "committed", committed, "ranges", len(done))
		}
	}
	return nil
}

// loadBackOff retries load's requests until its context ends.
func loadBackOff() []backoff.RetryOption {
	return []backoff.RetryOption{backoff.WithBackOff(retry.NewBackOff(20*time.Millisecond, time.Second)),
		backoff.WithMaxElapsedTime(0)} // bounded by ctx
}

// retriable passes v and err on, marking err permanent unless another try
// can help: the previous owner's transaction still open, a retriable Kafka
// error, or a broker connection that broke or was refused (a broker
// restarting under a member that was just given partitions: the chaos runs
// saw EOF here end the consumer). franz-go leaves refused dials to the
// caller; load's timeout bounds them.
func retriable[T any](v T, err error) (T, error) {
	var opErr *net.OpError
	if err != nil && !errors.Is(err, kerr.UnstableOffsetCommit) && !kerr.IsRetriable(err) &&
		!kgo.IsRetryableBrokerErr(err) && !errors.As(err, &opErr) {
		return v, backoff.Permanent(err)
	}
	return v, err
}
