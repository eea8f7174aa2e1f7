package pipeline_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/pipeline"
)

// TestCheckpointsCloseEveryChain: with a signing key, each commit closes
// the chains it wrote with a signed checkpoint, so after a graceful stop
// every segment ends with one and verifies with the key, in both delivery
// modes.
func TestCheckpointsCloseEveryChain(t *testing.T) {
	for _, delivery := range []string{pipeline.DeliveryExactlyOnce, pipeline.DeliveryAtLeastOnce} {
		t.Run(delivery, func(t *testing.T) {
			brokers := startBroker(t)
			signer, err := audit.NewSigner(bytes.Repeat([]byte{7}, audit.MinSigningKeyBytes))
			if err != nil {
				t.Fatal(err)
			}
			var recs []*kgo.Record
			for i := range 200 {
				recs = append(recs, record("events.transactions", txn(eventID(i, "tx"), 25, "DE", "DE")))
			}
			produce(t, brokers, recs)
			res := newResults()
			stop := runPipeline(t, pipeline.Config{Brokers: brokers, Group: "signed", Delivery: delivery, Signer: signer, OnResult: res.add})
			res.waitFor(t, len(recs))
			if err := stop(); err != nil {
				t.Fatal(err)
			}

			segments := map[string][]audit.Record{}
			var order []string
			checkpoints := 0
			for _, r := range readTopic(t, brokers, "audit") {
				var a audit.Record
				if err := json.Unmarshal(r.Value, &a); err != nil {
					t.Fatal(err)
				}
				name := a.Chain + " " + a.Segment
				if segments[name] == nil {
					order = append(order, name)
				}
				segments[name] = append(segments[name], a)
				if a.Kind == audit.KindCheckpoint {
					checkpoints++
				}
			}
			for _, name := range order {
				rows := segments[name]
				if breaks := audit.Verify(rows, signer); len(breaks) > 0 {
					t.Errorf("segment %s: %+v", name, breaks)
				}
				if last := rows[len(rows)-1]; last.Kind != audit.KindCheckpoint {
					t.Errorf("segment %s ends with a %s, not a checkpoint", name, last.Kind)
				}
			}
			if checkpoints == 0 || len(order) == 0 {
				t.Fatalf("%d checkpoints in %d segments", checkpoints, len(order))
			}
			t.Logf("%d segments, %d checkpoints", len(order), checkpoints)
		})
	}
}
