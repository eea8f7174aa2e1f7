package loadgen

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable writes the report as an aligned two-column table, with the
// per-type and per-kind counts below the totals.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	row(tw, "sent", r.Sent)
	row(tw, "acked", r.Acked)
	row(tw, "errors", r.Errors)
	row(tw, "ambiguous", r.Ambiguous)
	row(tw, "bytes", r.Bytes)
	row(tw, "duration", r.Duration.Round(time.Millisecond))
	row(tw, "rate", fmt.Sprintf("%.1f events/s", r.Rate))
	row(tw, "stopped", r.Stopped)
	if r.FirstError != "" {
		row(tw, "first error", r.FirstError)
	}
	counts(tw, "type", r.ByType)
	counts(tw, "malformed", r.ByBad)
	return tw.Flush()
}

// WriteTable writes the measurement as an aligned table: totals, latency
// percentiles, decisions by path and outcome, DLQ records by reason, then
// the first missing and mismatched events.
func (m Measurement) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	row(tw, "tracked", m.Tracked)
	row(tw, "decided", m.Decided)
	row(tw, "dlq", m.DLQ)
	row(tw, "missing", m.Missing)
	row(tw, "duplicates", m.Duplicates)
	row(tw, "mismatched", m.Mismatched)
	row(tw, "misrouted", m.Misrouted)
	row(tw, "latency p50", m.Latency.Quantile(0.50))
	row(tw, "latency p90", m.Latency.Quantile(0.90))
	row(tw, "latency p99", m.Latency.Quantile(0.99))
	row(tw, "latency max", m.Latency.Max())
	if n := m.Latency.Clamped(); n > 0 {
		row(tw, "latency clamped", n)
	}
	row(tw, "measured for", m.Elapsed.Round(time.Millisecond))
	counts(tw, "path", m.ByPath)
	counts(tw, "outcome", m.ByOutcome)
	counts(tw, "dlq reason", m.ByReason)
	if len(m.MissingIDs) > 0 {
		row(tw, "missing ids", strings.Join(m.MissingIDs, " "))
	}
	for _, s := range m.Mismatches {
		row(tw, "mismatch", s)
	}
	return tw.Flush()
}

func row(w io.Writer, name string, v any) { fmt.Fprintf(w, "%s\t%v\n", name, v) }

// counts writes a titled block of name/count rows sorted by name; an empty
// map writes nothing.
func counts(w io.Writer, title string, m map[string]int) {
	if len(m) == 0 {
		return
	}
	fmt.Fprintf(w, "%s\tcount\n", title)
	for _, k := range slices.Sorted(maps.Keys(m)) {
		row(w, "  "+k, m[k])
	}
}
