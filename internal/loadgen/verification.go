package loadgen

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// Verification is what Verify found, counted per source position
// (topic, partition, offset) unless a field says otherwise.
type Verification struct {
	// Produced counts source records; Decided the positions with at least
	// one decision, DeadLettered those with at least one dead letter.
	Produced, Decided, DeadLettered int
	// Lost counts source positions with neither a decision nor a dead
	// letter; Duplicated those with more than one of them together.
	Lost, Duplicated int
	// Outside counts decision records (not positions) whose outcome is not
	// one of their type's outcomes, or whose type the rules do not know.
	Outside int
	// AuditMissing counts positions with a decision or a dead letter but no
	// terminal audit record (audit.Kind.Terminal).
	AuditMissing int
	// Unmatched counts decision, dead-letter and terminal audit records that
	// name no source record read: the source was cut by retention, or the
	// record belongs to another run. Information, not a failure.
	Unmatched int
	// Examples describes the first few lost, duplicated, outside and
	// audit-missing positions, at most MaxMissingIDs.
	Examples []string
}

// Failed reports whether v shows a fault: anything lost, outside or
// missing from the audit, or duplicated unless duplicates are allowed
// (at-least-once runs).
func (v Verification) Failed(allowDuplicates bool) bool {
	return v.Lost > 0 || v.Outside > 0 || v.AuditMissing > 0 || (v.Duplicated > 0 && !allowDuplicates)
}

// WriteTable writes v as an aligned two-column table, then the examples.
func (v Verification) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row(tw, "produced", v.Produced)
	row(tw, "decided", v.Decided)
	row(tw, "dead-lettered", v.DeadLettered)
	row(tw, "lost", v.Lost)
	row(tw, "duplicated", v.Duplicated)
	row(tw, "outcome outside type", v.Outside)
	row(tw, "audit missing", v.AuditMissing)
	row(tw, "unmatched outputs", v.Unmatched)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, e := range v.Examples {
		if _, err := fmt.Fprintln(w, "  "+e); err != nil {
			return err
		}
	}
	return nil
}
