package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/audit"
)

// auditGrace bounds how long ReadAudit waits for a record below the end
// offsets it listed; a transaction marker can hold the last offset of a
// partition, and no record arrives for it.
const auditGrace = 10 * time.Second

// ReadAudit reads the audit topic from the summary's start (NewSummary or
// Restart) through its end offsets at the time of the call, counts each
// record with AddAudit, and marks the audit trail as read back. Call it once
// every event has its result: the pipeline reports an event only after all
// of its audit records are acknowledged, so they lie below those offsets.
func (s *Summary) ReadAudit(ctx context.Context, brokers []string, topic string) error {
	s.mu.Lock()
	// The pipeline's clock may run behind this one; records of earlier runs
	// that the slack lets in match none of this run's events.
	since := s.start.Add(-time.Minute)
	s.mu.Unlock()
	adm, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return fmt.Errorf("demo: read audit: kafka client: %w", err)
	}
	defer adm.Close()
	starts, ends, err := auditRange(ctx, kadm.NewClient(adm), topic, since)
	if err != nil {
		return err
	}
	from := map[int32]kgo.Offset{}
	for p, end := range ends {
		if starts[p] < end {
			from[p] = kgo.NewOffset().At(starts[p])
		} else {
			delete(ends, p)
		}
	}
	if len(ends) > 0 {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}))
		if err != nil {
			return fmt.Errorf("demo: read audit: kafka client: %w", err)
		}
		defer cl.Close()
		if err := s.readAudit(ctx, cl, topic, ends); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auditRead = true
	return nil
}

// auditRange lists, per partition of topic, the first offset written at or
// after since and the end offset.
func auditRange(ctx context.Context, adm *kadm.Client, topic string, since time.Time) (starts, ends map[int32]int64, err error) {
	listed, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("demo: read audit: end offsets of %s: %w", topic, err)
	}
	ends = map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
	listed, err = adm.ListOffsetsAfterMilli(ctx, since.UnixMilli(), topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("demo: read audit: offsets of %s since %s: %w", topic, since.Format(time.RFC3339), err)
	}
	starts = map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) { starts[o.Partition] = o.Offset })
	return starts, ends, nil
}

// readAudit polls cl until it has passed ends in every partition or
// auditGrace passes without a record.
func (s *Summary) readAudit(ctx context.Context, cl *kgo.Client, topic string, ends map[int32]int64) error {
	var firstErr error
	for len(ends) > 0 {
		pctx, cancel := context.WithTimeout(ctx, auditGrace)
		fs := cl.PollFetches(pctx)
		idle := pctx.Err() != nil
		cancel()
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("demo: read audit: %w", err)
		}
		fs.EachError(func(t string, p int32, err error) {
			if firstErr == nil && !errors.Is(err, context.DeadlineExceeded) {
				firstErr = fmt.Errorf("demo: read audit: fetch %s[%d]: %w", t, p, err)
			}
		})
		if firstErr != nil {
			return firstErr
		}
		if idle && fs.NumRecords() == 0 {
			return nil // the rest is markers or gone; the check counts what came
		}
		fs.EachRecord(func(r *kgo.Record) {
			var rec audit.Record
			if err := json.Unmarshal(r.Value, &rec); err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("demo: read audit: %s[%d] offset %d: %w", topic, r.Partition, r.Offset, err)
				}
			} else {
				s.AddAudit(rec)
			}
			if end, ok := ends[r.Partition]; ok && r.Offset >= end-1 {
				delete(ends, r.Partition)
			}
		})
	}
	return firstErr
}
