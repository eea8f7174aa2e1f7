// Package prometheus holds the tests of the Prometheus alert rules in
// alerts.yml: promtool's own checks and unit tests (tests/*.yml), a check
// that every metric, label and label value the rules name is one the code
// exports, and a run of a real Prometheus against a real consumer
// (live_test.go).
//
// The tests need Debian's prometheus package (/usr/bin/prometheus and
// /usr/bin/promtool), which scripts/test installs. Without it they fail,
// they do not skip.
package prometheus

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const rulesFile = "alerts.yml"

// tool returns the path of a Prometheus binary, failing the test when it
// is not installed.
func tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (%v): run ./scripts/test, or scripts/prometheus install as root, to install Debian's prometheus package", name, err)
	}
	return p
}

// ruleFile is the part of a Prometheus rule file the tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadRules(t testing.TB, path string) ruleFile {
	t.Helper()
	var f ruleFile
	readYAML(t, path, &f)
	return f
}

func readYAML(t testing.TB, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// rules returns every rule of f, alerts and recordings.
func (f ruleFile) rules() []rule {
	var out []rule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	return out
}

func (f ruleFile) alerts() []rule {
	var out []rule
	for _, r := range f.rules() {
		if r.Alert != "" {
			out = append(out, r)
		}
	}
	return out
}

func run(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPromtoolCheckRules(t *testing.T) {
	out := run(t, ".", tool(t, "promtool"), "check", "rules", rulesFile)
	t.Logf("promtool check rules:\n%s", out)
}

// TestPromtoolTestRules runs the unit tests in tests/: crafted series for
// which each alert must fire, and healthy ones for which it must not.
func TestPromtoolTestRules(t *testing.T) {
	files, err := filepath.Glob("tests/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool unit tests in tests/ (%v)", err)
	}
	for i := range files {
		files[i] = filepath.Base(files[i])
	}
	// Each test file names the rules as ../alerts.yml, relative to itself.
	out := run(t, "tests", tool(t, "promtool"), append([]string{"test", "rules"}, files...)...)
	t.Logf("promtool test rules:\n%s", out)
}

// TestAlertsDocumented: every alert says how bad it is and what it means,
// which is what the receiver routes and reads.
func TestAlertsDocumented(t *testing.T) {
	f := loadRules(t, rulesFile)
	seen := map[string]bool{}
	for _, g := range f.Groups {
		if !strings.HasPrefix(g.Name, "triage-") {
			t.Errorf("group %q: name it triage-<concern>", g.Name)
		}
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if seen[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			seen[r.Alert] = true
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("alert %s: severity %q, want critical or warning", r.Alert, s)
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("alert %s: no %s annotation", r.Alert, a)
				}
			}
		}
	}
	if len(seen) == 0 {
		t.Fatalf("no alerts in %s", rulesFile)
	}
}

// unitTests is the part of a promtool unit test file this package reads.
type unitTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		AlertRuleTest []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// TestEveryAlertUnitTested: each alert has a promtool case where it fires
// and one where it stays quiet, so a new alert cannot ship untested.
func TestEveryAlertUnitTested(t *testing.T) {
	fires, quiet := map[string]int{}, map[string]int{}
	files, _ := filepath.Glob("tests/*.yml")
	for _, path := range files {
		var u unitTests
		readYAML(t, path, &u)
		if !slices.Equal(u.RuleFiles, []string{"../" + rulesFile}) {
			t.Errorf("%s: rule_files %v, want [../%s]", path, u.RuleFiles, rulesFile)
		}
		for _, tc := range u.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname]++
				} else {
					quiet[a.Alertname]++
				}
			}
		}
	}
	defined := map[string]bool{}
	for _, r := range loadRules(t, rulesFile).alerts() {
		defined[r.Alert] = true
		if fires[r.Alert] == 0 {
			t.Errorf("alert %s: no unit test where it fires", r.Alert)
		}
		if quiet[r.Alert] == 0 {
			t.Errorf("alert %s: no unit test where it stays quiet", r.Alert)
		}
	}
	for name := range fires {
		if !defined[name] {
			t.Errorf("unit tests name alert %s, which alerts.yml does not define", name)
		}
	}
	for name := range quiet {
		if !defined[name] {
			t.Errorf("unit tests name alert %s, which alerts.yml does not define", name)
		}
	}
}
