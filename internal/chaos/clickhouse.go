package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/internal/config"
)

// ErrNotCaughtUp is returned (wrapped) when, with Config.ClickHouse, the
// consumers' sink group did not commit the end of the audit and decisions
// topics within Config.SettleTimeout. Run still verifies ClickHouse, so the
// report names what is missing there.
var ErrNotCaughtUp = errors.New("chaos: the ClickHouse sink did not store the end of the output topics")

// maxExamples bounds ClickHouseCheck.Examples.
const maxExamples = 20

// ClickHouseCheck is what a run with Config.ClickHouse found in the audit
// table.
type ClickHouseCheck struct {
	// CaughtUp says whether the consumers' sink group committed the end of
	// the audit and decisions topics before the consumers were stopped;
	// CatchUp is how long the wait took.
	CaughtUp bool
	CatchUp  time.Duration
	// Verified says whether the table was verified and reconciled to the
	// end; Table and Reconciled are the results (audit.VerifyTable,
	// audit.Reconcile against the group's committed offsets).
	Verified   bool
	Table      audit.VerifyStats
	Reconciled audit.ReconcileStats
	// KeyID names the key the checkpoints' signatures were checked with;
	// empty without Config.AuditKeyFile, when they were not checked.
	KeyID string
	// Examples describes the first breaks and discrepancies, at most
	// maxExamples.
	Examples []string
}

// Failed reports whether ClickHouse shows a fault of the pipeline: the
// verification did not run, a chain breaks, or a source offset below the
// group's commit has no terminal audit record or (unless allowDuplicates,
// for at-least-once runs) more than one.
func (c *ClickHouseCheck) Failed(allowDuplicates bool) bool {
	return !c.Verified || c.Table.Breaks > 0 || c.Reconciled.Missing > 0 ||
		(c.Reconciled.Twice > 0 && !allowDuplicates)
}

// auditSigner is the checkpoint signer of the key in file, or nil when file
// is empty, as the consumers read their --audit-key-file.
func auditSigner(file string) (*audit.Signer, error) {
	key, err := config.ReadKeyFile("audit-key-file", file)
	if err != nil || key == nil {
		return nil, err
	}
	return audit.NewSigner(key)
}

// catchUp waits, up to cfg.SettleTimeout, until the consumers' sink group
// has committed the end offset of every partition of the audit and
// decisions topics: everything the pipeline wrote is then in ClickHouse.
// The sink reads read_committed and commits past transaction markers, so
// its commits reach the end offsets only once no transaction is open on
// those topics either. It returns ErrNotCaughtUp (wrapped) on timeout.
func catchUp(ctx context.Context, cfg Config, log *slog.Logger) error {
	start := time.Now()
	records, err := atEnd(ctx, cfg, cfg.Topics.SinkGroup(), cfg.Topics.Audit, cfg.Topics.Decisions)
	if errors.Is(err, errTimedOut) {
		return fmt.Errorf("%w: group %s %w", ErrNotCaughtUp, cfg.Topics.SinkGroup(), err)
	}
	if err != nil {
		return fmt.Errorf("chaos: clickhouse catch-up: %w", err)
	}
	log.Info("chaos: the ClickHouse sink stored the end of the output topics", "offsets", records,
		"waited", time.Since(start).Round(time.Millisecond))
	return nil
}

// verifyClickHouse verifies the audit table of cfg.ClickHouse, checking the
// checkpoints' signatures when signer is not nil, and reconciles it with
// the offsets the consumers' group committed. It fills c as far as it gets.
func verifyClickHouse(ctx context.Context, cfg Config, signer *audit.Signer, c *ClickHouseCheck) error {
	conn, err := audit.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return fmt.Errorf("chaos: clickhouse: %w", err)
	}
	defer conn.Close()
	example := func(s string) {
		if len(c.Examples) < maxExamples {
			c.Examples = append(c.Examples, s)
		}
	}
	c.Table, err = audit.VerifyTable(ctx, conn, signer, func(b audit.Break) {
		example(fmt.Sprintf("break: %s segment %s seq %d (audit id %s): %s", b.Chain, b.Segment, b.Seq, b.AuditID, b.Problem))
	})
	if err != nil {
		return fmt.Errorf("chaos: clickhouse: %w", err)
	}
	if signer != nil {
		c.KeyID = signer.ID()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		return fmt.Errorf("chaos: clickhouse: kafka client: %w", err)
	}
	defer cl.Close()
	anchors, err := audit.FetchAnchors(ctx, kadm.NewClient(cl), cfg.Topics.Group, cfg.Topics.SamplingGroup())
	if err != nil {
		return fmt.Errorf("chaos: clickhouse: %w", err)
	}
	audit.RecordOffsets(anchors, kgo.SeedBrokers(cfg.Brokers...))
	c.Reconciled, err = audit.Reconcile(ctx, conn, anchors, func(d audit.Discrepancy) { example(d.String()) })
	if err != nil {
		return fmt.Errorf("chaos: clickhouse: %w", err)
	}
	c.Verified = true
	return nil
}
