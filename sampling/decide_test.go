package sampling_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/internal/embedded"
	"github.com/triage-dev/triage/internal/kafkatest"
	"github.com/triage-dev/triage/internal/testrun"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
	"github.com/triage-dev/triage/sampling"
)

// decideServer is a pool with the decide tool on a pipeline.Sync that
// records to an embedded broker, served over Streamable HTTP.
type decideServer struct {
	pool    *sampling.Pool
	url     string
	brokers []string
}

func newDecideServer(t *testing.T, opts sampling.DecideOptions) *decideServer {
	t.Helper()
	set, err := rules.Load("testdata/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	brokers := kafkatest.EmbeddedWith(t, embedded.Config{Topics: []string{"decisions", "audit"}, Partitions: 1})
	pool := sampling.NewPool(sampling.Options{QueueWait: 2 * time.Second, Logger: testLogger()})
	t.Cleanup(func() { _ = pool.Close() })
	s, err := pipeline.NewSync(pipeline.SyncConfig{Brokers: brokers, Rules: rules.Static(set),
		Decider: sampling.NewGuard(pool, sampling.GuardOptions{Logger: testLogger()}), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close) // before the pool closes: cleanups run last in, first out
	if err := pool.AddDecideTool(s, rules.Static(set), opts); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(pool.Handler(""))
	t.Cleanup(srv.Close)
	return &decideServer{pool: pool, url: srv.URL, brokers: brokers}
}

func paymentEvent(id string) map[string]any {
	return map[string]any{"event_id": id, "type": "payment", "tenant_id": "t", "occurred_at": "2026-12-02T10:00:00Z",
		"account_id": "a-1", "amount": 1200, "country": "NG", "note": "call me at alice@example.com"}
}

// callDecide calls the decide tool and returns its answer, failing the
// test on a tool error.
func callDecide(t *testing.T, cs *mcp.ClientSession, event map[string]any) pipeline.SyncAnswer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: sampling.DecideToolName, Arguments: map[string]any{"event": event}})
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError {
		t.Fatalf("decide: tool error: %s", text(res))
	}
	var a pipeline.SyncAnswer
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func text(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, " ")
}

// auditOf reads the audit records of event id from the audit topic.
func auditOf(t *testing.T, brokers []string, id string) []audit.Record {
	t.Helper()
	return slices.DeleteFunc(kafkatest.ReadJSON[audit.Record](t, brokers, "audit"), func(a audit.Record) bool { return a.EventID != id })
}

// TestDecideToolSamplesBackToCaller: the rules leave the event to the LLM
// and the calling client declared sampling, so its own sampling handler
// answers (no sampler is connected to the pool: had the request gone
// there, the event would fall back), on both protocol generations.
func TestDecideToolSamplesBackToCaller(t *testing.T) {
	for _, version := range []string{"2026-07-28", "2025-11-25"} {
		t.Run(version, func(t *testing.T) {
			srv := newDecideServer(t, sampling.DecideOptions{})
			c := connectURL(t, srv.url, "", version, outcomeAnswer("block"))
			a := callDecide(t, c.cs, paymentEvent("ev-1"))
			if a.Outcome != "block" || a.Path != pipeline.PathSampled || a.Model != "fake-model" || a.Score == nil || *a.Score != 0.8 {
				t.Fatalf("answer %+v: want block, sampled by fake-model with score 0.8", a)
			}
			c.mu.Lock()
			seen := len(c.seen)
			var prompt string
			if seen > 0 {
				prompt = fmt.Sprint(c.seen[0].Messages[0].Content.(*mcp.TextContent).Text)
			}
			c.mu.Unlock()
			if seen != 1 {
				t.Fatalf("the caller's sampling handler got %d requests, want 1", seen)
			}
			if strings.Contains(prompt, "alice@example.com") {
				t.Fatalf("the caller saw the unmasked note: %q", prompt)
			}
			recs := auditOf(t, srv.brokers, "ev-1")
			var attempt, decision *audit.Record
			for i := range recs {
				switch recs[i].Kind {
				case audit.KindSampling:
					attempt = &recs[i]
				case audit.KindDecision:
					decision = &recs[i]
				}
			}
			if attempt == nil || decision == nil {
				t.Fatalf("audit records %+v: want a sampling attempt and a decision", recs)
			}
			if attempt.Mode != sampling.ModeCaller || attempt.Channel != audit.ChannelMCP || !strings.Contains(attempt.Caller, "test-sampler") {
				t.Fatalf("attempt mode %q channel %q caller %q: want caller, mcp, the test-sampler client", attempt.Mode, attempt.Channel, attempt.Caller)
			}
			if decision.AuditID != a.AuditID || decision.Chain != audit.SyncChain(audit.ChannelMCP, decision.Consumer) || decision.Outcome != "block" {
				t.Fatalf("decision record %+v does not match the answer %+v", decision, a)
			}
			if breaks := audit.Verify(recs, nil); len(breaks) > 0 {
				t.Fatalf("the channel's chain does not verify: %+v", breaks)
			}
		})
	}
}

// TestDecideToolPoolAnswers: a client that did not declare sampling, and
// any client with PoolOnly, get their event decided by the pool's
// samplers.
func TestDecideToolPoolAnswers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     sampling.DecideOptions
		sampling bool
	}{
		{"caller without sampling", sampling.DecideOptions{}, false},
		{"pool only", sampling.DecideOptions{PoolOnly: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newDecideServer(t, tc.opts)
			worker := connectMemory(t, srv.pool, "2026-07-28", outcomeAnswer("allow"))
			ctx, cancel := context.WithCancel(context.Background())
			wg := worker.pull(ctx, t, 2)
			t.Cleanup(func() { cancel(); wg.Wait() })

			var cs *mcp.ClientSession
			var caller *client
			if tc.sampling {
				caller = connectURL(t, srv.url, "", "2026-07-28", outcomeAnswer("block"))
				cs = caller.cs
			} else {
				mc := mcp.NewClient(&mcp.Implementation{Name: "checkout", Version: "v1"}, nil)
				var err error
				cs, err = mc.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: srv.url}, nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = cs.Close() })
			}
			a := callDecide(t, cs, paymentEvent("ev-2"))
			if a.Outcome != "allow" || a.Path != pipeline.PathSampled {
				t.Fatalf("answer %+v: want allow, sampled by the pool's sampler", a)
			}
			if caller != nil && len(caller.seen) != 0 {
				t.Fatalf("the caller was asked %d times with PoolOnly", len(caller.seen))
			}
			for _, r := range auditOf(t, srv.brokers, "ev-2") {
				if r.Kind == audit.KindSampling && r.Mode != sampling.ModePull {
					t.Fatalf("attempt mode %q, want pull", r.Mode)
				}
			}
		})
	}
}

// TestDecideToolRetryAndErrors: a retried call returns the first decision
// and records nothing more; bad input is a tool error naming the field.
func TestDecideToolRetryAndErrors(t *testing.T) {
	srv := newDecideServer(t, sampling.DecideOptions{})
	c := connectURL(t, srv.url, "", "2026-07-28", outcomeAnswer("review"))
	first := callDecide(t, c.cs, paymentEvent("ev-3"))
	again := callDecide(t, c.cs, paymentEvent("ev-3"))
	if !again.Replayed || again.AuditID != first.AuditID || again.Outcome != first.Outcome {
		t.Fatalf("retry answered %+v, want the first decision %+v replayed", again, first)
	}
	if len(c.seen) != 1 {
		t.Fatalf("the caller was asked %d times for one event, want 1", len(c.seen))
	}
	if n := len(auditOf(t, srv.brokers, "ev-3")); n != 2 {
		t.Fatalf("%d audit records for the event, want 2 (one attempt, one decision)", n)
	}

	bad := paymentEvent("ev-4")
	delete(bad, "account_id")
	other := paymentEvent("ev-3")
	other["amount"] = 5
	for _, tc := range []struct {
		name string
		args map[string]any
		want string
	}{
		{"missing field", map[string]any{"event": bad}, "account_id"},
		{"no event", map[string]any{}, "event: missing"},
		{"event id reused", map[string]any{"event": other}, "already used"},
		{"not an object", map[string]any{"event": []int{1}}, "not_object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: sampling.DecideToolName, Arguments: tc.args})
			if err != nil {
				t.Fatal(err)
			}
			if !res.IsError || !strings.Contains(text(res), tc.want) {
				t.Fatalf("got error %v %q, want a tool error naming %q", res.IsError, text(res), tc.want)
			}
		})
	}
}

// TestDecideToolCorrectiveRound: a caller whose first answer does not fit
// the decision schema is asked once more on the same call, on both
// protocol generations (a second input request on 2026-07-28, a request
// the server sends itself before).
func TestDecideToolCorrectiveRound(t *testing.T) {
	for _, version := range []string{"2026-07-28", "2025-11-25"} {
		t.Run(version, func(t *testing.T) {
			srv := newDecideServer(t, sampling.DecideOptions{})
			var calls int
			valid := outcomeAnswer("allow")
			c := connectURL(t, srv.url, "", version, func(ctx context.Context, p *mcp.CreateMessageParams) (*mcp.CreateMessageResult, error) {
				calls++
				if calls == 1 {
					return &mcp.CreateMessageResult{Role: "assistant", Model: "fake-model", Content: &mcp.TextContent{Text: "maybe fine?"}}, nil
				}
				return valid(ctx, p)
			})
			a := callDecide(t, c.cs, paymentEvent("ev-5"))
			if a.Outcome != "allow" || a.Path != pipeline.PathSampled || calls != 2 {
				t.Fatalf("answer %+v after %d requests: want allow after 2", a, calls)
			}
			var statuses []audit.Status
			for _, r := range auditOf(t, srv.brokers, "ev-5") {
				if r.Kind == audit.KindSampling {
					statuses = append(statuses, r.Status)
				}
			}
			if fmt.Sprint(statuses) != "[invalid_answer ok]" {
				t.Fatalf("attempt statuses %v, want [invalid_answer ok]", statuses)
			}
		})
	}
}

// TestDecideToolSchemaFollowsReload: the tool's input schema describes
// the event types of the rules in force, after a reload too.
func TestDecideToolSchemaFollowsReload(t *testing.T) {
	src, err := os.ReadFile("testdata/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	live, err := rules.Watch(ctx, path, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	pool := sampling.NewPool(sampling.Options{Logger: testLogger()})
	t.Cleanup(func() { _ = pool.Close() })
	s, err := pipeline.NewSync(pipeline.SyncConfig{Brokers: kafkatest.Embedded(t), Rules: live, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := pool.AddDecideTool(s, live, sampling.DecideOptions{}); err != nil {
		t.Fatal(err)
	}
	c := connectMemory(t, pool, "2025-11-25", outcomeAnswer("allow"))
	schema := func() string {
		res, err := c.cs.ListTools(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, tool := range res.Tools {
			if tool.Name == sampling.DecideToolName {
				b, _ := json.Marshal(tool.InputSchema)
				return string(b)
			}
		}
		t.Fatal("no decide tool listed")
		return ""
	}
	if got := schema(); !strings.Contains(got, `"const":"payment"`) || strings.Contains(got, `"const":"refund"`) {
		t.Fatalf("schema before the reload: %s", got)
	}
	refund := strings.Replace(string(src), "types:\n  payment:", "types:\n  refund:", 1)
	refund = string(src) + strings.TrimPrefix(refund[strings.Index(refund, "types:\n"):], "types:\n")
	if err := os.WriteFile(path, []byte(refund), 0o600); err != nil {
		t.Fatal(err)
	}
	changed := live.Changed()
	if err := live.Reload(); err != nil {
		t.Fatalf("reload: %v\n%s", err, refund)
	}
	<-changed
	testrun.Until(t, "the refund type in the decide tool's schema", waitTimeout, 20*time.Millisecond, func() bool {
		return strings.Contains(schema(), `"const":"refund"`)
	})
}
