package audit

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// benchBatches are the batch sizes benchmarked: the default BatchSize
// (5000) and one each side.
var benchBatches = []int{1000, 5000, 20000}

// benchRecords returns n linked records shaped like sampling attempts
// (summaries included) and their audit topic values.
func benchRecords(b *testing.B, n int) ([]Record, [][]byte) {
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

func reportRows(b *testing.B, start time.Time, rows int) {
	b.ReportMetric(float64(b.N*rows)/time.Since(start).Seconds(), "rows/s")
	b.ReportMetric(0, "ns/op") // per batch; rows/s is the figure
}

// BenchmarkSinkInsert is the sink's insert path for one batch: decode the
// audit topic's JSON, then PrepareBatch/Append/Send.
func BenchmarkSinkInsert(b *testing.B) {
	for _, n := range benchBatches {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) { benchSinkInsert(b, n) })
	}
}

func benchSinkInsert(b *testing.B, n int) {
	conn, _ := migratedDB(b)
	_, values := benchRecords(b, n)
	ctx := b.Context()
	recs := make([]Record, 0, len(values))
	start := time.Now()
	for b.Loop() {
		recs = recs[:0]
		for _, v := range values {
			r, err := decodeAudit(v)
			if err != nil {
				b.Fatal(err)
			}
			recs = append(recs, r)
		}
		if err := insertAudit(ctx, conn, recs); err != nil {
			b.Fatal(err)
		}
	}
	reportRows(b, start, n)
}

// BenchmarkRawInsert inserts the same rows, already as column values, with
// a bare PrepareBatch/Append/Send: the floor under the sink's figure.
func BenchmarkRawInsert(b *testing.B) {
	for _, n := range benchBatches {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) { benchRawInsert(b, n) })
	}
}

func benchRawInsert(b *testing.B, n int) {
	conn, _ := migratedDB(b)
	recs, _ := benchRecords(b, n)
	rows := make([][]any, len(recs))
	for i := range recs {
		rows[i] = auditRow(&recs[i])
	}
	ctx := b.Context()
	start := time.Now()
	for b.Loop() {
		batch, err := conn.PrepareBatch(ctx, insertAuditSQL)
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
	}
	reportRows(b, start, n)
}
