package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/internal/loadgen"
	"github.com/triage-dev/triage/internal/testrun"
	"github.com/triage-dev/triage/pipeline"
)

// fakePipeline reads the event topics from brokers and gives s a rule
// decision for each record, after writing auditRecords decision records
// for it to the audit topic. It stands in for the pipeline, whose own
// tests cover it; cmd/consumer's TestDemo runs Run with the real one.
func fakePipeline(t *testing.T, brokers []string, ready chan struct{}, s *Summary, auditRecords int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(loadgen.DefaultTransactionsTopic, loadgen.DefaultDocumentsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	testrun.Background(t, "fake pipeline", 10*time.Second, func(ctx context.Context) error {
		close(ready)
		for ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				for range auditRecords {
					v, err := json.Marshal(audit.Record{Kind: audit.KindDecision, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset})
					if err == nil {
						err = cl.ProduceSync(ctx, &kgo.Record{Topic: "audit", Value: v}).FirstErr()
					}
					if err != nil {
						t.Errorf("audit record: %v", err)
					}
				}
				s.Add(pipeline.Result{
					Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
					Decision:     &pipeline.Decision{Type: "transaction", Path: pipeline.PathRule, Outcome: "approve"},
					AuditRecords: auditRecords, Latency: time.Millisecond,
				})
			})
		}
		return nil
	})
}

func cluster(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, loadgen.DefaultTransactionsTopic, loadgen.DefaultDocumentsTopic, "audit"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name         string
		auditRecords int
		catchUp      error
		wantErr      error  // errors.Is
		wantOut      string // in the table; "" when nothing is written
	}{
		{name: "complete", auditRecords: 1, wantOut: "OK: every event has a decision"},
		{name: "audit incomplete", auditRecords: 0, wantErr: ErrIncomplete, wantOut: "INCOMPLETE"},
		{name: "sink does not catch up", auditRecords: 1, catchUp: context.DeadlineExceeded, wantErr: context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			brokers := cluster(t)
			s := NewSummary()
			ready := make(chan struct{})
			fakePipeline(t, brokers, ready, s, tc.auditRecords)
			var out bytes.Buffer
			var calls []string
			jsonPath := filepath.Join(t.TempDir(), "summary.json")
			rep, err := Run(t.Context(), Options{
				Brokers: brokers, Events: 40, Bad: 0.1, Grace: 30 * time.Second,
				Ready:       ready,
				Sampler:     "nobody",
				Out:         &out,
				SummaryJSON: jsonPath,
				CatchUp: func(context.Context) error {
					calls = append(calls, "catch up")
					return tc.catchUp
				},
				Dashboards: func(_ context.Context, w io.Writer) error {
					calls = append(calls, "dashboards")
					_, err := io.WriteString(w, "DASHBOARDS\n")
					return err
				},
			}, s)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if rep.EventsIn != 40 || rep.Decisions != 40 || rep.Sampler != "nobody" {
				t.Fatalf("report %+v", rep)
			}
			_, statErr := os.Stat(jsonPath)
			if tc.wantOut == "" {
				if out.Len() > 0 || statErr == nil || len(calls) != 1 {
					t.Fatalf("wrote a report after failing: %q, json %v, calls %v", &out, statErr, calls)
				}
				return
			}
			if statErr != nil {
				t.Fatal(statErr)
			}
			table, dash, ok := strings.Cut(out.String(), "DASHBOARDS\n")
			if !ok || dash != "" || !strings.Contains(table, tc.wantOut) || !regexp.MustCompile(`ambiguous events decided by +nobody\n`).MatchString(table) {
				t.Fatalf("want the table with %q, then the dashboards:\n%s", tc.wantOut, &out)
			}
			if strings.Join(calls, ",") != "catch up,dashboards" {
				t.Fatalf("calls %v", calls)
			}
		})
	}
}

func TestRunStopsBeforeReady(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out bytes.Buffer
	_, err := Run(ctx, Options{Brokers: []string{"127.0.0.1:1"}, Events: 1, Ready: make(chan struct{}), Out: &out}, NewSummary())
	if !errors.Is(err, context.Canceled) || out.Len() > 0 {
		t.Fatalf("err = %v, out %q; want context.Canceled and nothing written", err, &out)
	}
}
