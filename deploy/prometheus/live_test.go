package prometheus

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/triage-dev/triage/internal/testrun"
)

// hang is the bound of every wait in the live test: a guard against a
// hang, not a performance assertion. The no-samplers alert needs about a
// minute after the kill (the pool counts a sampler for 35 s after its last
// call, then for: and a scrape or two).
const hang = 4 * time.Minute

// scrape returns the samples of the consumer's /metrics, comments dropped.
func scrape(addr string) (string, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "#") {
			b.WriteString(sc.Text())
			b.WriteByte('\n')
		}
	}
	return b.String(), sc.Err()
}

// sum adds the samples of metric in a scrape whose labels contain every
// string of match (e.g. `path="sampled"`).
func sum(exposition, metric string, match ...string) float64 {
	var total float64
	for _, line := range strings.Split(exposition, "\n") {
		name, rest, _ := strings.Cut(line, " ")
		labels := ""
		if i := strings.IndexByte(line, '{'); i >= 0 {
			name = line[:i]
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			labels, rest = line[i:j+1], strings.TrimSpace(line[j+1:])
		}
		if name != metric {
			continue
		}
		ok := true
		for _, m := range match {
			ok = ok && strings.Contains(labels, m)
		}
		if v, err := strconv.ParseFloat(strings.Fields(rest + " ")[0], 64); ok && err == nil {
			total += v
		}
	}
	return total
}

// api is a Prometheus HTTP API client.
type api string

// get decodes the data of a successful API response into v.
func (a api) get(path string, q url.Values, v any) error {
	resp, err := http.Get(string(a) + path + "?" + q.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if r.Status != "success" {
		return fmt.Errorf("%s: %s", path, r.Error)
	}
	return json.Unmarshal(r.Data, v)
}

type alert struct {
	Labels   map[string]string `json:"labels"`
	State    string            `json:"state"`
	ActiveAt time.Time         `json:"activeAt"`
	Value    string            `json:"value"`
}

func (a api) alerts() ([]alert, error) {
	var d struct {
		Alerts []alert `json:"alerts"`
	}
	err := a.get("/api/v1/alerts", nil, &d)
	return d.Alerts, err
}

// state is alertname's state: "", "pending" or "firing".
func (a api) state(alertname string) (string, error) {
	as, err := a.alerts()
	state := ""
	for _, x := range as {
		if x.Labels["alertname"] == alertname && state != "firing" {
			state = x.State
		}
	}
	return state, err
}

// scalar evaluates query, which must return one sample, at now.
func (a api) scalar(query string) (float64, bool) {
	var d struct {
		Result []struct {
			Value [2]any `json:"value"`
		} `json:"result"`
	}
	if err := a.get("/api/v1/query", url.Values{"query": {query}}, &d); err != nil || len(d.Result) != 1 {
		return 0, false
	}
	s, _ := d.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// forClause matches a rule's for: line.
var forClause = regexp.MustCompile(`(?m)^(\s+for:\s*)\S+\s*$`)

// shortRules writes alerts.yml to dir with every for: cut to 5 s: the
// shipped durations are promtool's to test; here the point is the
// pipeline's real metrics reaching a real Prometheus and its rule engine.
func shortRules(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	short := forClause.ReplaceAll(data, []byte("${1}5s"))
	if n := len(forClause.FindAll(data, -1)); n == 0 {
		t.Fatalf("no for: clause in %s to shorten", rulesFile)
	}
	p := filepath.Join(dir, "alerts.yml")
	if err := os.WriteFile(p, short, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestNoSamplersAlertLive runs the real thing: a consumer with its embedded
// broker producing demo events and waiting for remote samplers, a
// cmd/sampler process answering them, and Prometheus scraping the consumer
// every second with the alert rules. The no-samplers alert stays quiet
// while the sampler serves and fires after the sampler is SIGKILLed while
// events keep arriving; so does the fallback-rate alert, as the waiting
// events get the fallback.
func TestNoSamplersAlertLive(t *testing.T) {
	promBin := tool(t, "prometheus")
	bin := testrun.Binaries(t)
	t0 := time.Now()
	mark := func(format string, args ...any) {
		t.Logf("%6.1fs  %s", time.Since(t0).Seconds(), fmt.Sprintf(format, args...))
	}

	// 100 events/s, about 10 % of transactions and 20 % of documents
	// ambiguous: a dozen a second wait for a sampler, for far longer than
	// the test runs.
	mcpAddr, httpAddr := testrun.FreeAddr(t), testrun.FreeAddr(t)
	consumer := testrun.StartProc(t, "consumer", bin["consumer"],
		"--embedded", "--embedded-port", "0", "--sampler", "none",
		"--mcp-listen", mcpAddr, "--http-listen", httpAddr,
		"--demo", "1000000", "--demo-rate", "100", "--demo-ambiguous", "transaction=0.1,document=0.2",
		"--log-format", "text", "--log-level", "warn")
	sampler := testrun.StartProc(t, "sampler", bin["sampler"],
		"--server", "http://"+mcpAddr+"/mcp", "--provider", "offline", "--wait-ms", "1000", "--log-format", "text")

	var metrics string
	testrun.Until(t, "the sampler to connect and decide events", hang, 200*time.Millisecond, func() bool {
		consumer.FailIfExited(t)
		sampler.FailIfExited(t)
		var err error
		metrics, err = scrape(httpAddr)
		return err == nil && sum(metrics, "triage_sampling_samplers") >= 1 &&
			sum(metrics, "triage_decisions_total", `path="sampled"`) > 0
	})
	mark("sampler connected: %v samplers, %v sampled decisions, %v rule decisions",
		sum(metrics, "triage_sampling_samplers"), sum(metrics, "triage_decisions_total", `path="sampled"`),
		sum(metrics, "triage_decisions_total", `path="rule"`))

	// Prometheus starts only now, so it never sees the seconds before the
	// sampler connected (when no sampler and waiting items are the truth).
	dir := t.TempDir()
	promAddr := testrun.FreeAddr(t)
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %s
scrape_configs:
  - job_name: triage
    static_configs:
      - targets: [%q]
`, shortRules(t, dir), httpAddr)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	promStart := time.Now()
	prom := testrun.StartProc(t, "prometheus", promBin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr)
	p := api("http://" + promAddr)
	testrun.Until(t, "Prometheus to be ready", hang, 200*time.Millisecond, func() bool {
		prom.FailIfExited(t)
		resp, err := http.Get(string(p) + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	mark("Prometheus %s ready", promAddr)

	// Ten scrapes with the sampler there, then the alert must be quiet.
	testrun.Until(t, "ten scrapes with a sampler connected", hang, 200*time.Millisecond, func() bool {
		consumer.FailIfExited(t)
		v, ok := p.scalar(`count_over_time(triage_sampling_samplers[1m]) >= 10 and min_over_time(triage_sampling_samplers[1m]) >= 1`)
		return ok && v >= 10
	})
	if s, err := p.state("TriageNoSamplers"); err != nil || s != "" {
		t.Fatalf("TriageNoSamplers is %q (err %v) while a sampler serves", s, err)
	}
	mark("10 scrapes with the sampler connected; TriageNoSamplers inactive")

	// Every rule evaluates without error on the real metrics (a PromQL
	// matching error shows only at evaluation time).
	testrun.Until(t, "every rule group to be evaluated", hang, 200*time.Millisecond, func() bool {
		var d struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Name           string    `json:"name"`
					Health         string    `json:"health"`
					LastError      string    `json:"lastError"`
					LastEvaluation time.Time `json:"lastEvaluation"`
				} `json:"rules"`
			} `json:"groups"`
		}
		if err := p.get("/api/v1/rules", nil, &d); err != nil || len(d.Groups) == 0 {
			return false
		}
		for _, g := range d.Groups {
			for _, r := range g.Rules {
				if r.Health == "err" {
					t.Fatalf("rule %s (group %s) fails to evaluate: %s", r.Name, g.Name, r.LastError)
				}
				if r.LastEvaluation.Before(promStart) {
					return false
				}
			}
		}
		return true
	})

	killed := time.Now()
	_ = sampler.Stop(t, syscall.SIGKILL, hang)
	mark("sampler SIGKILLed; events keep arriving")

	var pendingAt, zeroAt time.Duration
	testrun.Until(t, "TriageNoSamplers to fire", hang, 500*time.Millisecond, func() bool {
		consumer.FailIfExited(t)
		prom.FailIfExited(t)
		if v, ok := p.scalar(`triage_sampling_samplers`); ok && v == 0 && zeroAt == 0 {
			zeroAt = time.Since(killed)
			items, _ := p.scalar(`triage_sampling_items`)
			mark("Prometheus sees no sampler (%.0f items waiting)", items)
		}
		s, err := p.state("TriageNoSamplers")
		if err != nil {
			return false
		}
		if s == "pending" && pendingAt == 0 {
			pendingAt = time.Since(killed)
			mark("TriageNoSamplers pending")
		}
		return s == "firing"
	})
	mark("TriageNoSamplers firing, %.1fs after the kill", time.Since(killed).Seconds())
	testrun.Until(t, "TriageFallbackRateHigh to fire", hang, 500*time.Millisecond, func() bool {
		s, err := p.state("TriageFallbackRateHigh")
		return err == nil && s == "firing"
	})

	as, err := p.alerts()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		mark("alert %s %s (severity %s, value %s, active since %.1fs)", a.Labels["alertname"], a.State,
			a.Labels["severity"], a.Value, a.ActiveAt.Sub(t0).Seconds())
		switch a.Labels["alertname"] {
		case "TriageNoSamplers":
			if a.Labels["severity"] != "critical" || a.Labels["instance"] != httpAddr || a.Labels["job"] != "triage" {
				t.Errorf("TriageNoSamplers labels %v", a.Labels)
			}
		case "TriageFallbackRateHigh":
		default:
			continue
		}
		if a.ActiveAt.Before(killed) {
			t.Errorf("%s active since %s, before the kill at %s", a.Labels["alertname"], a.ActiveAt, killed)
		}
	}

	// Prometheus's own record: no ALERTS series, pending or firing, for
	// either alert from its first evaluation to the kill.
	var before struct {
		Result []json.RawMessage `json:"result"`
	}
	err = p.get("/api/v1/query_range", url.Values{
		"query": {`ALERTS{alertname=~"TriageNoSamplers|TriageFallbackRateHigh"}`},
		"start": {strconv.FormatFloat(float64(promStart.UnixMilli())/1000, 'f', 3, 64)},
		"end":   {strconv.FormatFloat(float64(killed.UnixMilli())/1000, 'f', 3, 64)},
		"step":  {"1"},
	}, &before)
	if err != nil {
		t.Fatal(err)
	}
	if len(before.Result) != 0 {
		t.Fatalf("pending or firing before the kill: %s", before.Result)
	}
}
