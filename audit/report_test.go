package audit

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/triage-dev/triage/deploy"
)

func TestParseQuery(t *testing.T) {
	q, err := ParseQuery("q", `-- title: A query
-- param: id String
-- param: n UInt32 = 10
-- param: empty String =
SELECT {id:String}, {n:UInt32}, {empty:String}, '{not a placeholder}'
`)
	if err != nil {
		t.Fatal(err)
	}
	if q.Title != "A query" || len(q.Params) != 3 || q.Params[0].HasDefault || !q.Params[1].HasDefault || q.Params[1].Default != "10" || !q.Params[2].HasDefault {
		t.Fatalf("parsed %+v", q)
	}
	for name, src := range map[string]string{
		"no title":        "SELECT 1",
		"undeclared":      "-- title: t\nSELECT {x:String}",
		"type mismatch":   "-- title: t\n-- param: x String\nSELECT {x:UInt8}",
		"unknown type":    "-- title: t\n-- param: x Map\nSELECT 1",
		"bad default":     "-- title: t\n-- param: x UInt8 = 300\nSELECT {x:UInt8}",
		"negative UInt64": "-- title: t\n-- param: x UInt64 = -1\nSELECT {x:UInt64}",
	} {
		if _, err := ParseQuery(name, src); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRender(t *testing.T) {
	q, err := ParseQuery("q", "-- title: t\n-- param: id String\n-- param: n UInt64 = 5\n-- param: at DateTime = 0\nSELECT {id:String}, {n:UInt64}, {at:DateTime}, {id:String}")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		values map[string]string
		want   string
	}{
		{map[string]string{"id": "abc"}, `SELECT 'abc', 5, toDateTime(0), 'abc'`},
		{map[string]string{"id": `x' OR 1=1 --`, "n": "7"}, `SELECT 'x\' OR 1=1 --', 7, toDateTime(0), 'x\' OR 1=1 --'`},
		{map[string]string{"id": `a\'b`}, `SELECT 'a\\\'b', 5, toDateTime(0), 'a\\\'b'`},
		{map[string]string{"id": "line\nbreak\x00"}, `SELECT 'line\nbreak\x00', 5, toDateTime(0), 'line\nbreak\x00'`},
		{map[string]string{"id": "", "at": "2026-03-01T00:00:00Z"}, `SELECT '', 5, toDateTime(1772323200), ''`},
	} {
		got, err := q.Render(tc.values)
		if err != nil {
			t.Errorf("%q: %v", tc.values, err)
			continue
		}
		if got = got[strings.Index(got, "SELECT"):]; got != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.values, got, tc.want)
		}
	}
	if _, err := q.Render(nil); !errors.Is(err, ErrMissingParam) {
		t.Errorf("no id: %v, want ErrMissingParam", err)
	}
	for _, v := range []map[string]string{
		{"id": "x", "n": "1; DROP TABLE audit"},
		{"id": "x", "n": "-1"},
		{"id": "x", "n": "1e3"},
		{"id": "x", "at": "yesterday"},
	} {
		if _, err := q.Render(v); err == nil || errors.Is(err, ErrMissingParam) {
			t.Errorf("%q: %v, want a type error", v, err)
		}
	}
}

// TestStringLiteralsRoundTrip sends awkward strings through Render to the
// server and checks it reads back exactly what was meant.
func TestStringLiteralsRoundTrip(t *testing.T) {
	conn, _ := migratedDB(t)
	q, err := ParseQuery("q", "-- title: t\n-- param: s String\nSELECT {s:String}")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"", "plain", `it's`, `back\slash`, `\'`, "'; DROP TABLE audit; --", "tab\tnew\nline\r\x00\x01\x7f", "ünïcödé ✓", "{s:String}"} {
		sql, err := q.Render(map[string]string{"s": s})
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if err := conn.QueryRow(t.Context(), sql).Scan(&got); err != nil {
			t.Fatalf("%q: %v\n%s", s, err, sql)
		}
		if got != s {
			t.Errorf("sent %q, read back %q", s, got)
		}
	}
}

// TestDashboardQueries runs every query under deploy/ against the migrated
// schema, empty and with rows.
func TestDashboardQueries(t *testing.T) {
	queries, err := LoadQueries(deploy.Queries, deploy.QueriesDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(queries) != 10 {
		t.Errorf("%d queries, want 10", len(queries))
	}
	conn, _ := migratedDB(t)
	var out bytes.Buffer
	if err := Report(t.Context(), conn, queries, map[string]string{}, &out); err != nil {
		t.Fatalf("empty tables: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "(skipped: audit: query 08_event_trail: missing parameter event_id") {
		t.Errorf("the trail without an event_id is not skipped:\n%s", out.String())
	}
	recs := linkedRecords(2, 5)
	if err := insertAudit(t.Context(), conn, recs); err != nil {
		t.Fatal(err)
	}
	tenant, id, err := ExampleEvent(t.Context(), conn)
	if err != nil || id == "" || tenant == "" {
		t.Fatalf("example event: %q/%q, %v", tenant, id, err)
	}
	out.Reset()
	if err := Report(t.Context(), conn, queries, map[string]string{"tenant_id": tenant, "event_id": id, "threshold": "0"}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())
	i := slices.IndexFunc(recs, func(r Record) bool { return r.EventID == id })
	if i < 0 || !strings.Contains(out.String(), ID(recs[i].TenantID, id, KindDecision, 0)) {
		t.Errorf("the trail of %s does not show its decision record", id)
	}
}
