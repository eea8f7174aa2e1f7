package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// ErrIncomplete is Run's error when its report does not account for every
// event: an event without a decision or DLQ record, or a decision or
// sampling attempt without its audit record. The report, already written,
// says which.
var ErrIncomplete = errors.New("demo: not every event was accounted for")

// Run is the demo from start to verdict, run beside the pipeline whose
// OnResult hook is s.Add. It waits for o.Ready, produces o.Events events,
// waits until s accounts for each of them, reads their audit records back
// from o.AuditTopic, waits for o.CatchUp, and writes the report: the table
// to o.Out, the JSON to o.SummaryJSON, then o.Dashboards. The caller stops
// the pipeline when Run returns.
//
// Run returns the report, with ErrIncomplete when it is not complete. Any
// other error (ctx ended before the pipeline was ready, producing failed,
// events still without an outcome after o.Grace without progress, reading
// the audit topic failed, the sink did not catch up) comes before anything
// is written. When ctx ends while events are in flight, the report shows
// what was done, its audit trail unchecked.
func Run(ctx context.Context, o Options, s *Summary) (Report, error) {
	if o.Ready != nil {
		select {
		case <-o.Ready:
		case <-ctx.Done():
			return Report{}, fmt.Errorf("demo: stopped before the pipeline was ready: %w", context.Cause(ctx))
		}
	}
	err := feed(ctx, o, s)
	if err == nil && ctx.Err() == nil {
		topic := o.AuditTopic
		if topic == "" {
			topic = "audit"
		}
		err = s.ReadAudit(ctx, o.Brokers, topic)
	}
	r := s.Report(o.Sampler)
	r.ProduceRate = o.Rate
	if err == nil && o.CatchUp != nil {
		if err = o.CatchUp(ctx); err != nil {
			err = fmt.Errorf("demo: waiting for the audit sink: %w", err)
		}
	}
	if err != nil {
		return r, err
	}
	if err := write(ctx, o, r); err != nil {
		return r, err
	}
	if !r.Complete || !r.AuditComplete {
		return r, ErrIncomplete
	}
	return r, nil
}

// write writes the report where o says: table, JSON file, dashboards.
func write(ctx context.Context, o Options, r Report) error {
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	if err := r.WriteTable(out); err != nil {
		return fmt.Errorf("demo: write report: %w", err)
	}
	if o.SummaryJSON != "" {
		if err := r.WriteJSON(o.SummaryJSON); err != nil {
			return err
		}
	}
	if o.Dashboards != nil {
		if err := o.Dashboards(ctx, out); err != nil {
			return fmt.Errorf("demo: dashboards: %w", err)
		}
	}
	return nil
}
