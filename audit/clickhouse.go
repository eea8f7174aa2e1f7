package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The driver is github.com/ClickHouse/clickhouse-go/v2 pinned at v2.26.0:
// newer versions fail every batch insert against Debian's 18.16 server.
// Against 18.16 every INSERT goes through PrepareBatch/Append/Send; an Exec
// of an INSERT with values hangs on the native protocol.

// dialTimeout replaces the driver's 30 s default when the DSN sets none, so
// that an unreachable server is reported (and retried) promptly.
const dialTimeout = 5 * time.Second

// Open connects to the ClickHouse server of dsn (clickhouse://host:9000/db
// ?dial_timeout=…, as clickhouse-go parses it) over the native protocol and
// checks that it answers. The DSN's database must exist; see
// CreateDatabase.
func Open(ctx context.Context, dsn string) (driver.Conn, error) {
	opts, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("audit: clickhouse: %w", err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("audit: clickhouse %v: %w", opts.Addr, err)
	}
	return conn, nil
}

// CreateDatabase creates the database dsn names, if it does not exist,
// through a connection to the user's default database.
func CreateDatabase(ctx context.Context, dsn string) error {
	opts, err := parseDSN(dsn)
	if err != nil {
		return err
	}
	db := opts.Auth.Database
	if db == "" {
		return nil
	}
	opts.Auth.Database = ""
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return fmt.Errorf("audit: clickhouse: %w", err)
	}
	defer conn.Close()
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+quoteIdent(db)); err != nil {
		return fmt.Errorf("audit: clickhouse %v: create database %s: %w", opts.Addr, db, err)
	}
	return nil
}

func parseDSN(dsn string) (*clickhouse.Options, error) {
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("audit: clickhouse DSN: %w", err)
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = dialTimeout
	}
	return opts, nil
}

// quoteIdent quotes a ClickHouse identifier with backquotes.
func quoteIdent(s string) string {
	return "`" + escapeString(s, '`') + "`"
}
