package chtest_test

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/triage-dev/triage/internal/chtest"
)

func TestServerVersion(t *testing.T) {
	conn := chtest.Open(t, chtest.Server(t))
	var version string
	if err := conn.QueryRow(t.Context(), "SELECT version()").Scan(&version); err != nil {
		t.Fatalf("SELECT version(): %v", err)
	}
	if !regexp.MustCompile(`^\d+\.\d+\.\d+`).MatchString(version) {
		t.Fatalf("version() = %q, want major.minor.patch", version)
	}
	t.Logf("ClickHouse %s", version)
}

func TestFreshDatabaseIsolates(t *testing.T) {
	conn := chtest.Open(t, chtest.Server(t))
	var names []string
	t.Run("a", func(t *testing.T) {
		db := chtest.FreshDatabase(t, conn)
		names = append(names, db)
		if n := countDatabases(t, conn, db); n != 1 {
			t.Fatalf("database %s: %d in system.databases, want 1", db, n)
		}
	})
	t.Run("a", func(t *testing.T) { names = append(names, chtest.FreshDatabase(t, conn)) })
	if len(names) != 2 || names[0] == names[1] {
		t.Fatalf("names %q: want two different databases", names)
	}
	for _, db := range names {
		if n := countDatabases(t, conn, db); n != 0 {
			t.Errorf("database %s still exists after its test ended", db)
		}
	}
}

func countDatabases(t *testing.T, conn driver.Conn, name string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(t.Context(), "SELECT count() FROM system.databases WHERE name = ?", name).Scan(&n); err != nil {
		t.Fatalf("system.databases: %v", err)
	}
	return n
}

// TestBatchInsertSurvivesRestart is the contract the audit sink relies on:
// batch inserts, ReplacingMergeTree deduplication under FINAL, LowCardinality,
// daily partitions, and data that outlives a server restart.
func TestBatchInsertSurvivesRestart(t *testing.T) {
	ch := chtest.Dedicated(t)
	conn := chtest.Open(t, ch.DSN())
	db := chtest.FreshDatabase(t, conn)
	ctx := t.Context()

	table := db + ".t"
	if err := conn.Exec(ctx, `CREATE TABLE `+table+` (
		id UInt64,
		ts DateTime,
		tenant LowCardinality(String),
		body String,
		version UInt32
	) ENGINE = ReplacingMergeTree(version)
	PARTITION BY toYYYYMMDD(ts)
	ORDER BY id`); err != nil {
		t.Fatalf("create table: %v", err)
	}

	const rows = 10_000
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	start := time.Now()
	// 26 s apart: 10k rows span three days or more, so as many partitions.
	insert(t, conn, table, 0, rows, 1, base, 26*time.Second)
	elapsed := time.Since(start)
	t.Logf("inserted %d rows in %v (%.0f rows/s)", rows, elapsed, rows/elapsed.Seconds())
	// Replays of the first 1,000 ids with a higher version replace, not add.
	insert(t, conn, table, 0, 1_000, 2, base, 26*time.Second)

	check := func(t *testing.T, conn driver.Conn) {
		t.Helper()
		var count, versions uint64
		if err := conn.QueryRow(ctx, "SELECT count(), sum(version) FROM "+table+" FINAL").Scan(&count, &versions); err != nil {
			t.Fatalf("SELECT FINAL: %v", err)
		}
		if count != rows || versions != rows+1_000 {
			t.Fatalf("FINAL: %d rows, sum(version) %d; want %d, %d", count, versions, rows, rows+1_000)
		}
		// Days in the server's time zone, which decides the partitions.
		var partitions, days uint64
		if err := conn.QueryRow(ctx, "SELECT uniqExact(partition) FROM system.parts WHERE database = ? AND table = 't' AND active", db).Scan(&partitions); err != nil {
			t.Fatalf("system.parts: %v", err)
		}
		if err := conn.QueryRow(ctx, "SELECT uniqExact(toYYYYMMDD(ts)) FROM "+table).Scan(&days); err != nil {
			t.Fatalf("count days: %v", err)
		}
		if partitions != days || days < 3 {
			t.Fatalf("%d partitions for %d days, want one per day and at least 3", partitions, days)
		}
	}
	check(t, conn)

	start = time.Now()
	ch.Stop(t)
	ch.Stop(t) // stopping a stopped server does nothing
	t.Logf("stopped in %v", time.Since(start))
	pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := conn.Ping(pingCtx); err == nil {
		t.Fatal("ping succeeded while the server is stopped")
	}

	start = time.Now()
	ch.Start(t)
	t.Logf("restarted in %v", time.Since(start))
	check(t, chtest.Open(t, ch.DSN()))
}

// insert appends ids [from, to) in one batch with PrepareBatch/Append/Send.
func insert(t *testing.T, conn driver.Conn, table string, from, to int, version uint32, base time.Time, step time.Duration) {
	t.Helper()
	batch, err := conn.PrepareBatch(t.Context(), "INSERT INTO "+table)
	if err != nil {
		t.Fatalf("prepare batch: %v", err)
	}
	tenants := [...]string{"acme", "globex", "initech"}
	for i := from; i < to; i++ {
		ts := base.Add(time.Duration(i) * step)
		if err := batch.Append(uint64(i), ts, tenants[i%len(tenants)], fmt.Sprintf("event %d", i), version); err != nil {
			t.Fatalf("append row %d: %v", i, err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("send batch: %v", err)
	}
}
