package prometheus

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// registered is what the code exports: each metric registered through a
// client_golang *Opts literal, with its label names, and every string
// literal of the non-test code (for label values such as path="fallback").
type registered struct {
	// metrics maps a metric name to its label names; nil when the labels
	// are not a literal list the parser can read.
	metrics map[string][]string
	strings map[string]bool
}

// scanCode parses every non-test Go file under root. A metric is a
// prometheus.{Counter,Gauge,Histogram,Summary}Opts literal with a Name
// field, passed as the first argument of a constructor; a *Vec
// constructor's second argument, a []string literal, is its labels.
func scanCode(t testing.TB, root string) registered {
	t.Helper()
	reg := registered{metrics: map[string][]string{}, strings: map[string]bool{}}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if s, err := strconv.Unquote(n.Value); err == nil && n.Kind == token.STRING {
					reg.strings[s] = true
				}
			case *ast.CallExpr:
				if name, ok := metricName(n); ok {
					reg.metrics[name] = labelNames(n)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// metricName is the Name of the *Opts literal that is call's first
// argument.
func metricName(call *ast.CallExpr) (string, bool) {
	if len(call.Args) == 0 {
		return "", false
	}
	lit, ok := call.Args[0].(*ast.CompositeLit)
	if !ok {
		return "", false
	}
	sel, ok := lit.Type.(*ast.SelectorExpr)
	if !ok || !strings.HasSuffix(sel.Sel.Name, "Opts") {
		return "", false
	}
	for _, e := range lit.Elts {
		kv, ok := e.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Name" {
			if v, ok := kv.Value.(*ast.BasicLit); ok {
				s, err := strconv.Unquote(v.Value)
				return s, err == nil
			}
		}
	}
	return "", false
}

// labelNames are the labels of a *Vec constructor's []string literal; none
// for a constructor of a single series; nil when they cannot be read.
func labelNames(call *ast.CallExpr) []string {
	var fn string
	switch f := call.Fun.(type) {
	case *ast.SelectorExpr:
		fn = f.Sel.Name
	case *ast.Ident:
		fn = f.Name
	}
	if !strings.HasSuffix(fn, "Vec") {
		return []string{}
	}
	if len(call.Args) < 2 {
		return nil
	}
	lit, ok := call.Args[1].(*ast.CompositeLit)
	if !ok {
		return nil
	}
	labels := []string{}
	for _, e := range lit.Elts {
		v, ok := e.(*ast.BasicLit)
		if !ok {
			return nil
		}
		s, err := strconv.Unquote(v.Value)
		if err != nil {
			return nil
		}
		labels = append(labels, s)
	}
	return labels
}

var (
	// identifier is a PromQL metric or recording rule name, or a keyword or
	// function (the callers keep those starting with triage).
	identifier = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	// selector is a metric with label matchers.
	selector = regexp.MustCompile(`\b(triage_[a-z0-9_]+)\{([^}]*)\}`)
	// matcher is one label matcher; values the checks read are plain
	// strings or alternations of plain strings.
	matcher = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"`)
	plain   = regexp.MustCompile(`^[a-zA-Z0-9_]+(\|[a-zA-Z0-9_]+)*$`)
	// suffixes are the series a histogram or summary adds to its name.
	suffixes = []string{"_bucket", "_sum", "_count"}
)

// checkExpr returns what expr names that the code does not export:
// metrics, label names of a metric's matchers, and label values (every
// alternative of a plain alternation must be a string literal of the
// code). recorded are the recording rules of the same file.
func checkExpr(expr string, reg registered, recorded map[string]bool) []string {
	var problems []string
	labelsOf := func(name string) ([]string, bool) {
		if l, ok := reg.metrics[name]; ok {
			return l, true
		}
		for _, s := range suffixes {
			if l, ok := reg.metrics[strings.TrimSuffix(name, s)]; ok && strings.HasSuffix(name, s) {
				return l, true
			}
		}
		return nil, false
	}
	for _, id := range identifier.FindAllString(expr, -1) {
		switch {
		case strings.HasPrefix(id, "triage:"):
			if !recorded[id] {
				problems = append(problems, fmt.Sprintf("recording rule %s is not in the file", id))
			}
		case strings.HasPrefix(id, "triage_"):
			if _, ok := labelsOf(id); !ok {
				problems = append(problems, fmt.Sprintf("metric %s is not registered by the code", id))
			}
		}
	}
	for _, sel := range selector.FindAllStringSubmatch(expr, -1) {
		labels, ok := labelsOf(sel[1])
		if !ok {
			continue // reported above
		}
		for _, m := range matcher.FindAllStringSubmatch(sel[2], -1) {
			if labels != nil && !slices.Contains(labels, m[1]) {
				problems = append(problems, fmt.Sprintf("%s has no label %s (labels %v)", sel[1], m[1], labels))
			}
			if !plain.MatchString(m[3]) {
				continue
			}
			for _, v := range strings.Split(m[3], "|") {
				if !reg.strings[v] {
					problems = append(problems, fmt.Sprintf("%s{%s}: value %q appears nowhere in the code", sel[1], m[1], v))
				}
			}
		}
	}
	return problems
}

func moduleRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	return root
}

// TestAlertMetricsExist: every metric an alert or recording rule reads is
// registered by the code, with the labels the rules match on and the label
// values they compare with, so renaming a metric, a label or a path breaks
// this test rather than silently muting an alert.
func TestAlertMetricsExist(t *testing.T) {
	reg := scanCode(t, moduleRoot(t))
	f := loadRules(t, rulesFile)
	recorded := map[string]bool{}
	for _, r := range f.rules() {
		if r.Record != "" {
			recorded[r.Record] = true
		}
	}
	used := map[string]bool{}
	for _, r := range f.rules() {
		name := r.Alert + r.Record
		for _, p := range checkExpr(r.Expr, reg, recorded) {
			t.Errorf("%s: %s", name, p)
		}
		for _, id := range identifier.FindAllString(r.Expr, -1) {
			if strings.HasPrefix(id, "triage_") {
				used[id] = true
			}
		}
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range used {
			if !yield(n) {
				return
			}
		}
	})
	t.Logf("%d metrics registered in the code; the rules read %d: %s", len(reg.metrics), len(names), strings.Join(names, ", "))
}

// TestCheckExprCatchesRenames: the check above is not true by
// construction; it reports a misspelt metric, label or value.
func TestCheckExprCatchesRenames(t *testing.T) {
	reg := scanCode(t, moduleRoot(t))
	recorded := map[string]bool{"triage:ok:max": true}
	for _, tc := range []struct {
		expr string
		bad  bool
	}{
		{`triage_sampling_samplers == 0`, false},
		{`rate(triage_decisions_total{path=~"sampled|fallback"}[5m]) > triage:ok:max`, false},
		{`histogram_quantile(0.9, rate(triage_decision_latency_seconds_bucket[5m]))`, false},
		{`triage_sampling_samplerz == 0`, true},
		{`rate(triage_decisions_total{route="fallback"}[5m])`, true},
		{`rate(triage_decisions_total{path="fall_back"}[5m])`, true},
		{`rate(triage_decisions_total{path=~"sampled|fellback"}[5m])`, true},
		{`triage:missing:max`, true},
	} {
		if got := checkExpr(tc.expr, reg, recorded); (len(got) > 0) != tc.bad {
			t.Errorf("checkExpr(%s) = %q, want problems: %v", tc.expr, got, tc.bad)
		}
	}
}
