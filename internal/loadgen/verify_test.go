package loadgen

import (
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/internal/embedded"
	"github.com/triage-dev/triage/internal/kafkatest"
	"github.com/triage-dev/triage/internal/testrun"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
)

const verifyTimeout = 60 * time.Second

// runPipelineOver produces n generated events (some malformed) to a fresh
// broker and runs the real pipeline over them until each has its outputs
// acknowledged; it returns the broker's addresses.
func runPipelineOver(t *testing.T, n int) []string {
	t.Helper()
	addrs := kafkatest.EmbeddedWith(t, embedded.Config{Partitions: 4, Topics: []string{
		DefaultTransactionsTopic, DefaultDocumentsTopic, DefaultDecisionsTopic, DefaultAuditTopic, DefaultDLQTopic}})

	cl := newClient(t, addrs, ProducerClientOpts()...)
	rep, err := Produce(t.Context(), cl, mustGenerator(t, Config{Seed: 3, Bad: 0.1}), ProduceOptions{Events: n})
	if err != nil || rep.Acked != n {
		t.Fatalf("Produce: acked %d of %d, %v (%s)", rep.Acked, n, err, rep.FirstError)
	}

	set, err := rules.Parse("default.yaml", rules.Default, rules.WithMaskKey(rules.RandomMaskKey()))
	if err != nil {
		t.Fatal(err)
	}
	var done atomic.Int64
	all := make(chan struct{})
	p, err := pipeline.New(pipeline.Config{
		Brokers: addrs, Group: "verify-test", Rules: rules.Static(set), Logger: slog.New(slog.DiscardHandler),
		OnResult: func(pipeline.Result) {
			if done.Add(1) == int64(n) {
				close(all)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := testrun.Background(t, "pipeline", verifyTimeout, p.Run)
	select {
	case <-all:
	case <-time.After(verifyTimeout):
		t.Fatalf("pipeline: %d of %d results after %s", done.Load(), n, verifyTimeout)
	}
	if err := stop(); err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	return addrs
}

func verify(t *testing.T, addrs []string) Verification {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), verifyTimeout)
	defer cancel()
	v, err := Verify(ctx, []kgo.Opt{kgo.SeedBrokers(addrs...)}, VerifyOptions{})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return v
}

func TestVerifyAccountsForAPipelineRun(t *testing.T) {
	const n = 300
	addrs := runPipelineOver(t, n)
	v := verify(t, addrs)
	if v.Produced != n || v.Decided+v.DeadLettered != n || v.DeadLettered == 0 || v.Decided == 0 {
		t.Errorf("produced %d, decided %d, dead-lettered %d; want %d produced, all decided or dead-lettered, some of each",
			v.Produced, v.Decided, v.DeadLettered, n)
	}
	if v.Lost+v.Duplicated+v.Outside+v.AuditMissing+v.Unmatched != 0 || v.Failed(false) {
		t.Errorf("a clean run shows faults: %+v", v)
	}

	// Now break it on purpose, one fault of each kind.
	cl := newClient(t, addrs)
	decisions := kafkatest.ReadTopic(t, addrs, DefaultDecisionsTopic)
	var first audit.Decision
	if err := json.Unmarshal(decisions[0].Value, &first); err != nil {
		t.Fatal(err)
	}
	event := func(id string) []byte {
		return []byte(`{"event_id":"` + id + `","type":"transaction","tenant_id":"tenant-x"}`)
	}
	decision := func(id, outcome string) []byte {
		b, err := json.Marshal(audit.Decision{EventID: id, Type: TypeTransaction, TenantID: "tenant-x", Outcome: outcome, Path: "rule"})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ctx, cancel := context.WithTimeout(t.Context(), verifyTimeout)
	defer cancel()
	if err := cl.ProduceSync(ctx,
		// a second decision for an event already decided: duplicated
		&kgo.Record{Topic: DefaultDecisionsTopic, Key: decisions[0].Key, Value: decisions[0].Value},
		// a source record nobody decided: lost
		&kgo.Record{Topic: DefaultTransactionsTopic, Value: event("extra-lost")},
		// a decided source record without its audit record: audit missing
		&kgo.Record{Topic: DefaultTransactionsTopic, Value: event("extra-unaudited")},
		&kgo.Record{Topic: DefaultDecisionsTopic, Value: decision("extra-unaudited", "allow")},
		// a decision with an outcome transactions do not have, for no source record
		&kgo.Record{Topic: DefaultDecisionsTopic, Value: decision("extra-outside", "maybe")},
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	v = verify(t, addrs)
	want := Verification{Produced: n + 2, Decided: v.Decided, DeadLettered: v.DeadLettered,
		Lost: 1, Duplicated: 1, Outside: 1, AuditMissing: 1, Unmatched: 1}
	got := v
	got.Examples = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after the faults:\n got %+v\nwant %+v\nexamples %q", got, want, v.Examples)
	}
	if !v.Failed(true) {
		t.Error("Failed(allowDuplicates) = false with lost, outside and audit-missing positions")
	}
}

func TestVerifyFailedAllowsDuplicatesOnlyWhenAsked(t *testing.T) {
	v := Verification{Produced: 2, Decided: 2, Duplicated: 1}
	if !v.Failed(false) || v.Failed(true) {
		t.Errorf("Failed(false), Failed(true) = %v, %v; want true, false", v.Failed(false), v.Failed(true))
	}
}
