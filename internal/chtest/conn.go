package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// connectTimeout bounds dialling and the first ping in Open, and each
// statement FreshDatabase runs.
const connectTimeout = 10 * time.Second

// dropTimeout bounds FreshDatabase's drop at the test's end.
const dropTimeout = time.Minute

// Open connects to dsn over the native protocol, pings the server, and
// closes the connection in t.Cleanup. A DSN without dial_timeout gets
// connectTimeout instead of the driver's 30 s.
//
// On 18.16 write with PrepareBatch, Append and Send: Exec of an INSERT with
// inline VALUES or arguments hangs on the native protocol until its context
// expires.
func Open(t testing.TB, dsn string) driver.Conn {
	t.Helper()
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("chtest: parse DSN %q: %v", dsn, err)
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = connectTimeout
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatalf("chtest: open %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("chtest: ping %s: %v", dsn, err)
	}
	return conn
}

// FreshDatabase creates a database no other test uses, named after the test
// with a random suffix, and drops it in t.Cleanup. Tests qualify their tables
// with it (db.table), so tests sharing one server never see each other's
// data.
func FreshDatabase(t testing.TB, conn driver.Conn) string {
	t.Helper()
	name := databaseName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if err := conn.Exec(ctx, "CREATE DATABASE `"+name+"`"); err != nil {
		t.Fatalf("chtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run. A drop
		// waits for the server to let go of every part of every table:
		// on two cores under the whole suite, a chaos run's database
		// took longer than connectTimeout.
		ctx, cancel := context.WithTimeout(context.Background(), dropTimeout)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil && !t.Failed() {
			t.Errorf("chtest: drop database %s: %v", name, err)
		}
	})
	return name
}

// FreshDSN is FreshDatabase on the test server (Server): it returns the
// DSN naming the fresh database, and a connection to it.
func FreshDSN(t testing.TB) (string, driver.Conn) {
	t.Helper()
	server := Server(t)
	db := FreshDatabase(t, Open(t, server))
	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("chtest: DSN %q: %v", server, err)
	}
	u.Path = "/" + db
	return u.String(), Open(t, u.String())
}

// databaseName turns a test name into an identifier: test_, the name's
// letters, digits and underscores (at most 40), and 8 random hex digits.
func databaseName(test string) string {
	var b strings.Builder
	b.WriteString("test_")
	for _, r := range test {
		if b.Len() >= 45 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	var suffix [4]byte
	rand.Read(suffix[:])
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(suffix[:]))
	return b.String()
}
