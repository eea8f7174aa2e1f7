package grafana

// ClickHousePluginVersion is the grafana-clickhouse-datasource release the
// targets are written for (editorType sql, queryType and format as that
// release reads them); docker-compose.yml installs the same.
const ClickHousePluginVersion = "4.3.2"

// A panel of the layout: a query file's (query) or Prometheus targets.
type panel struct {
	query      string // a deploy/clickhouse/queries file name without .sql
	title      string // empty: the query's title
	desc       string
	typ        string // timeseries, table, stat
	unit       string
	timeSeries bool // a ClickHouse query returning a time column and labels (long format)
	w, h       int
	prometheus []target
}

type row struct {
	title  string
	panels []panel
}

// layout is the dashboard, top to bottom. Every query file appears once.
var layout = []row{
	{title: "Decisions (ClickHouse audit trail)", panels: []panel{
		{query: "01_decisions_per_minute", typ: "timeseries", timeSeries: true, w: 24, h: 9,
			desc: "One decision per event (tenant_id, event_id): replays and reprocessing never count twice."},
		{query: "02_llm_share", typ: "table", w: 8, h: 8},
		{query: "04_fallbacks_by_reason", typ: "table", w: 8, h: 8},
		{query: "09_llm_controls", typ: "table", w: 8, h: 8,
			desc: "cache_share: the share of would-be LLM requests the result cache answered; rate_limited, budget_exceeded, policy: refused by the guards."},
	}},
	{title: "LLM (ClickHouse audit trail)", panels: []panel{
		{query: "03_sampling_latency", typ: "table", w: 12, h: 8},
		{query: "05_tokens_by_tenant_model", typ: "table", w: 12, h: 8,
			desc: "Token spend: the budgets of the rules file's guards are in tokens. estimated counts the attempts whose tokens were estimated from the text's length."},
		{query: "10_tool_calls", typ: "table", w: 8, h: 8},
		{query: "06_top_rules", typ: "table", w: 8, h: 8},
		{query: "07_sampling_spikes", typ: "table", w: 8, h: 8},
	}},
	{title: "Live (Prometheus)", panels: []panel{
		{title: "Consumer fetch lag (records)", typ: "timeseries", unit: "short", w: 8, h: 8,
			desc:       "Records behind the high watermark, per consumer; not refreshed while a partition is paused (see the next panel).",
			prometheus: []target{prom("sum by (instance) (triage_consumer_fetch_lag_records)", "{{instance}}")}},
		{title: "Paused partitions", typ: "timeseries", unit: "short", w: 8, h: 8,
			desc:       "Partitions whose fetching waits because the sampling queue is full: the LLM stage is the bottleneck.",
			prometheus: []target{prom("sum by (instance) (triage_paused_partitions)", "{{instance}}")}},
		{title: "Samplers connected", typ: "timeseries", unit: "short", w: 8, h: 8,
			desc: "Sampler sessions per consumer. None while items wait is the LLM stage's outage: every ambiguous event gets the no_sampler fallback.",
			prometheus: []target{
				prom("sum by (instance) (triage_sampling_samplers)", "samplers {{instance}}"),
				prom("sum by (instance) (triage_sampling_items)", "items waiting {{instance}}"),
			}},
		{title: "Decisions/s by path and outcome", typ: "timeseries", unit: "ops", w: 12, h: 8,
			prometheus: []target{prom("sum by (path, outcome) (rate(triage_decisions_total[$__rate_interval]))", "{{path}} {{outcome}}")}},
		{title: "Sampling attempts/s by mode and status", typ: "timeseries", unit: "ops", w: 12, h: 8,
			prometheus: []target{prom("sum by (mode, status) (rate(triage_sampling_attempts_total[$__rate_interval]))", "{{mode}} {{status}}")}},
		{title: "Sampling latency p50/p95 by mode", typ: "timeseries", unit: "s", w: 8, h: 8,
			prometheus: []target{
				prom("histogram_quantile(0.5, sum by (le, mode) (rate(triage_sampling_attempt_seconds_bucket[$__rate_interval])))", "p50 {{mode}}"),
				prom("histogram_quantile(0.95, sum by (le, mode) (rate(triage_sampling_attempt_seconds_bucket[$__rate_interval])))", "p95 {{mode}}"),
			}},
		{title: "Tokens/s by tenant and tier", typ: "timeseries", unit: "short", w: 8, h: 8,
			prometheus: []target{prom("sum by (tenant, tier) (rate(triage_guard_tokens_total[$__rate_interval]))", "{{tenant}} {{tier}}")}},
		{title: "Token budget used", typ: "timeseries", unit: "percentunit", w: 8, h: 8,
			desc:       "Share of the budget spent in the current window, per consumer process (budgets are not shared across the group).",
			prometheus: []target{prom("max by (scope, tenant) (triage_guard_budget_used_ratio)", "{{scope}} {{tenant}}")}},
		{title: "Result cache share", typ: "timeseries", unit: "percentunit", w: 8, h: 8,
			prometheus: []target{prom(`sum(rate(triage_guard_cache_total{result="hit"}[$__rate_interval])) / sum(rate(triage_guard_cache_total[$__rate_interval]))`, "hits")}},
		{title: "Guard refusals/s by reason", typ: "timeseries", unit: "ops", w: 8, h: 8,
			prometheus: []target{prom("sum by (reason) (rate(triage_guard_refused_total[$__rate_interval]))", "{{reason}}")}},
		{title: "Tool calls/s by tool and status", typ: "timeseries", unit: "ops", w: 8, h: 8,
			prometheus: []target{prom("sum by (tool, status) (rate(triage_sampling_tool_calls_total[$__rate_interval]))", "{{tool}} {{status}}")}},
		{title: "Dead letters/s by reason", typ: "timeseries", unit: "ops", w: 12, h: 8,
			prometheus: []target{prom("sum by (reason) (rate(triage_dlq_records_total[$__rate_interval]))", "{{reason}}")}},
		{title: "Audit sink: pending records and paused", typ: "timeseries", unit: "short", w: 12, h: 8,
			desc: "The ClickHouse sink's batch, and 1 while it pauses because inserts fail.",
			prometheus: []target{
				prom("sum by (instance) (triage_sink_pending_records)", "pending {{instance}}"),
				prom("max by (instance) (triage_sink_paused)", "paused {{instance}}"),
			}},
	}},
	{title: "Audit trail of one event (set the event id above)", panels: []panel{
		{query: "08_event_trail", typ: "table", w: 24, h: 10},
	}},
}

// target is one query of a panel, as the datasource reads it.
type target map[string]any

func prom(expr, legend string) target {
	return target{
		"datasource":   map[string]string{"type": PrometheusType, "uid": PrometheusUID},
		"expr":         expr,
		"legendFormat": legend,
	}
}

// clickhouseTarget is a raw-SQL target of the ClickHouse plugin. Format 0
// (time series) turns a long result (time, label columns, value) into one
// series per label set; 1 is a table.
func clickhouseTarget(sql string, timeSeries bool) target {
	queryType, format := "table", 1
	if timeSeries {
		queryType, format = "timeseries", 0
	}
	return target{
		"datasource":    map[string]string{"type": ClickHouseType, "uid": ClickHouseUID},
		"editorType":    "sql",
		"queryType":     queryType,
		"format":        format,
		"pluginVersion": ClickHousePluginVersion,
		"rawSql":        sql,
	}
}

// builder places panels left to right in rows of 24 columns.
type builder struct {
	panels  []map[string]any
	x, y, h int
}

func (b *builder) row(title string) {
	if b.x > 0 {
		b.y += b.h
		b.x, b.h = 0, 0
	}
	b.panels = append(b.panels, map[string]any{
		"id": len(b.panels) + 1, "type": "row", "title": title, "collapsed": false, "panels": []any{},
		"gridPos": map[string]int{"x": 0, "y": b.y, "w": 24, "h": 1},
	})
	b.y++
}

func (b *builder) add(p panel, targets []target) {
	if b.x+p.w > 24 {
		b.y += b.h
		b.x, b.h = 0, 0
	}
	refID := 'A'
	for _, t := range targets {
		t["refId"] = string(refID)
		refID++
	}
	ds := targets[0]["datasource"]
	out := map[string]any{
		"id": len(b.panels) + 1, "type": p.typ, "title": p.title, "datasource": ds, "targets": targets,
		"gridPos": map[string]int{"x": b.x, "y": b.y, "w": p.w, "h": p.h},
	}
	defaults := map[string]any{}
	if p.unit != "" {
		defaults["unit"] = p.unit
	}
	out["fieldConfig"] = map[string]any{"defaults": defaults, "overrides": []any{}}
	if p.desc != "" {
		out["description"] = p.desc
	}
	if p.typ == "table" {
		out["options"] = map[string]any{"showHeader": true, "cellHeight": "sm"}
	}
	b.panels = append(b.panels, out)
	b.x += p.w
	b.h = max(b.h, p.h)
}
