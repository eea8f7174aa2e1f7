package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/triage-dev/triage/internal/config/configtest"
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
		{"help", []string{"--help"}, 0, nil},
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

func parse(args []string) (flags, error) { return parseFlags(args, io.Discard) }

func TestParseFlags(t *testing.T) {
	configtest.Sources(t, parse, nil,
		configtest.Flag("brokers", "k1:9092,k2:9092", []string{"k1:9092", "k2:9092"}, func(f flags) any { return f.brokers }),
		configtest.Flag("events", "300", 300, func(f flags) any { return f.events }),
		configtest.Flag("rate", "2.5", 2.5, func(f flags) any { return f.rate }),
		configtest.Flag("grace", "3s", 3*time.Second, func(f flags) any { return f.grace }),
		configtest.Flag("measure", "true", true, func(f flags) any { return f.measure }),
		configtest.Flag("topic-transactions", "txns", "txns", func(f flags) any { return f.topicTxns }),
		configtest.Flag("seed", "7", int64(7), func(f flags) any { return f.seed }),
	)
	configtest.Precedence(t, parse, nil, "dlq-topic", func(f flags) string { return f.dlqTopic }, loadgen.DefaultDLQTopic)
}

func TestParseFlagsHelp(t *testing.T) {
	configtest.CleanEnv(t)
	var out bytes.Buffer
	if _, err := parseFlags([]string{"-h"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	configtest.Help(t, out.String(), "brokers", "events", "duration", "rate", "mix", "ambiguous", "bad", "seed", "measure", "grace",
		"topic-transactions", "topic-documents", "decisions-topic", "dlq-topic")
	if !strings.Contains(out.String(), "(default: 127.0.0.1:9092)") {
		t.Errorf("help lacks the brokers default:\n%s", &out)
	}
}

func TestParseFlagsErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unknown key", []string{"--config", "FILE:evnets: 3\n"}, nil, `unknown key "evnets"`},
		{"bad value in file", []string{"--config", "FILE:rate: fast\n"}, nil, `rate "fast"`},
		{"bad env value", nil, map[string]string{"TRIAGE_EVENTS": "many"}, `TRIAGE_EVENTS="many"`},
		{"bad flag value", []string{"--grace", "soon"}, nil, "grace"},
		{"unknown flag", []string{"--evnets", "3"}, nil, `unknown flag "evnets"`},
		{"empty brokers", []string{"--brokers", ""}, nil, "--brokers is empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			configtest.Env(t, c.env)
			if _, err := parse(configtest.Files(t, c.args)); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}
