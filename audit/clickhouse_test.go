package audit_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/internal/chtest"
	"github.com/triage-dev/triage/internal/testrun"
)

var quiet = slog.New(slog.DiscardHandler)

// TestOpenMigratedWaitsForServer starts OpenMigrated against a stopped
// server: it reports the server unreachable and keeps trying, and once the
// server starts it creates the database, migrates and connects.
func TestOpenMigratedWaitsForServer(t *testing.T) {
	in := chtest.Dedicated(t)
	dsn := audit.WithDatabase(t, in.DSN(), "waited")
	in.Stop(t)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute) // a hang guard
	defer cancel()
	unreachable := make(chan error, 100)
	type result struct {
		res audit.MigrateResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		conn, res, err := audit.OpenMigrated(ctx, dsn, audit.ConnectOptions{
			MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Logger: quiet,
			OnUnreachable: func(err error) {
				select {
				case unreachable <- err:
				default:
				}
			},
		})
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close()
		}
		done <- result{res, err}
	}()
	select {
	case err := <-unreachable:
		if !audit.Unreachable(err) {
			t.Errorf("OnUnreachable got %v, which Unreachable does not accept", err)
		}
	case r := <-done:
		t.Fatalf("OpenMigrated returned while the server was down: %v", r.err)
	}
	in.Start(t)
	r := <-done
	if r.err != nil {
		t.Fatalf("after the server started: %v", r.err)
	}
	if len(r.res.Applied) == 0 {
		t.Errorf("no migration applied to the new database: %+v", r.res)
	}
}

// TestOpenMigratedFailsFast: what waiting cannot mend is returned at once,
// without a retry: a DSN that does not parse, a user the server refuses.
func TestOpenMigratedFailsFast(t *testing.T) {
	u, err := url.Parse(chtest.Server(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("no_such_user", "x")
	for _, tc := range []struct{ name, dsn, want string }{
		{"bad DSN", "clickhouse://127.0.0.1:9000/db?dial_timeout=bogus", "clickhouse DSN"},
		{"unknown user", u.String(), "no_such_user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // a hang guard
			defer cancel()
			_, _, err := audit.OpenMigrated(ctx, tc.dsn, audit.ConnectOptions{Logger: quiet,
				OnUnreachable: func(err error) { t.Errorf("retried after %v", err) },
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, audit.ErrUnreachable) || ctx.Err() != nil {
				t.Fatalf("err = %v, want one at once mentioning %q", err, tc.want)
			}
		})
	}
	if err := audit.CheckDSN("clickhouse://127.0.0.1:9000/db?dial_timeout=bogus"); err == nil {
		t.Error("CheckDSN accepts a bad dial_timeout")
	}
}

// TestOpenMigratedStopsWithContext: a wait for an unreachable server ends
// with its context, saying why and what the last attempt met.
func TestOpenMigratedStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, _, err := audit.OpenMigrated(ctx, "clickhouse://"+testrun.FreeAddr(t)+"/db", audit.ConnectOptions{Logger: quiet,
		OnUnreachable: func(error) { cancel() },
	})
	if !errors.Is(err, audit.ErrUnreachable) || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("err = %v, want ErrUnreachable, context.Canceled and the refusal", err)
	}
}

func TestUnreachable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{refused, true},
		{fmt.Errorf("audit: clickhouse: create database: %w", refused), true},
		{fmt.Errorf("handshake: %w", io.EOF), true},
		{os.ErrDeadlineExceeded, true},
		{clickhouse.ErrAcquireConnTimeout, true},
		{fmt.Errorf("audit: migrate: %w", &clickhouse.Exception{Code: 516, Name: "AUTHENTICATION_FAILED"}), false},
		{errors.New("audit: migration 001_x.sql has no statements"), false},
	} {
		if got := audit.Unreachable(tc.err); got != tc.want {
			t.Errorf("Unreachable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
