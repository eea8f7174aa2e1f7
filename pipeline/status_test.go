package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/pipeline"
)

// reasoned is a Decider error that names its fallback reason, as the
// sampling package's errors do.
type reasoned string

func (r reasoned) Error() string          { return "sampling failed: " + string(r) }
func (r reasoned) FallbackReason() string { return string(r) }

// failing decides each item as its event id's prefix (before "-") says.
type failing struct{}

func (failing) Decide(_ context.Context, it pipeline.Item) (pipeline.Verdict, error) {
	switch kind, _, _ := strings.Cut(it.Event.ID, "-"); kind {
	case "ok":
		return pipeline.Verdict{Outcome: it.Type.Outcomes[0], Model: "test"}, nil
	case "timeout":
		return pipeline.Verdict{}, fmt.Errorf("provider: %w", context.DeadlineExceeded)
	case "invalid":
		return pipeline.Verdict{Outcome: "perhaps"}, nil
	case "boom":
		return pipeline.Verdict{}, errors.New("provider: 500")
	default: // a reason of the decider's own: no_sampler, lease_expired, rate_limited
		return pipeline.Verdict{}, reasoned(kind)
	}
}

// TestDecisionAuditStatus: a fallback decision's audit record carries the
// status of why sampling did not decide; rule and sampled decisions are ok.
func TestDecisionAuditStatus(t *testing.T) {
	brokers := startBroker(t)
	want := map[string]struct {
		path   string
		status audit.Status
	}{
		"rule-1":            {pipeline.PathRule, audit.StatusOK},
		"ok-1":              {pipeline.PathSampled, audit.StatusOK},
		"timeout-1":         {pipeline.PathFallback, audit.StatusTimeout},
		"invalid-1":         {pipeline.PathFallback, audit.StatusInvalidAnswer},
		"boom-1":            {pipeline.PathFallback, audit.StatusError},
		"no_sampler-1":      {pipeline.PathFallback, audit.StatusError},
		"lease_expired-1":   {pipeline.PathFallback, audit.StatusTimeout},
		"rate_limited-1":    {pipeline.PathFallback, audit.StatusRateLimited},
		"budget_exceeded-1": {pipeline.PathFallback, audit.StatusBudgetExceeded},
		"denied-1":          {pipeline.PathFallback, audit.StatusDenied},
	}
	var recs []*kgo.Record
	for id := range want {
		if id == "rule-1" {
			recs = append(recs, record("events.transactions", txn(id, 25, "DE", "DE")))
		} else {
			recs = append(recs, record("events.transactions", txn(id, 9000, "NG", "NG")))
		}
	}
	produce(t, brokers, recs)
	res := newResults()
	stop := runPipeline(t, pipeline.Config{Brokers: brokers, Group: "status", Decider: failing{}, OnResult: res.add})
	res.waitFor(t, len(recs))
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	seen := map[string]bool{}
	for _, r := range readTopic(t, brokers, "audit") {
		var a audit.Record
		if err := json.Unmarshal(r.Value, &a); err != nil {
			t.Fatal(err)
		}
		if a.Kind != audit.KindDecision {
			continue
		}
		seen[a.EventID] = true
		w := want[a.EventID]
		if a.Path != w.path || a.Status != w.status {
			t.Errorf("%s: path %s status %s (reason %q), want path %s status %s", a.EventID, a.Path, a.Status, a.Reason, w.path, w.status)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("decision audit records for %d events, want %d", len(seen), len(want))
	}
}
