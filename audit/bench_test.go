package audit

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// benchBatches are the batch sizes benchmarked: the default BatchSize
// (5000) and one each side.
var benchBatches = []int{1000, 5000, 20000}

// benchRecords returns n linked records shaped like sampling attempts
// (summaries included) and their audit topic values.
func benchRecords(b testing.TB, n int) ([]Record, [][]byte) {
	b.Helper()
	recs := linkedRecords(4, n/4)
	values := make([][]byte, len(recs))
	for i := range recs {
		r := &recs[i]
		r.Kind, r.Path, r.Mode = KindSampling, "sampled", "pull"
		r.ModelRequested, r.ModelAnswered = "claude-haiku", "claude-haiku-4-5"
		r.InputTokens, r.OutputTokens = 350, 24
		r.RequestSummary = strings.Repeat("amount=120.00 currency=EUR country=FR ", 5)
		r.ResponseSummary = `{"outcome":"review","reason":"velocity spike on a new device"}`
		r.Hash = r.ComputeHash() // the chain no longer links; the bench does not care
		v, err := json.Marshal(r)
		if err != nil {
			b.Fatal(err)
		}
		values[i] = v
	}
	return recs, values
}

// rowValues is r's values in the order of cols, as a row-by-row
// driver.Batch.Append takes them.
func rowValues[R any](cols []column[R], r *R) []any {
	vals := make([]any, len(cols))
	for i, c := range cols {
		vals[i] = c.value(r)
	}
	return vals
}

// benchRows is how many audit rows each run of BenchmarkSinkInsert and
// BenchmarkSinkConsume stores, rounded down to a multiple of the batch:
// many inserts, since one insert's time varies by several times on a
// shared machine (ClickHouse's merges, other load), and six batches of the
// largest size, since the sink's first batch is fetched and decoded before
// any insert can overlap with it.
var benchRows = flag.Int("sink-rows", 120000, "BenchmarkSinkInsert and BenchmarkSinkConsume: audit rows each run stores")

// rowsIn is -sink-rows rounded down to a multiple of batch.
func rowsIn(b *testing.B, batch int) int {
	total := *benchRows / batch * batch
	if total == 0 {
		b.Fatalf("-sink-rows %d is less than one batch of %d", *benchRows, batch)
	}
	return total
}

// BenchmarkSinkInsert is the sink's insert path without Kafka: -sink-rows
// records of the audit topic's JSON, batch by batch, decoded into the
// batch's rows, then PrepareBatch, the columns appended, Send. Each
// iteration also inserts the same rows in batches of the same size with a
// bare row-by-row PrepareBatch/Append/Send (as BenchmarkRawInsert does):
// the two alternate (see alternate), so that ClickHouse's background
// merges and the machine's other load weigh on both, and sink/raw is the
// figure to compare.
func BenchmarkSinkInsert(b *testing.B) {
	for _, n := range benchBatches {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) { benchSinkInsert(b, n) })
	}
}

func benchSinkInsert(b *testing.B, n int) {
	total := rowsIn(b, n)
	conn, _ := migratedDB(b)
	_, values := benchRecords(b, total)
	decoded := make([]Record, 0, n)
	sink := func() time.Duration {
		start := time.Now()
		for batch := range slices.Chunk(values, n) {
			decoded = decoded[:0]
			for _, v := range batch {
				decoded = append(decoded, Record{})
				if err := decodeAudit(v, &decoded[len(decoded)-1]); err != nil {
					b.Fatal(err)
				}
			}
			if err := insertAudit(b.Context(), conn, decoded); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	raw := func() time.Duration { return rawInsertBatches(b, conn, values, n) }
	sinkTime, rawTime := alternate(b, conn, sink, raw)
	reportAgainstRaw(b, total, sinkTime, rawTime)
}

// alternate runs sink and raw once each per iteration, in turn first, after
// one untimed raw run, each into emptied tables: neither pays for the
// connection's and the table's first insert, or always comes just after
// the other's inserts. It returns the time each took in all.
func alternate(b *testing.B, conn driver.Conn, sink, raw func() time.Duration) (sinkTime, rawTime time.Duration) {
	// The sink starts from a collected heap as each raw batch does.
	sink = func(run func() time.Duration) func() time.Duration {
		return func() time.Duration {
			runtime.GC()
			return run()
		}
	}(sink)
	raw()
	for i := 0; b.Loop(); i++ {
		emptyTables(b, conn)
		if i%2 == 0 {
			sinkTime += sink()
			emptyTables(b, conn)
			rawTime += raw()
		} else {
			rawTime += raw()
			emptyTables(b, conn)
			sinkTime += sink()
		}
	}
	dropDatabase(b, conn)
	return sinkTime, rawTime
}

// dropDatabase drops conn's database with a deadline of its own: after
// many inserts, with parts still merging, 18.16 may take longer to drop
// it than the test cleanup's DROP (chtest) waits.
func dropDatabase(b *testing.B, conn driver.Conn) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.Context()), waitTimeout)
	defer cancel()
	var db string
	if err := conn.QueryRow(ctx, "SELECT currentDatabase()").Scan(&db); err != nil {
		b.Fatal(err)
	}
	if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(db)); err != nil {
		b.Fatalf("drop database %s: %v", db, err)
	}
}

// emptyTables truncates the database's tables (the audit table and those
// its materialized views fill) between runs, untimed: every run inserts
// into empty tables rather than behind the merges of the runs before it,
// and a long benchmark leaves no gigabytes for its cleanup to drop.
func emptyTables(b *testing.B, conn driver.Conn) {
	b.Helper()
	ctx := b.Context()
	rows, err := conn.Query(ctx, `SELECT name FROM system.tables
		WHERE database = currentDatabase() AND engine LIKE '%MergeTree' AND name != 'schema_migrations'`)
	if err != nil {
		b.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			b.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		b.Fatal(err)
	}
	for _, t := range tables {
		if err := conn.Exec(ctx, "TRUNCATE TABLE "+quoteIdent(t)); err != nil {
			b.Fatalf("truncate %s: %v", t, err)
		}
	}
}

// reportAgainstRaw reports the rows/s of the sink and of the bare insert,
// each having stored rows rows per iteration in the time given, and their
// ratio.
func reportAgainstRaw(b *testing.B, rows int, sinkTime, rawTime time.Duration) {
	sinkRate := float64(b.N*rows) / sinkTime.Seconds()
	rawRate := float64(b.N*rows) / rawTime.Seconds()
	b.ReportMetric(sinkRate, "sink_rows/s")
	b.ReportMetric(rawRate, "raw_rows/s")
	b.ReportMetric(sinkRate/rawRate, "sink/raw")
	b.ReportMetric(0, "ns/op") // the rates are the figures
}

// rawInsertBatches inserts the records of values in batches of size with
// a bare row-by-row PrepareBatch/Append/Send of their column values, and
// returns how long the inserts took. Each batch's rows are built first,
// untimed, and the garbage collector is run before the clock starts: a
// collection of the boxed values' allocation would otherwise run during
// the insert, and all of them kept for the benchmark would be a heap that
// every collection during the sink's runs scans too.
func rawInsertBatches(b *testing.B, conn driver.Conn, values [][]byte, size int) time.Duration {
	b.Helper()
	var took time.Duration
	rows := make([][]any, 0, size)
	for batchValues := range slices.Chunk(values, size) {
		rows = rows[:0]
		for _, v := range batchValues {
			var r Record
			if err := decodeAudit(v, &r); err != nil {
				b.Fatal(err)
			}
			rows = append(rows, rowValues(auditColumns, &r))
		}
		runtime.GC()
		start := time.Now()
		batch, err := conn.PrepareBatch(b.Context(), insertAuditSQL)
		if err != nil {
			b.Fatal(err)
		}
		for _, row := range rows {
			if err := batch.Append(row...); err != nil {
				b.Fatal(err)
			}
		}
		if err := batch.Send(); err != nil {
			b.Fatal(err)
		}
		took += time.Since(start)
	}
	return took
}

// BenchmarkRawInsert inserts the same rows, already as column values, with
// a bare PrepareBatch/Append/Send: the floor under the sink's figure.
// BenchmarkSinkInsert and BenchmarkSinkConsume measure it alternately
// with the sink, which is the comparison to read.
func BenchmarkRawInsert(b *testing.B) {
	for _, n := range benchBatches {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) { benchRawInsert(b, n) })
	}
}

func benchRawInsert(b *testing.B, n int) {
	conn, _ := migratedDB(b)
	_, values := benchRecords(b, n)
	var took time.Duration
	for b.Loop() {
		took += rawInsertBatches(b, conn, values, n)
	}
	b.ReportMetric(float64(b.N*n)/took.Seconds(), "rows/s")
	b.ReportMetric(0, "ns/op") // per batch; rows/s is the figure
}
