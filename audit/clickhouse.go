package audit

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/cenkalti/backoff/v5"

	"github.com/triage-dev/triage/internal/retry"
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
	return open(ctx, opts)
}

func open(ctx context.Context, opts *clickhouse.Options) (driver.Conn, error) {
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
	return createDatabase(ctx, *opts)
}

// createDatabase takes opts by value: it connects to the default database.
func createDatabase(ctx context.Context, opts clickhouse.Options) error {
	db := opts.Auth.Database
	if db == "" {
		return nil
	}
	opts.Auth.Database = ""
	conn, err := clickhouse.Open(&opts)
	if err != nil {
		return fmt.Errorf("audit: clickhouse: %w", err)
	}
	defer conn.Close()
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+quoteIdent(db)); err != nil {
		return fmt.Errorf("audit: clickhouse %v: create database %s: %w", opts.Addr, db, err)
	}
	return nil
}

// CheckDSN reports whether dsn parses as Open and OpenMigrated read it. A
// process that waits for its server (OpenMigrated) calls it first, so that
// a DSN that can never work fails start-up at once.
func CheckDSN(dsn string) error {
	_, err := parseDSN(dsn)
	return err
}

// ConnectOptions configure OpenMigrated. The zero value of every field
// means the default written in its comment.
type ConnectOptions struct {
	// MinBackoff and MaxBackoff bound the wait between attempts to reach
	// the server: it starts at MinBackoff and doubles after each failure up
	// to MaxBackoff, jittered (internal/retry). Defaults 500 ms and 10 s.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives the first failed attempt as a warning, later ones at
	// debug level, and the success after failures. Default slog.Default().
	Logger *slog.Logger
	// OnUnreachable, when set, is called with the error of each attempt
	// that found the server unreachable, before the wait for the next one:
	// for a readiness detail or a metric.
	OnUnreachable func(err error)
}

// ErrUnreachable is OpenMigrated's error when its context ended before the
// server could be reached; the error also wraps the context's cause and
// the last attempt's error.
var ErrUnreachable = errors.New("audit: clickhouse unreachable")

// OpenMigrated creates dsn's database if need be, applies the schema
// migrations (Migrate) and returns a connection for the sink. A server that
// cannot be reached (refused, reset, timed out: see Unreachable) is waited
// for, attempt after attempt, until ctx ends; there is no other bound, so
// that a process started during a ClickHouse outage stores its records once
// the server is back. Any other error is returned at once: a DSN that does
// not parse, a server that refuses the user, a migration it rejects.
//
// The start-up connections end with ctx, so a caller that stops while the
// server hangs (accepts connections, never answers) gets OpenMigrated back
// at once, not after the dial timeout. The connection returned does not
// depend on ctx.
func OpenMigrated(ctx context.Context, dsn string, o ConnectOptions) (driver.Conn, MigrateResult, error) {
	opts, err := parseDSN(dsn)
	if err != nil {
		return nil, MigrateResult{}, err
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	attempts := 0
	var last, permanent error
	type opened struct {
		conn driver.Conn
		res  MigrateResult
	}
	r, err := backoff.Retry(ctx, func() (opened, error) {
		attempts++
		conn, res, err := openMigratedOnce(ctx, opts)
		// An attempt that ctx cut short (the driver answers ctx.Err() or
		// a closed connection) is not a verdict on the server.
		if err != nil && ctx.Err() == nil && !Unreachable(err) {
			permanent = err
			return opened{}, backoff.Permanent(err)
		}
		last = err
		return opened{conn, res}, err
	},
		backoff.WithBackOff(retry.NewBackOff(o.MinBackoff, o.MaxBackoff)),
		backoff.WithMaxElapsedTime(0), // bounded by ctx: the outage may be long
		backoff.WithNotify(func(err error, wait time.Duration) {
			level := slog.LevelDebug
			if attempts == 1 {
				level = slog.LevelWarn
			}
			o.Logger.Log(ctx, level, "clickhouse unreachable; retrying until it answers (later failures are logged at debug level)",
				"server", opts.Addr, "attempt", attempts, "backoff", wait, "err", err)
			if o.OnUnreachable != nil {
				o.OnUnreachable(err)
			}
		}),
	)
	switch {
	case err == nil:
		if attempts > 1 {
			o.Logger.Info("clickhouse reachable", "server", opts.Addr, "attempts", attempts)
		}
		return r.conn, r.res, nil
	case permanent != nil:
		return nil, MigrateResult{}, permanent
	}
	// Without a permanent error, only ctx ends the retries.
	return nil, MigrateResult{}, fmt.Errorf("%w: %v after %d attempts: %w (last: %w)", ErrUnreachable, opts.Addr, attempts, context.Cause(ctx), last)
}

// openMigratedOnce is one attempt of OpenMigrated.
func openMigratedOnce(ctx context.Context, opts *clickhouse.Options) (driver.Conn, MigrateResult, error) {
	startup := boundTo(ctx, *opts)
	if err := createDatabase(ctx, startup); err != nil {
		return nil, MigrateResult{}, err
	}
	mconn, err := open(ctx, &startup)
	if err != nil {
		return nil, MigrateResult{}, err
	}
	defer mconn.Close()
	res, err := Migrate(ctx, mconn)
	if err != nil {
		return nil, MigrateResult{}, err
	}
	conn, err := open(ctx, opts)
	if err != nil {
		return nil, MigrateResult{}, err
	}
	return conn, res, nil
}

// boundTo returns opts with a dialer whose connections are closed when ctx
// ends. The driver's own dialer ignores the context, and its handshake waits
// for the dial timeout; a pooled connection outlives the call that dialled
// it, so only start-up connections, closed when start-up is done, are bound.
func boundTo(ctx context.Context, opts clickhouse.Options) clickhouse.Options {
	dialer := &net.Dialer{Timeout: opts.DialTimeout}
	tlsConfig := opts.TLS
	opts.DialContext = func(dctx context.Context, addr string) (net.Conn, error) {
		var c net.Conn
		var err error
		if tlsConfig != nil {
			c, err = (&tls.Dialer{NetDialer: dialer, Config: tlsConfig}).DialContext(dctx, "tcp", addr)
		} else {
			c, err = dialer.DialContext(dctx, "tcp", addr)
		}
		if err != nil {
			return nil, err
		}
		return &boundConn{Conn: c, stop: context.AfterFunc(ctx, func() { c.Close() })}, nil
	}
	return opts
}

type boundConn struct {
	net.Conn
	stop func() bool
}

func (c *boundConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// Unreachable reports whether err says that the ClickHouse server could not
// be reached or stopped answering (refused, reset, closed, timed out), as
// opposed to an answer from it (a *clickhouse.Exception: bad credentials,
// a statement it rejects) or a fault of the caller's.
func Unreachable(err error) bool {
	if err == nil {
		return false
	}
	var exc *clickhouse.Exception
	if errors.As(err, &exc) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, clickhouse.ErrAcquireConnTimeout)
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
