package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Query is one dashboard query file: SQL with a header of comment lines
//
//	-- title: Decisions per minute by path and outcome
//	-- param: window_hours UInt32 = 24
//	-- param: event_id String
//
// and placeholders in ClickHouse's {name:Type} syntax. Servers as old as
// 18.16 have no server-side query parameters, so Render substitutes them as
// literals, checked against their type; Grafana panels use the same files
// with their own variables.
type Query struct {
	Name   string // the file name without .sql
	Title  string
	Params []Param
	SQL    string // the file's text, header included
}

// Param is a declared query parameter.
type Param struct {
	Name, Type string
	// Default is used when no value is given; without one (HasDefault
	// false) the parameter is required.
	Default    string
	HasDefault bool
}

var (
	titleLine   = regexp.MustCompile(`^--\s*title:\s*(.+?)\s*$`)
	paramLine   = regexp.MustCompile(`^--\s*param:\s*([a-z_][a-z0-9_]*)\s+([A-Za-z0-9]+)\s*(?:=\s*(.*?))?\s*$`)
	placeholder = regexp.MustCompile(`\{([a-z_][a-z0-9_]*):([A-Za-z0-9]+)\}`)
)

// LoadQueries reads every dir/*.sql of fsys, sorted by file name, and checks
// that each declares a title and every parameter its placeholders use, with
// the same type.
func LoadQueries(fsys fs.FS, dir string) ([]Query, error) {
	names, err := fs.Glob(fsys, path.Join(dir, "*.sql"))
	if err != nil {
		return nil, fmt.Errorf("audit: queries: %w", err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("audit: queries: no %s/*.sql", dir)
	}
	out := make([]Query, 0, len(names))
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("audit: queries: %w", err)
		}
		q, err := ParseQuery(strings.TrimSuffix(path.Base(name), ".sql"), string(data))
		if err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, nil
}

// ParseQuery reads a query file's header and checks its placeholders.
func ParseQuery(name, src string) (Query, error) {
	q := Query{Name: name, SQL: src}
	for line := range strings.Lines(src) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "--") {
			if line != "" {
				break // the header ends at the first line of SQL
			}
			continue
		}
		if m := titleLine.FindStringSubmatch(line); m != nil {
			q.Title = m[1]
		}
		if m := paramLine.FindStringSubmatch(line); m != nil {
			p := Param{Name: m[1], Type: m[2], Default: m[3], HasDefault: strings.Contains(line, "=")}
			if _, ok := literals[p.Type]; !ok {
				return q, fmt.Errorf("audit: query %s: parameter %s: unsupported type %s", name, p.Name, p.Type)
			}
			if p.HasDefault {
				if _, err := literal(p.Type, p.Default); err != nil {
					return q, fmt.Errorf("audit: query %s: parameter %s: default: %w", name, p.Name, err)
				}
			}
			q.Params = append(q.Params, p)
		}
	}
	if q.Title == "" {
		return q, fmt.Errorf("audit: query %s: no '-- title:' line", name)
	}
	for _, m := range placeholder.FindAllStringSubmatch(src, -1) {
		p, ok := q.param(m[1])
		switch {
		case !ok:
			return q, fmt.Errorf("audit: query %s: placeholder %s is not declared with '-- param:'", name, m[0])
		case p.Type != m[2]:
			return q, fmt.Errorf("audit: query %s: placeholder %s: parameter %s is declared %s", name, m[0], p.Name, p.Type)
		}
	}
	return q, nil
}

func (q Query) param(name string) (Param, bool) {
	for _, p := range q.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// Table is a query result as text.
type Table struct {
	Columns []string
	Rows    [][]string
}

// RunQuery runs sql and renders every value as text.
func RunQuery(ctx context.Context, conn driver.Conn, sql string) (Table, error) {
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return Table{}, err
	}
	defer rows.Close()
	t := Table{Columns: rows.Columns()}
	types := rows.ColumnTypes()
	dest := make([]any, len(types))
	for rows.Next() {
		for i, ct := range types {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			return t, err
		}
		row := make([]string, len(dest))
		for i, d := range dest {
			row[i] = formatValue(reflect.ValueOf(d).Elem().Interface())
		}
		t.Rows = append(t.Rows, row)
	}
	return t, rows.Err()
}

// maxCell clips long values (summaries, reasons) in printed tables.
const maxCell = 60

func formatValue(v any) string {
	var s string
	switch x := v.(type) {
	case float64:
		s = strconv.FormatFloat(math.Round(x*1000)/1000, 'f', -1, 64)
	case float32:
		s = strconv.FormatFloat(math.Round(float64(x)*1000)/1000, 'f', -1, 64)
	case time.Time:
		s = x.UTC().Format("2006-01-02 15:04:05Z")
	case string:
		s = strings.Map(func(r rune) rune {
			if r < 0x20 {
				return ' '
			}
			return r
		}, x)
	default:
		s = fmt.Sprint(x)
	}
	if r := []rune(s); len(r) > maxCell {
		s = string(r[:maxCell-1]) + "…"
	}
	if s == "" {
		s = "-"
	}
	return s
}

// Write prints t aligned in columns, or "(no rows)".
func (t Table) Write(w io.Writer) error {
	if len(t.Rows) == 0 {
		_, err := fmt.Fprintln(w, "(no rows)")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.Columns, "\t"))
	for _, r := range t.Rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// Report runs each query with values and prints its title and result table
// to w. Every value is checked before anything runs. A query whose required
// parameter has no value is listed as skipped; any other failure stops the
// report.
func Report(ctx context.Context, conn driver.Conn, queries []Query, values map[string]string, w io.Writer) error {
	sqls := make([]string, len(queries))
	skipped := make([]error, len(queries))
	for i, q := range queries {
		sql, err := q.Render(values)
		switch {
		case errors.Is(err, ErrMissingParam):
			skipped[i] = err
		case err != nil:
			return err
		}
		sqls[i] = sql
	}
	for i, q := range queries {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "== %s (%s%s)\n", q.Title, q.Name, q.describe(values))
		if skipped[i] != nil {
			fmt.Fprintf(w, "(skipped: %v)\n", skipped[i])
			continue
		}
		t, err := RunQuery(ctx, conn, sqls[i])
		if err != nil {
			return fmt.Errorf("audit: query %s: %w", q.Name, err)
		}
		if err := t.Write(w); err != nil {
			return err
		}
	}
	return nil
}

// ExampleEvent returns an event to show the audit trail of when none is
// asked for, by its identity (tenant_id, event_id): the latest that reached
// the LLM, else the latest decided, else two empty strings when the audit
// table is empty.
func ExampleEvent(ctx context.Context, conn driver.Conn) (tenantID, eventID string, err error) {
	for _, sql := range []string{
		`SELECT tenant_id, event_id FROM sampling_attempts ORDER BY at_ms DESC LIMIT 1`,
		`SELECT tenant_id, event_id FROM audit WHERE kind = 'decision' ORDER BY at_ms DESC LIMIT 1`,
	} {
		rows, err := conn.Query(ctx, sql)
		if err != nil {
			return "", "", fmt.Errorf("audit: example event: %w", err)
		}
		if rows.Next() {
			err = rows.Scan(&tenantID, &eventID)
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
		if err != nil {
			return "", "", fmt.Errorf("audit: example event: %w", err)
		}
		if eventID != "" {
			return tenantID, eventID, nil
		}
	}
	return "", "", nil
}
