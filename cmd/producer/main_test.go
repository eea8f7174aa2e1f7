package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/triage-dev/triage/internal/loadgen"
)

func TestRun(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2,
		loadgen.DefaultTransactionsTopic, loadgen.DefaultDocumentsTopic, loadgen.DefaultDecisionsTopic, loadgen.DefaultDLQTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := "--brokers=" + strings.Join(c.ListenAddrs(), ",")

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
	}{
		{"produces", []string{brokers, "--events=300", "--bad=0.5", "--mix=transaction=1,document=1"}, 0,
			[]string{`sent\s+300\n`, `acked\s+300\n`, `errors\s+0\n`, `stopped\s+events\n`, `too_large\s+\d+\n`}},
		// Nothing consumes here, so every event is missing once the grace ends.
		{"measure reports missing", []string{brokers, "--events=20", "--measure", "--grace=300ms"}, 1,
			[]string{`tracked\s+20\n`, `missing\s+20\n`, `missing ids\s+\S+`}},
		{"bad mix", []string{brokers, "--mix=0.5"}, 2, nil},
		{"bad share", []string{brokers, "--bad=2"}, 2, nil},
		{"stray argument", []string{"extra"}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, &stdout, &stderr)
			}
			for _, w := range tt.wantOut {
				if !regexp.MustCompile(w).MatchString(stdout.String()) {
					t.Errorf("stdout lacks %q:\n%s", w, &stdout)
				}
			}
		})
	}
}
