package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// WaitCaughtUp waits until the sink's group has committed, on every
// partition of the audit and decisions topics, at least the end offset the
// partition had when WaitCaughtUp was called: everything written to the
// topics before the call is then in ClickHouse. It watches this sink's own
// commits and, for the other members of the group, polls once a second.
func (s *Sink) WaitCaughtUp(ctx context.Context) error {
	adm := kadm.NewClient(s.cl)
	ends, err := adm.ListEndOffsets(ctx, s.opts.AuditTopic, s.opts.DecisionsTopic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("audit: sink: end offsets: %w", err)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		s.commitMu.Lock()
		committed := s.committed
		s.commitMu.Unlock()
		offs, err := adm.FetchOffsets(ctx, s.opts.Group)
		if err == nil {
			err = offs.Error()
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("sink: fetch committed offsets", "err", err)
		}
		if err == nil && caughtUp(ends, offs) {
			return nil
		}
		select {
		case <-committed:
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("audit: sink: waiting to catch up: %w", ctx.Err())
		}
	}
}

func caughtUp(ends kadm.ListedOffsets, committed kadm.OffsetResponses) bool {
	ok := true
	ends.Each(func(end kadm.ListedOffset) {
		if end.Offset <= 0 {
			return
		}
		if c, found := committed.Lookup(end.Topic, end.Partition); !found || c.At < end.Offset {
			ok = false
		}
	})
	return ok
}
