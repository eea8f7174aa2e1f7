package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/triage-dev/triage/internal/loadgen"
)

func TestRunVerify(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2,
		loadgen.DefaultTransactionsTopic, loadgen.DefaultDocumentsTopic, loadgen.DefaultDecisionsTopic,
		loadgen.DefaultAuditTopic, loadgen.DefaultDLQTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := "--brokers=" + strings.Join(c.ListenAddrs(), ",")

	steps := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
	}{
		{"empty cluster", []string{"verify", brokers}, 0, []string{`produced\s+0\n`, `lost\s+0\n`}},
		{"help", []string{"verify", "--help"}, 0, nil},
		{"missing rules file", []string{"verify", brokers, "--rules=/nonexistent.yaml"}, 2, nil},
		{"stray argument", []string{"verify", brokers, "extra"}, 2, nil},
		{"produce", []string{brokers, "--events=25"}, 0, nil},
		// Nothing consumes here, so every event is lost.
		{"lost", []string{"verify", brokers, "--allow-duplicates"}, 1,
			[]string{`produced\s+25\n`, `decided\s+0\n`, `lost\s+25\n`, `lost: events\.`}},
	}
	for _, s := range steps {
		var stdout, stderr bytes.Buffer
		if code := run(s.args, &stdout, &stderr); code != s.wantCode {
			t.Fatalf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", s.name, code, s.wantCode, &stdout, &stderr)
		}
		for _, w := range s.wantOut {
			if !regexp.MustCompile(w).MatchString(stdout.String()) {
				t.Errorf("%s: stdout lacks %q:\n%s", s.name, w, &stdout)
			}
		}
	}
}
