// Package grafana generates triage's Grafana dashboard from the ClickHouse
// queries that `consumer report` runs (deploy/clickhouse/queries), so that
// a panel and the report can never disagree: one SQL file, two renderings.
// Each {name:Type} placeholder becomes a Grafana expression (Placeholders);
// the rest of the file, comments included, goes into the panel as it is.
//
// The generated file is dashboards/triage.json; provisioning/ points Grafana
// at it and at the two datasources the panels name by uid. Regenerate it
// after changing a query:
//
//	go generate ./deploy/grafana
package grafana

//go:generate go run ./gen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/deploy"
)

// The datasources the panels name; provisioning/datasources/triage.yaml
// creates them with these uids.
const (
	ClickHouseUID  = "triage-clickhouse"
	ClickHouseType = "grafana-clickhouse-datasource"
	PrometheusUID  = "triage-prometheus"
	PrometheusType = "prometheus"
)

// DashboardFile is the generated dashboard, relative to this directory.
const DashboardFile = "dashboards/triage.json"

// Placeholder says what a query parameter becomes in a panel.
type Placeholder struct {
	// Type is the parameter's ClickHouse type; a query declaring the
	// parameter with another type does not generate.
	Type string
	// Expr replaces {name:Type}: an SQL expression of Grafana variables.
	Expr string
}

// Placeholders maps every query parameter to its Grafana expression. A
// query with a parameter missing here does not generate: a new parameter
// needs a decision about where its value comes from.
//
// window_hours follows the time picker: its length in hours, rounded up.
// The queries count back from now(), as the report does, so the window
// always ends now; a range in the past shows the last hours of the same
// length. ${__from} and ${__to} are Grafana's own variables, interpolated
// for every datasource.
//
// Strings use Grafana's sqlstring format: quoted, with ' doubled, which
// ClickHouse reads as one quote. Grafana does not escape backslashes, which
// ClickHouse treats as escapes, so a typed value can reach the SQL: give the
// datasource a read-only user (deploy/grafana/clickhouse-users.xml does).
var Placeholders = map[string]Placeholder{
	"window_hours": {Type: "UInt32", Expr: "(intDiv(${__to:date:seconds} - ${__from:date:seconds} + 3599, 3600))"},
	"limit":        {Type: "UInt32", Expr: "${top_rules}"},
	"threshold":    {Type: "UInt64", Expr: "${spike_threshold}"},
	"event_id":     {Type: "String", Expr: "${event_id:sqlstring}"},
	"tenant_id":    {Type: "String", Expr: "${tenant_id:sqlstring}"},
}

// placeholder is audit's {name:Type} syntax.
var placeholder = regexp.MustCompile(`\{([a-z_][a-z0-9_]*):([A-Za-z0-9]+)\}`)

// PanelSQL returns q's SQL with every placeholder replaced by its Grafana
// expression.
func PanelSQL(q audit.Query) (string, error) {
	for _, p := range q.Params {
		ph, ok := Placeholders[p.Name]
		switch {
		case !ok:
			return "", fmt.Errorf("grafana: query %s: parameter %s has no Grafana expression (see Placeholders)", q.Name, p.Name)
		case ph.Type != p.Type:
			return "", fmt.Errorf("grafana: query %s: parameter %s is %s, its Grafana expression is for %s", q.Name, p.Name, p.Type, ph.Type)
		}
	}
	// ParseQuery checked that every placeholder is a declared parameter.
	return placeholder.ReplaceAllStringFunc(q.SQL, func(m string) string {
		return Placeholders[placeholder.FindStringSubmatch(m)[1]].Expr
	}), nil
}

// Generate returns the dashboard JSON for the queries of deploy.Queries.
func Generate() ([]byte, error) {
	queries, err := audit.LoadQueries(deploy.Queries, deploy.QueriesDir)
	if err != nil {
		return nil, err
	}
	return Dashboard(queries)
}

// Dashboard returns the dashboard JSON for queries: one panel per query,
// placed as layout says, beside the Prometheus panels. Every query needs a
// place in layout and every place a query, so that adding a query file
// without placing it (or removing one) fails generation.
func Dashboard(queries []audit.Query) ([]byte, error) {
	byName := map[string]audit.Query{}
	for _, q := range queries {
		byName[q.Name] = q
	}
	var placed []string
	b := &builder{}
	for _, row := range layout {
		b.row(row.title)
		for _, p := range row.panels {
			if p.query == "" {
				b.add(p, p.prometheus)
				continue
			}
			q, ok := byName[p.query]
			if !ok {
				return nil, fmt.Errorf("grafana: the layout places query %s, which deploy/clickhouse/queries does not have", p.query)
			}
			sql, err := PanelSQL(q)
			if err != nil {
				return nil, err
			}
			if p.title == "" {
				p.title = q.Title
			}
			b.add(p, []target{clickhouseTarget(sql, p.timeSeries)})
			placed = append(placed, q.Name)
		}
	}
	for _, q := range queries {
		if !slices.Contains(placed, q.Name) {
			return nil, fmt.Errorf("grafana: query %s has no panel: place it in layout", q.Name)
		}
	}
	d := map[string]any{
		"uid":           "triage",
		"title":         "triage",
		"description":   "Generated by go generate ./deploy/grafana from deploy/clickhouse/queries (the SQL of consumer report) and the Prometheus metrics; edit those, not this file.",
		"tags":          []string{"triage"},
		"timezone":      "utc",
		"editable":      false,
		"schemaVersion": 39,
		"version":       1,
		"refresh":       "1m",
		"time":          map[string]string{"from": "now-24h", "to": "now"},
		"templating":    map[string]any{"list": variables()},
		"panels":        b.panels,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // SQL has < and >: keep it readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// variables are the dashboard variables Placeholders use. The choices are
// fixed lists, not text boxes, where a number goes into the SQL unquoted.
func variables() []map[string]any {
	custom := func(name, label, def string, choices ...string) map[string]any {
		opts := make([]map[string]any, len(choices))
		for i, c := range choices {
			opts[i] = map[string]any{"text": c, "value": c, "selected": c == def}
		}
		return map[string]any{
			"name": name, "label": label, "type": "custom", "query": strings.Join(choices, ","),
			"current": map[string]any{"text": def, "value": def}, "options": opts,
		}
	}
	textbox := func(name, label, desc string) map[string]any {
		return map[string]any{
			"name": name, "label": label, "type": "textbox", "query": "", "description": desc,
			"current": map[string]any{"text": "", "value": ""},
		}
	}
	return []map[string]any{
		custom("top_rules", "Top rules", "10", "10", "25", "50", "100"),
		custom("spike_threshold", "Spike threshold (requests/hour)", "1000", "100", "1000", "10000", "100000"),
		textbox("event_id", "Event id", "the event whose audit trail to show"),
		textbox("tenant_id", "Tenant", "the event's tenant (empty: every tenant that sent the event id)"),
	}
}
