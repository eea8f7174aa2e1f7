package audit

import (
	"context"
	"errors"
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

// codeUnknownDatabase is ClickHouse's UNKNOWN_DATABASE error code.
const codeUnknownDatabase = 81

// Open connects to the ClickHouse server of dsn (clickhouse://host:9000/db
// ?dial_timeout=…, as clickhouse-go parses it) over the native protocol,
// creating the DSN's database if it does not exist yet, and checks that
// the server answers.
func Open(ctx context.Context, dsn string) (driver.Conn, error) {
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("audit: clickhouse DSN: %w", err)
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = dialTimeout
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("audit: clickhouse: %w", err)
	}
	err = conn.Ping(ctx)
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && ex.Code == codeUnknownDatabase && opts.Auth.Database != "" {
		err = createDatabase(ctx, *opts)
		if err == nil {
			err = conn.Ping(ctx)
		}
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("audit: clickhouse %v: %w", opts.Addr, err)
	}
	return conn, nil
}

// createDatabase creates opts' database through a connection to the user's
// default database.
func createDatabase(ctx context.Context, opts clickhouse.Options) error {
	db := opts.Auth.Database
	opts.Auth.Database = ""
	conn, err := clickhouse.Open(&opts)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+quoteIdent(db))
}

// quoteIdent quotes a ClickHouse identifier with backquotes.
func quoteIdent(s string) string {
	return "`" + escapeString(s, '`') + "`"
}
