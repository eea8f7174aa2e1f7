package grafana

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/deploy"
	"github.com/triage-dev/triage/internal/chtest"
)

// TestDashboardUpToDate: the committed dashboard is what the generator makes
// from the query files now, so a query edited without regenerating fails.
func TestDashboardUpToDate(t *testing.T) {
	want, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(DashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s is not what the generator makes from deploy/clickhouse/queries: run go generate ./deploy/grafana", DashboardFile)
	}
}

// dashboard is the part of the dashboard JSON the tests read.
type dashboard struct {
	Templating struct {
		List []struct {
			Name, Type string
			Query      string
			Current    struct{ Value string }
		}
	}
	Panels []struct {
		Title, Type string
		Datasource  struct{ Type, UID string }
		Targets     []struct {
			Datasource struct{ Type, UID string }
			RawSQL     string `json:"rawSql"`
			Expr       string
		}
	}
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(DashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// grafanaVar is ${name}, ${name:format} or $name, as Grafana's template
// service finds variables.
var grafanaVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z:]+))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// interpolate does what Grafana does to a panel's SQL before the plugin
// sends it: variables from vars, ${__from} and ${__to} from the time range,
// and the formats the dashboard uses (sqlstring, date:seconds). Anything
// else fails the test, so a panel cannot use a variable no one defines.
func interpolate(t *testing.T, sql string, vars map[string]string, from, to time.Time) string {
	t.Helper()
	out := grafanaVar.ReplaceAllStringFunc(sql, func(m string) string {
		sm := grafanaVar.FindStringSubmatch(m)
		name, format := sm[1], sm[2]
		if name == "" {
			name = sm[3]
		}
		var v string
		switch name {
		case "__from", "__to":
			tm := map[string]time.Time{"__from": from, "__to": to}[name]
			if format != "date:seconds" {
				t.Fatalf("${%s:%s}: the dashboard uses date:seconds only", name, format)
			}
			return strconv.FormatInt(tm.Unix(), 10)
		default:
			var ok bool
			if v, ok = vars[name]; !ok {
				t.Fatalf("%s: no dashboard variable %s", m, name)
			}
		}
		switch format {
		case "":
			return v
		case "sqlstring":
			// Grafana's sqlstring: quote, and double every quote.
			return "'" + strings.ReplaceAll(v, "'", "''") + "'"
		default:
			t.Fatalf("%s: format %s not simulated", m, format)
			return ""
		}
	})
	if strings.Contains(out, "$") {
		t.Fatalf("a $ is left after interpolation:\n%s", out)
	}
	return out
}

// seed inserts audit and decision rows: decisions on every path, sampling
// attempts of two tenants (135 each in the current hour, over the lowest
// spike threshold the dashboard offers), tool calls; a tenth of the rows
// 30 hours back, outside the 24-hour range the test shows, so that a panel
// whose window is wrong disagrees with the report.
const seed = `
INSERT INTO audit (audit_id, kind, event_id, type, tenant_id, path, rule_id, outcome, reason, status,
	model_requested, model_answered, input_tokens, output_tokens, latency_ms, at_ms,
	chain, segment, seq, tier, tool, tokens_estimated)
SELECT
	concat('a-', toString(number)),
	arrayElement(['decision', 'sampling_attempt', 'tool_call'], number % 3 + 1),
	concat('ev-', toString(intDiv(number, 3))),
	'transaction',
	concat('tenant-', toString(intDiv(number, 3) % 2)),
	arrayElement(['rule', 'sampled', 'cache', 'fallback'], intDiv(number, 3) % 4 + 1),
	'r1', 'allow', '',
	arrayElement(['ok', 'timeout', 'ok', 'rate_limited'], number % 4 + 1),
	'claude', if(number % 5 = 0, '', 'claude-small'),
	toInt64(number % 7 * 10), toInt64(number % 11), toFloat64(number % 13),
	if(number % 10 = 9, toInt64(toUInt32(now()) - 30 * 3600) * 1000, toInt64(toUInt32(toStartOfHour(now()))) * 1000 + toInt64(number)),
	'events.transactions/0', 's', toInt64(number), arrayElement(['low', 'high'], number % 2 + 1),
	if(number % 3 = 2, 'transaction_history', ''), toUInt8(number % 2)
FROM system.numbers LIMIT 900`

const seedDecisions = `
INSERT INTO decisions (event_id, type, tenant_id, key, outcome, path, rule_id, reason, model, latency_ms, decided_ms, tier)
SELECT
	concat('ev-', toString(number)), 'transaction', concat('tenant-', toString(number % 2)), 'k',
	arrayElement(['allow', 'review', 'block'], number % 3 + 1),
	arrayElement(['rule', 'sampled', 'cache', 'fallback'], number % 4 + 1),
	'r1',
	arrayElement(['rate_limited', 'no_sampler', 'timeout'], number % 3 + 1),
	'claude', toFloat64(number),
	if(number % 10 = 9, toUInt64(toUInt32(now()) - 30 * 3600) * 1000, toUInt64(toUInt32(toStartOfHour(now()))) * 1000 + number * 7), 'low'
FROM system.numbers LIMIT 300`

// TestPanelsRunOnClickHouse runs every ClickHouse panel's SQL, interpolated
// as Grafana would with the dashboard's variables and a 24-hour range,
// against the migrated schema on the real server (18.16 here), and checks
// that each returns exactly what `consumer report` returns for the same
// parameters: the panels are the report's queries.
func TestPanelsRunOnClickHouse(t *testing.T) {
	_, conn := chtest.FreshDSN(t)
	if _, err := audit.Migrate(t.Context(), conn); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	for _, s := range []string{seed, seedDecisions} {
		if err := conn.Exec(t.Context(), s); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}

	queries, err := audit.LoadQueries(deploy.Queries, deploy.QueriesDir)
	if err != nil {
		t.Fatal(err)
	}
	byTitle := map[string]audit.Query{}
	for _, q := range queries {
		byTitle[q.Title] = q
	}
	d := loadDashboard(t)
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Current.Value
	}
	to := time.Now()
	from := to.Add(-24 * time.Hour)
	cases := []struct {
		name       string
		vars       map[string]string // over the dashboard's defaults
		report     map[string]string // the same, as report parameters
		needsRows  []string          // query names that must return rows
		onlyTrails bool
	}{
		{
			name:      "defaults",
			report:    map[string]string{"window_hours": "24", "limit": vars["top_rules"], "threshold": vars["spike_threshold"], "event_id": "", "tenant_id": ""},
			needsRows: []string{"01_decisions_per_minute", "02_llm_share", "03_sampling_latency", "04_fallbacks_by_reason", "05_tokens_by_tenant_model", "06_top_rules", "09_llm_controls", "10_tool_calls"},
		},
		{
			name:      "lowest spike threshold, one event's trail",
			vars:      map[string]string{"spike_threshold": "100", "top_rules": "25", "event_id": "ev-7", "tenant_id": "tenant-1"},
			report:    map[string]string{"window_hours": "24", "limit": "25", "threshold": "100", "event_id": "ev-7", "tenant_id": "tenant-1"},
			needsRows: []string{"07_sampling_spikes", "08_event_trail"},
		},
		{
			name:       "a tenant with a quote (sqlstring)",
			vars:       map[string]string{"event_id": "ev-'7", "tenant_id": "o'brien"},
			report:     map[string]string{"event_id": "ev-'7", "tenant_id": "o'brien"},
			onlyTrails: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := map[string]string{}
			for k, x := range vars {
				v[k] = x
			}
			for k, x := range tc.vars {
				v[k] = x
			}
			checked := 0
			for _, p := range d.Panels {
				for _, tg := range p.Targets {
					if tg.Datasource.UID != ClickHouseUID {
						continue
					}
					q, ok := byTitle[p.Title]
					if !ok {
						t.Fatalf("panel %q is titled after no query file", p.Title)
					}
					if tc.onlyTrails && q.Name != "08_event_trail" {
						continue
					}
					sql := interpolate(t, tg.RawSQL, v, from, to)
					got, err := audit.RunQuery(t.Context(), conn, sql)
					if err != nil {
						t.Fatalf("panel %q: %v\n%s", p.Title, err, sql)
					}
					rendered, err := q.Render(tc.report)
					if err != nil {
						t.Fatal(err)
					}
					want, err := audit.RunQuery(t.Context(), conn, rendered)
					if err != nil {
						t.Fatalf("report query %s: %v", q.Name, err)
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("panel %q and report query %s disagree:\npanel:  %v\nreport: %v", p.Title, q.Name, got, want)
					}
					for _, n := range tc.needsRows {
						if n == q.Name && len(got.Rows) == 0 {
							t.Errorf("panel %q returned no rows from the seeded data: the comparison proves nothing", p.Title)
						}
					}
					checked++
				}
			}
			if checked == 0 {
				t.Fatal("no ClickHouse panel ran")
			}
		})
	}
}

// TestEveryQueryHasOnePanel: each query file is a panel, once.
func TestEveryQueryHasOnePanel(t *testing.T) {
	queries, err := audit.LoadQueries(deploy.Queries, deploy.QueriesDir)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, p := range loadDashboard(t).Panels {
		for _, tg := range p.Targets {
			if tg.RawSQL != "" {
				count[p.Title]++
			}
		}
	}
	for _, q := range queries {
		if count[q.Title] != 1 {
			t.Errorf("query %s (%q) is in %d panels, want 1", q.Name, q.Title, count[q.Title])
		}
	}
}

// TestGenerateRefuses: a query the generator cannot map, or did not place,
// fails generation instead of producing a panel Grafana cannot run.
func TestGenerateRefuses(t *testing.T) {
	queries, err := audit.LoadQueries(deploy.Queries, deploy.QueriesDir)
	if err != nil {
		t.Fatal(err)
	}
	parse := func(name, src string) audit.Query {
		q, err := audit.ParseQuery(name, src)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	for name, qs := range map[string][]audit.Query{
		"unplaced query":       append(queries[:len(queries):len(queries)], parse("99_new", "-- title: new\nSELECT 1")),
		"missing placed query": queries[1:],
		"unmapped parameter": append(queries[1:len(queries):len(queries)],
			parse(queries[0].Name, "-- title: t\n-- param: region String\nSELECT {region:String}")),
		"parameter of another type": append(queries[1:len(queries):len(queries)],
			parse(queries[0].Name, "-- title: t\n-- param: window_hours String\nSELECT {window_hours:String}")),
	} {
		if _, err := Dashboard(qs); err == nil {
			t.Errorf("%s: generated", name)
		}
	}
}

// promMetric is a triage metric name inside a PromQL expression.
var promMetric = regexp.MustCompile(`\btriage_[a-z_]+`)

// TestPrometheusMetricsExist: every metric a Prometheus panel queries is
// registered somewhere in the code (its name appears quoted in a non-test
// Go file), so a renamed metric cannot leave an empty panel behind.
func TestPrometheusMetricsExist(t *testing.T) {
	defined := map[string]bool{}
	root := filepath.Join("..", "..")
	quoted := regexp.MustCompile(`"(triage_[a-z_]+)"`)
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && (e.Name() == ".work" || e.Name() == ".git") {
			return filepath.SkipDir
		}
		if e.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.Contains(path, "deploy/grafana") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range quoted.FindAllStringSubmatch(string(src), -1) {
			defined[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range loadDashboard(t).Panels {
		for _, tg := range p.Targets {
			if tg.Datasource.UID == PrometheusUID && tg.Expr == "" {
				t.Errorf("panel %q: a Prometheus target without expr", p.Title)
			}
			for _, m := range promMetric.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
				if !defined[base] {
					t.Errorf("panel %q queries %s, which no Go file defines", p.Title, m)
				}
				n++
			}
		}
	}
	for _, want := range []string{"triage_consumer_fetch_lag_records", "triage_paused_partitions", "triage_sampling_samplers"} {
		if !strings.Contains(fmt.Sprint(loadDashboard(t).Panels), want) {
			t.Errorf("no panel shows %s", want)
		}
	}
	if n == 0 {
		t.Fatal("no Prometheus metric found in the dashboard")
	}
}
