package audit

import (
	"bufio"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/cenkalti/backoff/v5"

	"github.com/triage-dev/triage/internal/retry"
)

// The ClickHouse schema is a sequence of migrations embedded in the binary:
// migrations/NNN_name.sql, applied in order by Migrate and recorded in the
// schema_migrations table.
//
// A migration is statements separated by a ';' at the end of a line. A
// statement whose leading comment lines include "-- requires: MAJOR.MINOR"
// runs only on a server whose version() is at least that: features that
// Debian's 18.16 lacks (TTL, DateTime64) wait on old servers and apply at the
// first Migrate after an upgrade. Every statement must be idempotent (IF NOT
// EXISTS, MODIFY): two processes may migrate at once, and a migration
// interrupted half-way runs again from its first statement.
//
// A statement that cannot be made idempotent in SQL (a RENAME, a copy of
// rows) takes a "-- when: SELECT ..." comment line: it runs only while that
// query returns a row, a query on system.tables that says the step is not
// done yet. If it fails and the query then returns no row, another process
// migrating at the same time did the step, and Migrate goes on.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one embedded migration file.
type Migration struct {
	Version    int    // NNN of the file name
	Name       string // the file name
	Statements []Statement
}

// Statement is one statement of a migration.
type Statement struct {
	SQL string
	// Requires is the oldest server version that supports the statement;
	// zero means every server.
	Requires ServerVersion
	// When is a query that returns a row while the statement is still to
	// run; empty means always.
	When string
}

// ServerVersion is a ClickHouse version's major and minor number.
type ServerVersion struct{ Major, Minor int }

// AtLeast reports whether v is r or newer.
func (v ServerVersion) AtLeast(r ServerVersion) bool {
	return v.Major > r.Major || v.Major == r.Major && v.Minor >= r.Minor
}

func (v ServerVersion) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// ParseServerVersion reads the major and minor number of a version() string
// such as "18.16.1" or "24.3.2.23".
func ParseServerVersion(s string) (ServerVersion, error) {
	parts := strings.SplitN(strings.TrimSpace(s), ".", 3)
	if len(parts) < 2 {
		return ServerVersion{}, fmt.Errorf("audit: server version %q: want MAJOR.MINOR[...]", s)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || major < 0 || minor < 0 {
		return ServerVersion{}, fmt.Errorf("audit: server version %q: want MAJOR.MINOR[...]", s)
	}
	return ServerVersion{major, minor}, nil
}

var (
	migrationName = regexp.MustCompile(`^(\d{3})_[a-z0-9_]+\.sql$`)
	requiresLine  = regexp.MustCompile(`^--\s*requires:\s*(\S+)\s*$`)
	whenLine      = regexp.MustCompile(`^--\s*when:\s*(.+?)\s*$`)
)

// Migrations returns the embedded migrations in order.
func Migrations() ([]Migration, error) {
	return loadMigrations(migrationFiles, "migrations")
}

func loadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("audit: migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("audit: migration %s: name must be NNN_name.sql", e.Name())
		}
		version, _ := strconv.Atoi(m[1])
		if len(out) > 0 && out[len(out)-1].Version == version {
			return nil, fmt.Errorf("audit: migrations %s and %s share version %d", out[len(out)-1].Name, e.Name(), version)
		}
		data, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("audit: migration %s: %w", e.Name(), err)
		}
		stmts, err := splitStatements(string(data))
		if err != nil {
			return nil, fmt.Errorf("audit: migration %s: %w", e.Name(), err)
		}
		if len(stmts) == 0 {
			return nil, fmt.Errorf("audit: migration %s has no statements", e.Name())
		}
		out = append(out, Migration{Version: version, Name: e.Name(), Statements: stmts})
	}
	// fs.ReadDir sorts by name, and the names start with the version.
	return out, nil
}

// splitStatements cuts a migration at lines ending in ';' and reads each
// statement's "-- requires:" and "-- when:" lines.
func splitStatements(src string) ([]Statement, error) {
	var out []Statement
	var cur []string
	var req ServerVersion
	var when string
	code := false // cur holds more than comments and blank lines
	sc := bufio.NewScanner(strings.NewReader(src))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t\r")
		trimmed := strings.TrimSpace(line)
		if m := requiresLine.FindStringSubmatch(trimmed); m != nil && !code {
			v, err := ParseServerVersion(m[1])
			if err != nil {
				return nil, err
			}
			req = v
		}
		if m := whenLine.FindStringSubmatch(trimmed); m != nil && !code {
			when = m[1]
		}
		if trimmed != "" && !strings.HasPrefix(trimmed, "--") {
			code = true
		}
		cur = append(cur, line)
		if code && strings.HasSuffix(trimmed, ";") {
			sql := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(strings.Join(cur, "\n")), ";"))
			out = append(out, Statement{SQL: sql, Requires: req, When: when})
			cur, req, when, code = nil, ServerVersion{}, "", false
		}
	}
	if code {
		return nil, errors.New("last statement does not end with ';'")
	}
	return out, sc.Err()
}

// MigrateResult says what Migrate did.
type MigrateResult struct {
	Server ServerVersion
	// Applied are the migrations (file names) that ran statements now.
	Applied []string
	// Waiting counts statements that need a newer server than this one.
	Waiting int
}

const createSchemaMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version        UInt32,
    name           String,
    applied_at     DateTime,
    server_version String,
    waiting        Array(UInt16)
) ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version`

// Migrate brings the schema of the connection's database up to date: it
// applies, in order, every embedded migration not yet recorded in
// schema_migrations, and the statements of recorded ones that waited for a
// newer server than was there when they were applied. A statement that
// fails stops Migrate with an error naming it; the migration is recorded
// only once all of its statements that the server supports have run.
func Migrate(ctx context.Context, conn driver.Conn) (MigrateResult, error) {
	migrations, err := Migrations()
	if err != nil {
		return MigrateResult{}, err
	}
	return migrate(ctx, conn, migrations)
}

func migrate(ctx context.Context, conn driver.Conn, migrations []Migration) (MigrateResult, error) {
	var res MigrateResult
	var version string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		return res, fmt.Errorf("audit: migrate: server version: %w", err)
	}
	server, err := ParseServerVersion(version)
	if err != nil {
		return res, err
	}
	res.Server = server
	if err := conn.Exec(ctx, createSchemaMigrations); err != nil {
		return res, fmt.Errorf("audit: migrate: create schema_migrations: %w", err)
	}
	done, err := appliedMigrations(ctx, conn)
	if err != nil {
		return res, err
	}
	for _, m := range migrations {
		// todo are the statement indexes to run: all of a new migration,
		// or those of an applied one that waited for a newer server.
		var todo []int
		if waiting, ok := done[m.Version]; ok {
			todo = waiting
		} else {
			todo = make([]int, len(m.Statements))
			for i := range todo {
				todo[i] = i
			}
		}
		var ran bool
		var waiting []uint16
		for _, i := range todo {
			if i >= len(m.Statements) {
				continue // recorded by a build with more statements
			}
			st := m.Statements[i]
			if !server.AtLeast(st.Requires) {
				waiting = append(waiting, uint16(i))
				continue
			}
			did, err := runStatement(ctx, conn, st)
			if err != nil {
				return res, fmt.Errorf("audit: migration %s, statement %d: %w", m.Name, i+1, err)
			}
			ran = ran || did
		}
		res.Waiting += len(waiting)
		if _, ok := done[m.Version]; ok && !ran {
			continue
		}
		if err := recordMigration(ctx, conn, m, version, waiting); err != nil {
			return res, err
		}
		if ran {
			res.Applied = append(res.Applied, m.Name)
		}
	}
	return res, nil
}

// runStatement runs st unless its When query says it is done, and reports
// whether it ran. A guarded statement that fails once its step is done was
// beaten to it by another migrator (two RENAMEs of one table, say): that is
// no error. One that fails with UNKNOWN_TABLE while its step is still to do
// may have run between the two halves of another migrator's RENAME (the
// server renames one table after the other: 006's copy found no decisions
// table so in TestMigrateConcurrently): it is tried again, for up to
// guardRetries.
func runStatement(ctx context.Context, conn driver.Conn, st Statement) (bool, error) {
	if st.When != "" {
		todo, err := holds(ctx, conn, st.When)
		if err != nil || !todo {
			return false, err
		}
	}
	done := errors.New("done by another migrator")
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := conn.Exec(ctx, st.SQL)
		if err == nil || st.When == "" {
			return struct{}{}, backoff.Permanent(err)
		}
		if todo, werr := holds(ctx, conn, st.When); werr == nil && !todo {
			return struct{}{}, backoff.Permanent(done)
		}
		return struct{}{}, retryUnknownTable(err)
	}, backoff.WithBackOff(retry.NewBackOff(10*time.Millisecond, 500*time.Millisecond)), backoff.WithMaxElapsedTime(guardRetries))
	if errors.Is(err, done) {
		return false, nil
	}
	return err == nil, err
}

// holds reports whether query returns a row. On 18.16 a query on
// system.tables fails with UNKNOWN_TABLE when another migrator renames a
// table of the database while it runs (TestMigrateConcurrently saw it in
// one run in ten); such a failure is tried again, for up to guardRetries.
func holds(ctx context.Context, conn driver.Conn, query string) (bool, error) {
	row, err := backoff.Retry(ctx, func() (bool, error) {
		rows, err := conn.Query(ctx, query)
		if err != nil {
			return false, retryUnknownTable(err)
		}
		defer rows.Close()
		row := rows.Next()
		return row, retryUnknownTable(rows.Err())
	}, backoff.WithBackOff(retry.NewBackOff(10*time.Millisecond, 500*time.Millisecond)), backoff.WithMaxElapsedTime(guardRetries))
	if err != nil {
		return false, fmt.Errorf("when %q: %w", query, err)
	}
	return row, nil
}

// guardRetries bounds the retries of a "-- when:" query: a rename is over
// in milliseconds once it has its locks.
const guardRetries = 5 * time.Second

// codeUnknownTable is ClickHouse's UNKNOWN_TABLE error code.
const codeUnknownTable = 60

// retryUnknownTable marks every error but UNKNOWN_TABLE as permanent.
func retryUnknownTable(err error) error {
	var exc *clickhouse.Exception
	if err == nil || errors.As(err, &exc) && exc.Code == codeUnknownTable {
		return err
	}
	return backoff.Permanent(err)
}

// appliedMigrations returns, for each recorded migration version, the
// statements that still wait for a newer server. Of several records of one
// version (concurrent migrators, later upgrades) the one with the fewest
// waiting statements is current: waiting statements only ever run.
func appliedMigrations(ctx context.Context, conn driver.Conn) (map[int][]int, error) {
	rows, err := conn.Query(ctx, `SELECT version, argMin(waiting, length(waiting)) FROM schema_migrations GROUP BY version`)
	if err != nil {
		return nil, fmt.Errorf("audit: migrate: read schema_migrations: %w", err)
	}
	defer rows.Close()
	done := map[int][]int{}
	for rows.Next() {
		var version uint32
		var waiting []uint16
		if err := rows.Scan(&version, &waiting); err != nil {
			return nil, fmt.Errorf("audit: migrate: read schema_migrations: %w", err)
		}
		idx := make([]int, len(waiting))
		for i, w := range waiting {
			idx[i] = int(w)
		}
		slices.Sort(idx)
		done[int(version)] = idx
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: migrate: read schema_migrations: %w", err)
	}
	return done, nil
}

func recordMigration(ctx context.Context, conn driver.Conn, m Migration, server string, waiting []uint16) error {
	// Never Exec an INSERT with values on the native protocol: against 18.16
	// it hangs until the context ends. Batches work everywhere.
	b, err := conn.PrepareBatch(ctx, "INSERT INTO schema_migrations (version, name, applied_at, server_version, waiting)")
	if err != nil {
		return fmt.Errorf("audit: migrate: record %s: %w", m.Name, err)
	}
	if waiting == nil {
		waiting = []uint16{}
	}
	if err := b.Append(uint32(m.Version), m.Name, time.Now(), server, waiting); err != nil {
		_ = b.Abort()
		return fmt.Errorf("audit: migrate: record %s: %w", m.Name, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("audit: migrate: record %s: %w", m.Name, err)
	}
	return nil
}
