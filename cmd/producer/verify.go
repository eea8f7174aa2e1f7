package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/internal/config"
	"github.com/triage-dev/triage/internal/loadgen"
	"github.com/triage-dev/triage/rules"
)

// verifyFlags are the flags of "producer verify"; parseVerifyFlags
// documents each.
type verifyFlags struct {
	brokers                              []string
	topicTxns, topicDocs                 string
	decisionsTopic, auditTopic, dlqTopic string
	rules                                string
	allowDuplicates                      bool
	timeout                              time.Duration
}

func parseVerifyFlags(args []string, stderr io.Writer) (verifyFlags, error) {
	f := verifyFlags{brokers: []string{"127.0.0.1:9092"}}
	fs := flag.NewFlagSet("producer verify", flag.ContinueOnError)
	fs.Var(config.NewList(&f.brokers), "brokers", "comma-separated seed brokers")
	fs.StringVar(&f.topicTxns, "topic-transactions", loadgen.DefaultTransactionsTopic, "topic for transactions")
	fs.StringVar(&f.topicDocs, "topic-documents", loadgen.DefaultDocumentsTopic, "topic for documents")
	fs.StringVar(&f.decisionsTopic, "decisions-topic", loadgen.DefaultDecisionsTopic, "decisions topic")
	fs.StringVar(&f.auditTopic, "audit-topic", loadgen.DefaultAuditTopic, "audit topic")
	fs.StringVar(&f.dlqTopic, "dlq-topic", loadgen.DefaultDLQTopic, "dead-letter topic")
	fs.StringVar(&f.rules, "rules", "", "rules file giving each type's outcomes (empty: the built-in rules)")
	fs.BoolVar(&f.allowDuplicates, "allow-duplicates", false,
		"do not fail on source records decided or dead-lettered more than once (at-least-once runs)")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Minute, "give up reading after this long")
	if err := config.Parse(fs, args, stderr); err != nil {
		return f, err
	}
	if len(f.brokers) == 0 {
		return f, errors.New("--brokers is empty")
	}
	return f, nil
}

// runVerify is "producer verify": it accounts for every source record of
// the event topics in the decisions, DLQ and audit topics (see
// loadgen.Verify), prints the table and exits 1 on a fault.
func runVerify(args []string, stdout, stderr io.Writer) int {
	f, err := parseVerifyFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "producer verify:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	o := loadgen.VerifyOptions{
		SourceTopics:   []string{f.topicTxns, f.topicDocs},
		DecisionsTopic: f.decisionsTopic, AuditTopic: f.auditTopic, DLQTopic: f.dlqTopic,
	}
	if f.rules != "" {
		// Only the outcomes matter here, so any mask key does.
		if o.Rules, err = rules.Load(f.rules, rules.WithMaskKey(rules.RandomMaskKey())); err != nil {
			log.Error("bad flags", "err", err)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	log.Info("verifying", "brokers", f.brokers, "sources", o.SourceTopics, "decisions_topic", o.DecisionsTopic,
		"audit_topic", o.AuditTopic, "dlq_topic", o.DLQTopic)
	v, err := loadgen.Verify(ctx, []kgo.Opt{kgo.SeedBrokers(f.brokers...)}, o)
	if err != nil {
		log.Error("verify", "err", err)
		return 1
	}
	if err := v.WriteTable(stdout); err != nil {
		log.Error("write verification", "err", err)
		return 1
	}
	if v.Failed(f.allowDuplicates) {
		log.Error("faults found", "lost", v.Lost, "duplicated", v.Duplicated, "outside", v.Outside, "audit_missing", v.AuditMissing)
		return 1
	}
	return 0
}
