package audit

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/triage-dev/triage/internal/chtest"
)

// waitTimeout bounds every wait in these tests; it is a hang guard, not a
// performance assertion.
const waitTimeout = 90 * time.Second

// migratedDB returns a connection to a fresh, migrated database of the
// shared test server, and its DSN.
func migratedDB(t testing.TB) (driver.Conn, string) {
	t.Helper()
	server := chtest.Server(t)
	db := chtest.FreshDatabase(t, chtest.Open(t, server))
	dsn := withDatabase(t, server, db)
	conn := chtest.Open(t, dsn)
	if _, err := Migrate(t.Context(), conn); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return conn, dsn
}

// withDatabase returns dsn naming database db.
func withDatabase(t testing.TB, dsn, db string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("DSN %q: %v", dsn, err)
	}
	u.Path = "/" + db
	return u.String()
}

// linkedRecords builds chains×perChain records linked as the pipeline
// links them, chain by chain.
func linkedRecords(chains, perChain int) []Record {
	c := NewChains()
	var out []Record
	at := time.Now()
	for ch := range chains {
		name := fmt.Sprintf("events.transactions/%d", ch)
		for i := range perChain {
			ev, tenant := fmt.Sprintf("ev-%d-%d", ch, i), fmt.Sprintf("tenant-%d", i%3)
			r := &Record{
				AuditID: ID(tenant, ev, KindDecision, 0), Kind: KindDecision, EventID: ev, Type: "transaction",
				TenantID: tenant, UserID: "u1", Key: "acct-1", Path: "rule", RuleID: "default",
				Outcome: "allow", Status: StatusOK, LatencyMS: 0.125 * float64(i+1), At: at.Add(time.Duration(i) * time.Millisecond),
				Topic: "events.transactions", Partition: int32(ch), Offset: int64(i), Consumer: "test-1",
			}
			c.Link(name, []*Record{r}, func() {})
			out = append(out, *r)
		}
	}
	return out
}

// await polls cond (a ClickHouse query, say) until it holds.
func await(t testing.TB, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.After(waitTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("waited %s for %s", waitTimeout, what)
		}
	}
}

// awaitMutations waits until every mutation of the database's tables is
// done.
func awaitMutations(t testing.TB, conn driver.Conn) {
	t.Helper()
	await(t, "mutations to finish", func() (bool, error) {
		var pending uint64
		err := conn.QueryRow(context.Background(),
			"SELECT count() FROM system.mutations WHERE database = currentDatabase() AND is_done = 0").Scan(&pending)
		return pending == 0, err
	})
}
