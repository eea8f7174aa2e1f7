package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/pipeline"
)

const samplingTopic = "sampling.requests"

// twoStages runs a rule stage and a sampling stage (deciding with decider)
// over the broker, both delivering their events' last results into res
// and counting the handoffs, and returns their stop functions.
func twoStages(t *testing.T, brokers []string, group string, decider pipeline.Decider, res *results, handoffs *atomic.Int64) (stopRules, stopSampling func() error) {
	t.Helper()
	rs := defaultRules(t)
	onResult := func(r pipeline.Result) {
		if r.HandedOff {
			handoffs.Add(1)
			return
		}
		res.add(r)
	}
	stopRules = runPipeline(t, pipeline.Config{Brokers: brokers, Group: group, Stage: pipeline.StageRules,
		SamplingTopic: samplingTopic, Rules: rs, OnResult: onResult})
	stopSampling = runPipeline(t, pipeline.Config{Brokers: brokers, Group: group + ".sampling", Stage: pipeline.StageSampling,
		SamplingTopic: samplingTopic, Rules: rs, Decider: decider, Workers: 2, OnResult: onResult})
	return stopRules, stopSampling
}

// TestTwoStages: the rule stage decides the clear events and hands the
// ambiguous ones off to the sampling topic; the sampling stage decides
// those. Each event has exactly one decision, read read_committed; each
// source offset exactly one terminal audit record on its chain (decision,
// handoff or dead letter), and each sampling-topic offset one decision on
// the sampling topic's chain; an event too old for its type's max_age
// gets the fallback "stale" without reaching the Decider.
func TestTwoStages(t *testing.T) {
	brokers := startBroker(t, samplingTopic)
	var recs []*kgo.Record
	for i := range 20 {
		recs = append(recs, record("events.transactions", txn(fmt.Sprintf("clear-%d", i), 25, "DE", "DE")))
		recs = append(recs, record("events.transactions", txn(fmt.Sprintf("ambiguous-%d", i), 9000, "NG", "NG")))
	}
	old := record("events.transactions", txn("stale-1", 9000, "NG", "NG"))
	old.Timestamp = time.Now().Add(-time.Hour) // the default rules' max_age for transactions is 5m
	recs = append(recs, old, &kgo.Record{Topic: "events.transactions", Key: []byte("bad"), Value: []byte(`{"event_id":`)})
	produce(t, brokers, recs)

	res := newResults()
	var calls countingDecider
	var handoffs atomic.Int64
	stopRules, stopSampling := twoStages(t, brokers, "stages", &calls, res, &handoffs)
	res.waitFor(t, len(recs))
	for _, stop := range []func() error{stopRules, stopSampling} {
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
	if n := handoffs.Load(); n != 21 {
		t.Errorf("%d handoff results, want 21", n)
	}
	if n := calls.n.Load(); n != 20 {
		t.Errorf("the Decider was asked %d times, want 20 (the ambiguous events, not the stale one)", n)
	}

	counts := map[string]pipeline.Decision{}
	for _, r := range readTopic(t, brokers, "decisions") {
		d := decodeDecision(t, r)
		if _, dup := counts[d.EventID]; dup {
			t.Errorf("event %s decided twice", d.EventID)
		}
		counts[d.EventID] = d
	}
	for i := range 20 {
		if d := counts[fmt.Sprintf("clear-%d", i)]; d.Path != pipeline.PathRule {
			t.Errorf("clear-%d: %+v, want a rule decision", i, d)
		}
		if d := counts[fmt.Sprintf("ambiguous-%d", i)]; d.Path != pipeline.PathSampled {
			t.Errorf("ambiguous-%d: %+v, want a sampled decision", i, d)
		}
	}
	if d := counts["stale-1"]; d.Path != pipeline.PathFallback || d.Reason != pipeline.FallbackStale {
		t.Errorf("stale-1: %+v, want the fallback with reason %q", d, pipeline.FallbackStale)
	}
	if len(counts) != 41 {
		t.Errorf("%d events decided, want 41", len(counts))
	}

	// Every offset of each chain's partition has exactly one terminal
	// audit record, of the kinds that chain may hold.
	terminal := map[string]map[int64]audit.Kind{}
	for _, r := range readTopic(t, brokers, "audit") {
		var a audit.Record
		if err := json.Unmarshal(r.Value, &a); err != nil {
			t.Fatal(err)
		}
		if !a.Kind.Terminal() {
			continue
		}
		if terminal[a.Chain] == nil {
			terminal[a.Chain] = map[int64]audit.Kind{}
		}
		if k, dup := terminal[a.Chain][a.Offset]; dup {
			t.Errorf("%s offset %d: terminal records %s and %s", a.Chain, a.Offset, k, a.Kind)
		}
		terminal[a.Chain][a.Offset] = a.Kind
	}
	kinds := map[string]int{}
	source, sampled := 0, 0
	for chain, offs := range terminal {
		for _, k := range offs {
			kinds[string(k)]++
		}
		if len(chain) > len(samplingTopic) && chain[:len(samplingTopic)] == samplingTopic {
			sampled += len(offs)
		} else {
			source += len(offs)
		}
	}
	if source != len(recs) || sampled != 21 {
		t.Errorf("%d source offsets and %d sampling-topic offsets with a terminal record, want %d and 21 (%v)", source, sampled, len(recs), kinds)
	}
	if kinds[string(audit.KindHandoff)] != 21 || kinds[string(audit.KindDeadLetter)] != 1 || kinds[string(audit.KindDecision)] != 41 {
		t.Errorf("terminal records by kind %v, want 21 handoffs, 1 dead letter, 41 decisions", kinds)
	}
}

// TestSlowSamplerDoesNotHoldRules: with the sampling stage's Decider
// stuck, the rule stage still decides every clear event, those behind the
// ambiguous ones included; the ambiguous ones wait in the sampling topic,
// and are decided once the Decider answers.
func TestSlowSamplerDoesNotHoldRules(t *testing.T) {
	brokers := startBroker(t, samplingTopic)
	var recs []*kgo.Record
	for i := range 50 {
		recs = append(recs, record("events.transactions", txn(fmt.Sprintf("ambiguous-%d", i), 9000, "NG", "NG")))
	}
	for i := range 200 {
		recs = append(recs, record("events.transactions", txn(fmt.Sprintf("clear-%d", i), 25, "DE", "DE")))
	}
	produce(t, brokers, recs)

	release := make(chan struct{})
	stuck := deciderFunc(func(ctx context.Context, it pipeline.Item) (pipeline.Verdict, error) {
		select {
		case <-release:
			return pipeline.Verdict{Outcome: it.Type.Outcomes[0]}, nil
		case <-ctx.Done():
			return pipeline.Verdict{}, ctx.Err()
		}
	})
	res := newResults()
	var handoffs atomic.Int64
	stopRules, stopSampling := twoStages(t, brokers, "isolation", stuck, res, &handoffs)
	got := res.waitFor(t, 200)
	for _, r := range got {
		if r.Decision == nil || r.Decision.Path != pipeline.PathRule {
			t.Fatalf("while the sampler is stuck: result %+v, want only rule decisions", r)
		}
	}
	close(release)
	res.waitFor(t, len(recs))
	for _, stop := range []func() error{stopRules, stopSampling} {
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
}

// countingDecider answers the type's first outcome and counts the calls.
type countingDecider struct{ n atomic.Int64 }

func (c *countingDecider) Decide(_ context.Context, it pipeline.Item) (pipeline.Verdict, error) {
	c.n.Add(1)
	return pipeline.Verdict{Outcome: it.Type.Outcomes[0]}, nil
}

// deciderFunc adapts a function to pipeline.Decider.
type deciderFunc func(context.Context, pipeline.Item) (pipeline.Verdict, error)

func (f deciderFunc) Decide(ctx context.Context, it pipeline.Item) (pipeline.Verdict, error) {
	return f(ctx, it)
}
