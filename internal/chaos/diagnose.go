package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// diagnose logs what holds a group back from committing: its state and
// members, which partitions of topics a stable offset fetch (what a joining
// member sends) is refused with UNSTABLE_OFFSET_COMMIT because a
// transaction holds offsets of theirs pending, and every transaction the
// broker still counts as open, with its partitions and age. A run that did
// not settle is read from this and the process logs.
func diagnose(ctx context.Context, cfg Config, log *slog.Logger, group string, topics ...string) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		log.Error("chaos: diagnose: kafka client", "err", err)
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	if groups, err := adm.DescribeGroups(ctx, group); err != nil {
		log.Error("chaos: diagnose: describe group", "group", group, "err", err)
	} else {
		for _, g := range groups {
			members := make([]string, 0, len(g.Members))
			for _, m := range g.Members {
				members = append(members, m.ClientID+"/"+m.MemberID)
			}
			log.Info("chaos: diagnose: group", "group", g.Group, "state", g.State, "protocol", g.Protocol, "members", members, "err", g.Err)
		}
	}

	stableFetch(ctx, adm, cl, log, group, topics)

	listed, err := adm.ListTransactions(ctx, nil, nil)
	if err != nil {
		log.Error("chaos: diagnose: list transactions", "err", err)
		return
	}
	var open []string
	for _, t := range listed.Sorted() {
		if t.State != "Empty" && t.State != "CompleteCommit" && t.State != "CompleteAbort" {
			open = append(open, t.TxnID)
		}
	}
	log.Info("chaos: diagnose: transactions", "listed", len(listed), "not_complete", len(open))
	if len(open) == 0 {
		return
	}
	described, err := adm.DescribeTransactions(ctx, open...)
	if err != nil {
		log.Error("chaos: diagnose: describe transactions", "err", err)
		return
	}
	for _, d := range described.Sorted() {
		age := time.Duration(0)
		if d.StartTimestamp > 0 {
			age = time.Since(time.UnixMilli(d.StartTimestamp)).Round(time.Millisecond)
		}
		log.Info("chaos: diagnose: open transaction", "txn_id", d.TxnID, "state", d.State,
			"producer", fmt.Sprintf("%d/%d", d.ProducerID, d.ProducerEpoch), "timeout_ms", d.TimeoutMillis,
			"age", age, "partitions", d.Topics.Sorted(), "err", d.Err)
	}
}

// stableFetch asks for group's offsets of topics as a joining member does
// (RequireStable) and logs the partitions refused with
// UNSTABLE_OFFSET_COMMIT: a transaction holds offsets of theirs pending.
func stableFetch(ctx context.Context, adm *kadm.Client, cl *kgo.Client, log *slog.Logger, group string, topics []string) {
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		log.Error("chaos: diagnose: list topics", "err", err)
		return
	}
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group, req.RequireStable = group, true
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	for _, d := range details.Sorted() {
		rt := kmsg.NewOffsetFetchRequestGroupTopic()
		rt.Topic, rt.TopicID = d.Topic, d.ID
		for _, p := range d.Partitions.Sorted() {
			rt.Partitions = append(rt.Partitions, p.Partition)
		}
		rg.Topics = append(rg.Topics, rt)
	}
	req.Groups = append(req.Groups, rg)
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := req.RequestWith(sctx, cl)
	if err != nil {
		log.Error("chaos: diagnose: stable offset fetch", "err", err)
		return
	}
	var unstable []string
	errs := []error{kerr.ErrorForCode(resp.ErrorCode)}
	for _, g := range resp.Groups {
		errs = append(errs, kerr.ErrorForCode(g.ErrorCode))
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				if errors.Is(kerr.ErrorForCode(p.ErrorCode), kerr.UnstableOffsetCommit) {
					unstable = append(unstable, fmt.Sprintf("%s/%d", t.Topic, p.Partition))
				}
			}
		}
	}
	log.Info("chaos: diagnose: stable offset fetch", "err", errors.Join(errs...), "unstable", unstable)
}
