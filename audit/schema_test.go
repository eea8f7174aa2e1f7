package audit

import (
	"slices"
	"testing"
	"testing/fstest"
)

func TestSplitStatements(t *testing.T) {
	src := `-- A file header.
CREATE TABLE a (x UInt8)
ENGINE = Memory;

-- requires: 20.1
-- Explains the next statement.
ALTER TABLE a MODIFY TTL x;
-- when: SELECT 1 FROM system.tables WHERE name = 'a'
RENAME TABLE a TO b;
SELECT 1;
-- a trailing comment
`
	got, err := splitStatements(src)
	if err != nil {
		t.Fatal(err)
	}
	want := []Statement{
		{SQL: "-- A file header.\nCREATE TABLE a (x UInt8)\nENGINE = Memory"},
		{SQL: "-- requires: 20.1\n-- Explains the next statement.\nALTER TABLE a MODIFY TTL x", Requires: ServerVersion{20, 1}},
		{SQL: "-- when: SELECT 1 FROM system.tables WHERE name = 'a'\nRENAME TABLE a TO b", When: "SELECT 1 FROM system.tables WHERE name = 'a'"},
		{SQL: "SELECT 1"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if _, err := splitStatements("SELECT 1"); err == nil {
		t.Error("a statement without ';' was accepted")
	}
	if _, err := splitStatements("-- requires: twenty\nSELECT 1;"); err == nil {
		t.Error("a bad requires line was accepted")
	}
}

func TestParseServerVersion(t *testing.T) {
	for s, want := range map[string]ServerVersion{"18.16.1": {18, 16}, "24.3.2.23": {24, 3}, "20.1": {20, 1}} {
		got, err := ParseServerVersion(s)
		if err != nil || got != want {
			t.Errorf("ParseServerVersion(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "18", "x.y", "-1.2"} {
		if _, err := ParseServerVersion(s); err == nil {
			t.Errorf("ParseServerVersion(%q) succeeded", s)
		}
	}
	if !(ServerVersion{18, 16}).AtLeast(ServerVersion{}) || (ServerVersion{18, 16}).AtLeast(ServerVersion{20, 1}) || !(ServerVersion{20, 5}).AtLeast(ServerVersion{20, 1}) {
		t.Error("AtLeast")
	}
}

func TestEmbeddedMigrations(t *testing.T) {
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if m.Version != i+1 {
			t.Errorf("%s: version %d, want %d (no gaps)", m.Name, m.Version, i+1)
		}
	}
	if _, err := loadMigrations(fstest.MapFS{"m/001_a.sql": {Data: []byte("SELECT 1;")}, "m/001_b.sql": {Data: []byte("SELECT 1;")}}, "m"); err == nil {
		t.Error("two migrations with one version were accepted")
	}
	if _, err := loadMigrations(fstest.MapFS{"m/1_a.sql": {Data: []byte("SELECT 1;")}}, "m"); err == nil {
		t.Error("a badly named migration was accepted")
	}
}

// TestMigrate applies the embedded migrations to a fresh database twice: the
// second run changes nothing, and the statements for newer servers wait.
func TestMigrate(t *testing.T) {
	conn, _ := migratedDB(t) // the first run
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	res, err := Migrate(t.Context(), conn)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != 0 {
		t.Errorf("second run applied %v", res.Applied)
	}
	var gated int
	for _, m := range ms {
		for _, st := range m.Statements {
			if !res.Server.AtLeast(st.Requires) {
				gated++
			}
		}
	}
	if res.Waiting != gated {
		t.Errorf("%d statements waiting, want %d on %v", res.Waiting, gated, res.Server)
	}
	t.Logf("server %v: %d statements wait for a newer server", res.Server, res.Waiting)

	var versions, rows uint64
	if err := conn.QueryRow(t.Context(), "SELECT uniqExact(version), count() FROM schema_migrations").Scan(&versions, &rows); err != nil {
		t.Fatal(err)
	}
	if versions != uint64(len(ms)) || rows != uint64(len(ms)) {
		t.Errorf("schema_migrations: %d versions in %d rows, want %d in %d", versions, rows, len(ms), len(ms))
	}
	for _, table := range []string{"audit", "decisions", "sampling_attempts", "sampling_attempts_mv", "audit_by_event", "audit_by_event_mv"} {
		var n uint64
		if err := conn.QueryRow(t.Context(), "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = ?", table).Scan(&n); err != nil || n != 1 {
			t.Errorf("table %s: %d, %v", table, n, err)
		}
	}
}

// TestMigrateAfterUpgrade: statements recorded as waiting run once the
// server is new enough, and new migrations run in order after the old.
func TestMigrateAfterUpgrade(t *testing.T) {
	conn, _ := migratedDB(t)
	ctx := t.Context()
	first := []Migration{{Version: 100, Name: "100_t.sql", Statements: []Statement{
		{SQL: "CREATE TABLE IF NOT EXISTS t (x UInt8) ENGINE = MergeTree ORDER BY x"},
		{SQL: "ALTER TABLE t ADD COLUMN y UInt8", Requires: ServerVersion{999, 0}},
	}}}
	res, err := migrate(ctx, conn, first)
	if err != nil {
		t.Fatal(err)
	}
	if res.Waiting != 1 || !slices.Equal(res.Applied, []string{"100_t.sql"}) {
		t.Fatalf("first run: %+v", res)
	}
	// The same migration as a newer build knows it, on a server that has
	// what the second statement needs; plus a new migration.
	upgraded := []Migration{{Version: 100, Name: "100_t.sql", Statements: []Statement{
		first[0].Statements[0],
		{SQL: "ALTER TABLE t ADD COLUMN y UInt8"},
	}}, {Version: 101, Name: "101_u.sql", Statements: []Statement{
		{SQL: "ALTER TABLE t ADD COLUMN z UInt8"},
	}}}
	res, err = migrate(ctx, conn, upgraded)
	if err != nil {
		t.Fatal(err)
	}
	if res.Waiting != 0 || !slices.Equal(res.Applied, []string{"100_t.sql", "101_u.sql"}) {
		t.Fatalf("after the upgrade: %+v", res)
	}
	var cols uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = 't'").Scan(&cols); err != nil || cols != 3 {
		t.Fatalf("table t has %d columns (%v), want 3", cols, err)
	}
	// Nothing left to do: a third run applies nothing (the ALTERs would fail).
	if res, err = migrate(ctx, conn, upgraded); err != nil || len(res.Applied) != 0 {
		t.Fatalf("third run: %+v, %v", res, err)
	}
}
