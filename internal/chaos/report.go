package chaos

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/triage-dev/triage/internal/loadgen"
)

// Report is what a run did and found.
type Report struct {
	// Dir is the run directory holding the process logs.
	Dir string
	// Seed is the seed of the kill schedule (Config.Seed, or the one drawn).
	Seed int64
	// Verified says whether the verification ran; Verification is its
	// result, which decides whether the pipeline survived the faults.
	Verified     bool
	Verification loadgen.Verification
	// ClickHouse is what the audit table showed, with Config.ClickHouse;
	// nil without.
	ClickHouse *ClickHouseCheck
	// ProducerErr is how the producer process ended: nil when it exited 0
	// (every record acknowledged). The verification counts what reached the
	// event topics either way.
	ProducerErr error
	// Kills counts consumer SIGKILLs, SamplerKills sampler SIGKILLs.
	Kills, SamplerKills int
	// Restarts counts processes started again after a kill or an exit.
	Restarts int
	// UnexpectedExits counts consumer and sampler processes that exited
	// while the harness neither killed nor stopped them; their logs say why.
	UnexpectedExits int
	// StopErrors are consumers and the sampler that did not exit 0 on the
	// final SIGTERM within the drain timeout.
	StopErrors []error
	// Faults are the one-off faults, in the order they were configured.
	Faults []FaultResult
	// Settled says whether the group committed the end of the event topics
	// within the settle timeout; Settle is how long that took.
	Settled bool
	Settle  time.Duration
	// Elapsed is the whole run, verification included.
	Elapsed time.Duration
}

// FaultResult is what became of one Fault.
type FaultResult struct {
	// Name is the fault's name.
	Name string
	// Injected says whether Inject was called; Took is how long it ran.
	Injected bool
	Took     time.Duration
	// Err is Inject's error.
	Err error
}

// Failed reports whether the run shows a fault of the pipeline: the
// verification did not run or failed (duplicates count unless
// allowDuplicates, for at-least-once runs), the ClickHouse verification
// did (ClickHouseCheck.Failed), a process exited on its own, or a process
// did not stop cleanly.
func (r Report) Failed(allowDuplicates bool) bool {
	return !r.Verified || r.Verification.Failed(allowDuplicates) ||
		(r.ClickHouse != nil && r.ClickHouse.Failed(allowDuplicates)) ||
		r.UnexpectedExits > 0 || len(r.StopErrors) > 0
}

// WriteTable writes the faults injected, then the verification table
// (loadgen.Verification.WriteTable), then with ClickHouse what the audit
// table showed.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "consumer kills\t%d\n", r.Kills)
	fmt.Fprintf(tw, "sampler kills\t%d\n", r.SamplerKills)
	fmt.Fprintf(tw, "restarts\t%d\n", r.Restarts)
	fmt.Fprintf(tw, "unexpected exits\t%d\n", r.UnexpectedExits)
	for _, f := range r.Faults {
		switch {
		case !f.Injected:
			fmt.Fprintf(tw, "%s\tnot injected\n", f.Name)
		case f.Err != nil:
			fmt.Fprintf(tw, "%s\tfailed after %s: %v\n", f.Name, f.Took.Round(time.Millisecond), f.Err)
		default:
			fmt.Fprintf(tw, "%s\t1 (%s)\n", f.Name, f.Took.Round(time.Millisecond))
		}
	}
	producer := "ok"
	if r.ProducerErr != nil {
		producer = r.ProducerErr.Error()
	}
	fmt.Fprintf(tw, "producer\t%s\n", producer)
	settled := fmt.Sprintf("yes, in %s", r.Settle.Round(time.Millisecond))
	if !r.Settled {
		settled = fmt.Sprintf("no, gave up after %s", r.Settle.Round(time.Millisecond))
	}
	fmt.Fprintf(tw, "group committed the end\t%s\n", settled)
	for _, err := range r.StopErrors {
		fmt.Fprintf(tw, "stop\t%v\n", err)
	}
	fmt.Fprintf(tw, "elapsed\t%s\n", r.Elapsed.Round(time.Millisecond))
	if err := tw.Flush(); err != nil {
		return err
	}
	if !r.Verified {
		if _, err := fmt.Fprintln(w, "not verified"); err != nil {
			return err
		}
	} else if err := r.Verification.WriteTable(w); err != nil {
		return err
	}
	if r.ClickHouse == nil {
		return nil
	}
	return r.ClickHouse.writeTable(w)
}

// writeTable writes c as rows of a two-column table, then its examples.
func (c *ClickHouseCheck) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	caughtUp := fmt.Sprintf("yes, in %s", c.CatchUp.Round(time.Millisecond))
	if !c.CaughtUp {
		caughtUp = fmt.Sprintf("no, gave up after %s", c.CatchUp.Round(time.Millisecond))
	}
	fmt.Fprintf(tw, "clickhouse sink caught up\t%s\n", caughtUp)
	if !c.Verified {
		fmt.Fprintf(tw, "clickhouse\tnot verified\n")
		return tw.Flush()
	}
	fmt.Fprintf(tw, "clickhouse rows\t%d in %d chains, %d segments\n", c.Table.Rows, c.Table.Chains, c.Table.Segments)
	fmt.Fprintf(tw, "chain breaks\t%d\n", c.Table.Breaks)
	signatures := "not checked (no audit key file)"
	if c.KeyID != "" {
		signatures = "checked with key " + c.KeyID
	}
	fmt.Fprintf(tw, "checkpoint signatures\t%s\n", signatures)
	fmt.Fprintf(tw, "reconciled offsets\t%d in %d source partitions\n", c.Reconciled.Offsets, c.Reconciled.Partitions)
	fmt.Fprintf(tw, "missing in clickhouse\t%d\n", c.Reconciled.Missing)
	fmt.Fprintf(tw, "decided twice in clickhouse\t%d\n", c.Reconciled.Twice)
	if n := len(c.Reconciled.Unanchored); n > 0 {
		fmt.Fprintf(tw, "chains not reconciled\t%d (the group committed no offset for them: other runs' rows?)\n", n)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, e := range c.Examples {
		if _, err := fmt.Fprintln(w, "  "+e); err != nil {
			return err
		}
	}
	return nil
}
