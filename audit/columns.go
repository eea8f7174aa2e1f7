package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// column is one column of a table the sink writes rows of type R to: its
// name and how to append a batch's values of it.
//
// A batch is appended column by column, each column's values in one call
// (driver.BatchColumn.Append of a []string, []int64, …). Appending row by
// row (driver.Batch.Append) boxes every value of every row into an any and
// converts it back: with the audit table's 38 columns that was most of the
// sink's allocations, and the garbage collector's work that came with them
// slowed the pipeline that runs the sink in-process.
type column[R any] struct {
	name string
	// appendTo appends each row's value to c.
	appendTo func(c driver.BatchColumn, rows []R) error
	// value is one row's value, as a row-by-row driver.Batch.Append
	// takes it: the benchmarks' baseline (rowValues).
	value func(r *R) any
}

// col is the column named name whose value in a row is get's. T must be the
// Go type the driver takes for the column's ClickHouse type (string for
// String, int64 for Int64, …).
func col[R, T any](name string, get func(*R) T) column[R] {
	// The values of each batch are gathered in a slice the next batch
	// reuses: the driver copies them into its own buffers.
	var scratch sync.Pool // of *[]T
	return column[R]{
		name: name,
		appendTo: func(c driver.BatchColumn, rows []R) error {
			p, _ := scratch.Get().(*[]T)
			if p == nil {
				p = new([]T)
			}
			vals := (*p)[:0]
			for i := range rows {
				vals = append(vals, get(&rows[i]))
			}
			err := c.Append(vals)
			clear(vals) // the pool keeps no strings alive
			*p = vals[:0]
			scratch.Put(p)
			return err
		},
		value: func(r *R) any { return get(r) },
	}
}

// insertSQL is the INSERT statement of table with cols, named explicitly.
func insertSQL[R any](table string, cols []column[R]) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	return "INSERT INTO " + table + " (" + strings.Join(names, ", ") + ")"
}

// insertRows writes rows in one batch of query, whose columns are cols in
// order. Against 18.16 every INSERT goes through PrepareBatch and Send (see
// clickhouse.go).
func insertRows[R any](ctx context.Context, conn driver.Conn, query string, cols []column[R], rows []R) error {
	if len(rows) == 0 {
		return nil
	}
	b, err := conn.PrepareBatch(ctx, query)
	if err != nil {
		return err
	}
	for i, c := range cols {
		if err := c.appendTo(b.Column(i), rows); err != nil {
			return errors.Join(fmt.Errorf("column %s: %w", c.name, err), b.Abort())
		}
	}
	return b.Send()
}
