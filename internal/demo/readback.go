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
	"github.com/triage-dev/triage/internal/kafka"
)

// ReadAudit reads the audit topic read_committed from the summary's start
// (NewSummary or Restart) through its last stable offsets at the time of
// the call, counts each record with AddAudit, and marks the audit trail as
// read back. Call it once every event has its result: the pipeline reports
// an event only after all of its audit records are committed (or, at least
// once, acknowledged), so they lie below those offsets.
func (s *Summary) ReadAudit(ctx context.Context, brokers []string, topic string) error {
	s.mu.Lock()
	// The pipeline's clock may run behind this one; records of earlier runs
	// that the slack lets in match none of this run's events.
	since := s.start.Add(-time.Minute)
	s.mu.Unlock()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return fmt.Errorf("demo: read audit: kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// Read as a downstream reader does, read_committed, up to the last
	// stable offset: a result is reported once its transaction committed.
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("demo: read audit: end offsets of %s: %w", topic, err)
	}
	starts, err := adm.ListOffsetsAfterMilli(ctx, since.UnixMilli(), topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("demo: read audit: offsets of %s since %s: %w", topic, since.Format(time.RFC3339), err)
	}
	var firstErr error
	err = kafka.ReadRange(ctx, []kgo.Opt{kgo.SeedBrokers(brokers...)}, kgo.ReadCommitted(), starts, ends, func(r *kgo.Record) {
		var rec audit.Record
		if err := json.Unmarshal(r.Value, &rec); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("demo: read audit: %s[%d] offset %d: %w", topic, r.Partition, r.Offset, err)
			}
			return
		}
		s.AddAudit(rec)
	})
	if err = errors.Join(err, firstErr); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auditRead = true
	return nil
}
