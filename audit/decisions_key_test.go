package audit

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"golang.org/x/sync/errgroup"

	"github.com/triage-dev/triage/internal/chtest"
)

// The decisions table's key moved from event_id to (tenant_id, event_id)
// (issue 9). These tests build a database as the migrations before that
// left it, with rows, and migrate it.

// keyedByTenant is the sorting key of the decisions table once migrated.
const keyedByTenant = "tenant_id, event_id"

// oldSchemaDB returns a connection to a fresh database migrated up to, not
// including, the migration that rekeys the decisions table, holding
// the decisions oldDecisions returns.
func oldSchemaDB(t *testing.T) driver.Conn {
	t.Helper()
	server := chtest.Server(t)
	conn := chtest.Open(t, withDatabase(t, server, chtest.FreshDatabase(t, chtest.Open(t, server))))
	ms, before := rekeyMigration(t)
	if _, err := migrate(t.Context(), conn, ms[:before]); err != nil {
		t.Fatalf("migrate to the old schema: %v", err)
	}
	if key := sortingKey(t, conn, "decisions"); key != "event_id" {
		t.Fatalf("the old decisions table is keyed by %q, want event_id", key)
	}
	// Merges stopped, and one batch per decision: each row is a part of its
	// own, so the old key has not collapsed the two tenants' rows into one
	// (the defect) before the migration reads them.
	if err := conn.Exec(t.Context(), "SYSTEM STOP MERGES decisions"); err != nil {
		t.Fatal(err)
	}
	for _, d := range oldDecisions() {
		if err := insertOldDecision(t, conn, d); err != nil {
			t.Fatal(err)
		}
	}
	return conn
}

// insertOldDecision stores d as a build from before migration 007 did,
// without the columns it added.
func insertOldDecision(t *testing.T, conn driver.Conn, d Decision) error {
	t.Helper()
	b, err := conn.PrepareBatch(t.Context(), `INSERT INTO decisions (event_id, type, tenant_id, key, outcome, path,
	rule_id, reason, model, latency_ms, decided_ms)`)
	if err != nil {
		return err
	}
	if err := b.Append(d.EventID, d.Type, d.TenantID, d.Key, d.Outcome, d.Path,
		d.RuleID, d.Reason, d.Model, d.LatencyMS, uint64(d.DecidedAt.UnixMilli())); err != nil {
		return err
	}
	return b.Send()
}

// rekeyVersion is the version of the migration that rekeys decisions.
const rekeyVersion = 6

// rekeyMigration returns the embedded migrations and the index of the one
// that rekeys decisions.
func rekeyMigration(t *testing.T) ([]Migration, int) {
	t.Helper()
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ms, func(m Migration) bool { return m.Version == rekeyVersion })
	if i < 0 {
		t.Fatalf("no migration %d", rekeyVersion)
	}
	return ms, i
}

// oldDecisions are two tenants' decisions of the same event_ids, and one
// event decided twice (reprocessed after a crash).
func oldDecisions() []Decision {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	var out []Decision
	for i := range 3 {
		for _, tenant := range []string{"tenant-a", "tenant-b"} {
			out = append(out, Decision{EventID: fmt.Sprint("ev-", i), Type: "transaction", TenantID: tenant, Key: "acct-1",
				Outcome: "allow", Path: "rule", RuleID: "default", LatencyMS: 1.5, DecidedAt: at.Add(time.Duration(i) * time.Second)})
		}
	}
	again := out[0]
	again.Outcome, again.DecidedAt = "review", again.DecidedAt.Add(time.Minute)
	return append(out, again)
}

func sortingKey(t *testing.T, conn driver.Conn, table string) string {
	t.Helper()
	var key string
	if err := conn.QueryRow(t.Context(), "SELECT sorting_key FROM system.tables WHERE database = currentDatabase() AND name = ?", table).Scan(&key); err != nil {
		t.Fatalf("sorting key of %s: %v", table, err)
	}
	return key
}

func tables(t *testing.T, conn driver.Conn) []string {
	t.Helper()
	rows, err := conn.Query(t.Context(), "SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		out = append(out, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkCopied checks that conn's decisions table holds every old decision
// with its decided_at; run it before checkRekeyed, whose merge collapses
// the earlier of ev-0's two.
func checkCopied(t *testing.T, conn driver.Conn) {
	t.Helper()
	want := oldDecisions()
	kept := 0
	for _, d := range want {
		var copies uint64
		var decidedAt time.Time
		if err := conn.QueryRow(t.Context(), `SELECT count(), any(decided_at) FROM decisions
			WHERE tenant_id = ? AND event_id = ? AND decided_ms = ? AND outcome = ?`,
			d.TenantID, d.EventID, uint64(d.DecidedAt.UnixMilli()), d.Outcome).Scan(&copies, &decidedAt); err != nil {
			t.Fatal(err)
		}
		if copies > 0 && decidedAt.Equal(d.DecidedAt) {
			kept++
		}
	}
	if kept != len(want) {
		t.Errorf("decisions holds %d of the %d old decisions with their decided_at", kept, len(want))
	}
}

// checkRekeyed checks that conn's decisions table is keyed by tenant and
// event, so that a merge keeps both tenants' decisions of one event_id and
// the later of one event's two, and that the old table is kept aside as
// decisions_v1_old.
func checkRekeyed(t *testing.T, conn driver.Conn) {
	t.Helper()
	if key := sortingKey(t, conn, "decisions"); key != keyedByTenant {
		t.Errorf("decisions is keyed by %q, want %q", key, keyedByTenant)
	}
	if key := sortingKey(t, conn, "decisions_v1_old"); key != "event_id" {
		t.Errorf("decisions_v1_old is keyed by %q, want the old event_id", key)
	}
	if err := conn.Exec(t.Context(), "OPTIMIZE TABLE decisions FINAL"); err != nil {
		t.Fatal(err)
	}
	var rows uint64
	var outcome string
	if err := conn.QueryRow(t.Context(), `SELECT count(), anyIf(outcome, tenant_id = 'tenant-a' AND event_id = 'ev-0') FROM decisions`).Scan(&rows, &outcome); err != nil {
		t.Fatal(err)
	}
	if want := len(oldDecisions()) - 1; rows != uint64(want) || outcome != "review" {
		t.Errorf("after a merge: %d rows, ev-0 of tenant-a %q; want %d rows and the later decision, review", rows, outcome, want)
	}
}

// TestMigrateRekeysDecisions: a decisions table of the old schema, with
// rows, is rekeyed by (tenant_id, event_id) with every row kept; migrating
// again changes nothing.
func TestMigrateRekeysDecisions(t *testing.T) {
	conn := oldSchemaDB(t)
	res, err := Migrate(t.Context(), conn)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(res.Applied, func(name string) bool { return strings.HasPrefix(name, fmt.Sprintf("%03d_", rekeyVersion)) }) {
		t.Errorf("applied %v, want the rekeying migration among them", res.Applied)
	}
	checkCopied(t, conn)
	checkRekeyed(t, conn)

	before := tables(t, conn)
	res, err = Migrate(t.Context(), conn)
	if err != nil || len(res.Applied) != 0 {
		t.Fatalf("second run: %+v, %v", res, err)
	}
	if after := tables(t, conn); !slices.Equal(after, before) {
		t.Errorf("the second run changed the tables: %v, then %v", before, after)
	}
	checkRekeyed(t, conn)
}

// TestMigrateConcurrently: consumers started together migrate one database
// at once. Each Migrate succeeds, on a fresh database and on one of the old
// schema with rows.
func TestMigrateConcurrently(t *testing.T) {
	const migrators = 4
	run := func(t *testing.T, dsn string) {
		var g errgroup.Group
		for range migrators {
			conn := chtest.Open(t, dsn) // one connection each, as separate processes have
			g.Go(func() error {
				_, err := Migrate(t.Context(), conn)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("fresh", func(t *testing.T) {
		server := chtest.Server(t)
		dsn := withDatabase(t, server, chtest.FreshDatabase(t, chtest.Open(t, server)))
		run(t, dsn)
		if key := sortingKey(t, chtest.Open(t, dsn), "decisions"); key != keyedByTenant {
			t.Errorf("decisions is keyed by %q, want %q", key, keyedByTenant)
		}
	})
	t.Run("old schema", func(t *testing.T) {
		conn := oldSchemaDB(t)
		var db string
		if err := conn.QueryRow(t.Context(), "SELECT currentDatabase()").Scan(&db); err != nil {
			t.Fatal(err)
		}
		run(t, withDatabase(t, chtest.Server(t), db))
		checkCopied(t, conn)
		checkRekeyed(t, conn)
	})
}

// TestMigrateRekeyResumes: a migration that stopped after any of its
// statements (the process died) is finished by the next Migrate, and so is
// a swap the server did half of.
func TestMigrateRekeyResumes(t *testing.T) {
	ms, i := rekeyMigration(t)
	rekey := ms[i]
	finish := func(t *testing.T, conn driver.Conn) {
		t.Helper()
		if _, err := Migrate(t.Context(), conn); err != nil {
			t.Fatal(err)
		}
		checkCopied(t, conn)
		checkRekeyed(t, conn)
	}
	for k := range rekey.Statements {
		t.Run(fmt.Sprintf("stopped after %d", k), func(t *testing.T) {
			conn := oldSchemaDB(t)
			for _, st := range rekey.Statements[:k] {
				if st.Requires != (ServerVersion{}) {
					continue // what waits for a newer server is not what this tests
				}
				if _, err := runStatement(t.Context(), conn, st); err != nil {
					t.Fatal(err)
				}
			}
			finish(t, conn)
		})
	}
	t.Run("half a swap", func(t *testing.T) {
		conn := oldSchemaDB(t)
		if _, err := runStatement(t.Context(), conn, rekey.Statements[0]); err != nil {
			t.Fatal(err)
		}
		// The first rename of the swap, as a server that died in it left it.
		if err := conn.Exec(t.Context(), "RENAME TABLE decisions TO decisions_v1_copying"); err != nil {
			t.Fatal(err)
		}
		finish(t, conn)
	})
}
