package pipeline_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/pipeline"
)

// TestTwoConsumersSplitAndOneLeaves: two members of one group share the
// partitions; one leaves while events are still being produced; every event
// is decided exactly once; on either group protocol, and the group runs the
// protocol asked for.
func TestTwoConsumersSplitAndOneLeaves(t *testing.T) {
	for _, protocol := range []string{"consumer", "classic"} {
		t.Run(protocol, func(t *testing.T) { testTwoConsumers(t, protocol) })
	}
}

func testTwoConsumers(t *testing.T, protocol string) {
	brokers := startBroker(t)
	const group = "pair"
	ra, rb := newResults(), newResults()
	stopA := runPipeline(t, pipeline.Config{Brokers: brokers, Group: group, GroupProtocol: protocol, OnResult: ra.add, Instance: "a"})
	stopB := runPipeline(t, pipeline.Config{Brokers: brokers, Group: group, GroupProtocol: protocol, OnResult: rb.add, Instance: "b"})
	if got := waitMembers(t, brokers, group, 2); got != protocol {
		t.Fatalf("group %s runs the %s protocol, want %s", group, got, protocol)
	}

	events := func(prefix string, n int) []*kgo.Record {
		var recs []*kgo.Record
		for i := range n {
			id := eventID(i, prefix)
			if i%10 == 0 {
				recs = append(recs, record("events.documents", doc(id, "", "unknown"))) // fallback path
			} else {
				recs = append(recs, record("events.transactions", txn(id, float64(i%900), "DE", "DE")))
			}
		}
		return recs
	}
	produce(t, brokers, events("one", 1000))
	waitTotal(t, 1000, ra, rb)
	a, _ := ra.snapshot()
	b, _ := rb.snapshot()
	if len(a) == 0 || len(b) == 0 {
		t.Fatalf("partitions not split: a decided %d, b %d", len(a), len(b))
	}

	// A leaves while the second batch is being produced.
	second := events("two", 1000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
		if err != nil {
			t.Error(err)
			return
		}
		defer cl.Close()
		for i := 0; i < len(second); i += 50 {
			if err := cl.ProduceSync(context.Background(), second[i:i+50]...).FirstErr(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	if err := stopA(); err != nil {
		t.Fatalf("A: %v", err)
	}
	<-done
	waitTotal(t, 2000, ra, rb)
	if err := stopB(); err != nil {
		t.Fatalf("B: %v", err)
	}

	a, _ = ra.snapshot()
	b, _ = rb.snapshot()
	if len(a)+len(b) != 2000 {
		t.Errorf("a decided %d, b %d: %d in all, want exactly 2000", len(a), len(b), len(a)+len(b))
	}
	counts := map[string]int{}
	for _, r := range readTopic(t, brokers, "decisions") {
		counts[decodeDecision(t, r).EventID]++
	}
	if len(counts) != 2000 {
		t.Errorf("%d distinct events decided, want 2000", len(counts))
	}
	for id, n := range counts {
		if n != 1 {
			t.Errorf("event %s decided %d times", id, n)
		}
	}
	committed, end := committedAndEnd(t, brokers, group, inputTopics...)
	if committed != end {
		t.Errorf("committed %d of %d", committed, end)
	}
}

func waitTotal(t *testing.T, n int, rs ...*results) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		total := 0
		chs := make([]<-chan struct{}, 0, len(rs))
		for _, r := range rs {
			all, ch := r.snapshot()
			total += len(all)
			chs = append(chs, ch)
		}
		if total >= n {
			return
		}
		select {
		case <-chs[0]:
		case <-chs[len(chs)-1]:
		case <-deadline:
			t.Fatalf("waited %s for %d results, have %d", waitTimeout, n, total)
		}
	}
}

// waitMembers waits until the group is stable with n members that all have
// partitions assigned.
func waitMembers(t *testing.T, brokers []string, group string, n int) (protocol string) {
	t.Helper()
	adm := kadm.NewClient(newClient(t, brokers))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if protocol, ok := membersAssigned(ctx, adm, group, n); ok {
			return protocol
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group %s never had %d assigned members", group, n)
		case <-tick.C:
		}
	}
}

// membersAssigned reports whether group is stable with n members that all
// hold partitions, and the group's protocol: on KIP-848's ("consumer"),
// reconciled to their target assignment; on the classic one, as
// DescribeGroups reports it.
func membersAssigned(ctx context.Context, adm *kadm.Client, group string, n int) (protocol string, ok bool) {
	if cgs, err := adm.DescribeConsumerGroups(ctx, group); err == nil {
		if g := cgs[group]; g.Err == nil && len(g.Members) > 0 {
			assigned := 0
			for _, m := range g.Members {
				if len(m.Assignment) > 0 && fmt.Sprint(m.Assignment.Sorted()) == fmt.Sprint(m.TargetAssignment.Sorted()) {
					assigned++
				}
			}
			return "consumer", g.State == "Stable" && assigned == n
		}
	}
	gs, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return "", false
	}
	g := gs[group]
	assigned := 0
	for _, m := range g.Members {
		if ca, ok := m.Assigned.AsConsumer(); ok && len(ca.Topics) > 0 {
			assigned++
		}
	}
	return "classic", g.State == "Stable" && assigned == n
}
