package sampling_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
	"github.com/triage-dev/triage/sampling"
	"github.com/triage-dev/triage/sampling/work"
)

const waitTimeout = 60 * time.Second

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func paymentType(t testing.TB) *rules.Type {
	t.Helper()
	set, err := rules.Load("testdata/rules.yaml")
	return paymentIn(t, set, err)
}

// paymentTypeTimeout is paymentType with a sampling timeout (the lease)
// of timeout instead of the test policy's 300 ms, which makes expiry
// cheap to test but which a benchmark on a busy machine may exceed.
func paymentTypeTimeout(t testing.TB, timeout string) *rules.Type {
	t.Helper()
	policy, err := os.ReadFile("testdata/rules.yaml")
	if err != nil || !bytes.Contains(policy, []byte("timeout: 300ms")) {
		t.Fatalf("testdata/rules.yaml has no timeout: 300ms to replace (%v)", err)
	}
	set, err := rules.Parse("timeout-"+timeout, bytes.Replace(policy, []byte("timeout: 300ms"), []byte("timeout: "+timeout), 1))
	return paymentIn(t, set, err)
}

// paymentIn is the payment type of a rules set just loaded with err.
func paymentIn(t testing.TB, set *rules.Set, err error) *rules.Type {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	typ, ok := set.Type("payment")
	if !ok {
		t.Fatal("no payment type")
	}
	return typ
}

// item builds an ambiguous payment as the pipeline hands it over.
func item(t testing.TB, typ *rules.Type, i int) pipeline.Item {
	t.Helper()
	id := fmt.Sprintf("ev-%04d", i)
	raw := fmt.Sprintf(`{"event_id":%q,"type":"payment","tenant_id":"t","occurred_at":"2026-11-26T10:00:00Z","account_id":"a-%d","amount":%d,"country":"NG","note":"call me at alice@example.com"}`, id, i, 1000+i)
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var fields map[string]any
	if err := dec.Decode(&fields); err != nil {
		t.Fatal(err)
	}
	if err := typ.Validate(fields); err != nil {
		t.Fatal(err)
	}
	return pipeline.Item{
		Event: pipeline.Event{ID: id, Type: "payment", TenantID: "t", Key: fmt.Sprintf("a-%d", i), Fields: fields},
		Type:  typ,
		Rule:  rules.Result{Type: "payment", RuleID: "default", Action: rules.ActionSample},
	}
}

// answerFunc decides what a fake sampler answers to a request.
type answerFunc func(ctx context.Context, p *mcp.CreateMessageParams) (*mcp.CreateMessageResult, error)

// outcomeAnswer answers every request with the same valid outcome.
func outcomeAnswer(outcome string) answerFunc {
	return func(_ context.Context, p *mcp.CreateMessageParams) (*mcp.CreateMessageResult, error) {
		return &mcp.CreateMessageResult{
			Role: "assistant", Model: "fake-model", StopReason: "endTurn",
			Content: &mcp.TextContent{Text: fmt.Sprintf(`{"outcome":%q,"reason":"test","score":0.8}`, outcome)},
			Meta:    mcp.Meta{work.UsageMetaKey: map[string]any{"inputTokens": 12, "outputTokens": 7}},
		}, nil
	}
}

// client is a minimal sampler for these tests: a go-sdk client whose
// sampling handler is f, optionally pulling with n concurrent calls.
type client struct {
	cs    *mcp.ClientSession
	mu    sync.Mutex
	seen  []*mcp.CreateMessageParams
	stats map[string]int
}

func newClient(t testing.TB, version string, f answerFunc) (*mcp.Client, *client) {
	c := &client{stats: map[string]int{}}
	// Tests look at the requests; a benchmark sends hundreds of thousands,
	// and keeping them all grew its heap by 5 KB a decision (the soak's
	// "decay" was this).
	_, bench := t.(*testing.B)
	mc := mcp.NewClient(&mcp.Implementation{Name: "test-sampler", Version: "v0"}, &mcp.ClientOptions{
		CreateMessageHandler: func(ctx context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			if !bench {
				c.mu.Lock()
				c.seen = append(c.seen, req.Params)
				c.mu.Unlock()
			}
			return f(ctx, req.Params)
		},
	})
	return mc, c
}

// connectMemory connects a client to the pool's server in memory.
func connectMemory(t testing.TB, pool *sampling.Pool, version string, f answerFunc) *client {
	t.Helper()
	mc, c := newClient(t, version, f)
	ct, st := mcp.NewInMemoryTransports()
	ctx := context.Background()
	ss, err := pool.Server().Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ss.Close() })
	cs, err := mc.Connect(ctx, ct, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	c.cs = cs
	return c
}

// connect connects a client to the pool over Streamable HTTP (without a
// token) or in memory.
func connect(t testing.TB, pool *sampling.Pool, overHTTP bool, version string, f answerFunc) *client {
	t.Helper()
	if overHTTP {
		return connectHTTP(t, pool, "", version, f)
	}
	return connectMemory(t, pool, version, f)
}

// connectHTTP connects a client to the pool's Streamable HTTP handler.
func connectHTTP(t testing.TB, pool *sampling.Pool, token, version string, f answerFunc) *client {
	t.Helper()
	srv := httptest.NewServer(pool.Handler(token))
	t.Cleanup(srv.Close)
	return connectURL(t, srv.URL, token, version, f)
}

// connectURL connects a client to the MCP endpoint at url with token.
func connectURL(t testing.TB, url, token, version string, f answerFunc) *client {
	t.Helper()
	mc, c := newClient(t, version, f)
	tr := &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: bearerClient(token)}
	cs, err := mc.Connect(context.Background(), tr, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	c.cs = cs
	return c
}

// pull runs n concurrent work-tool loops until ctx ends.
func (c *client) pull(ctx context.Context, t testing.TB, n int) *sync.WaitGroup {
	return c.pullItems(ctx, t, n, 1)
}

// pullItems is pull with calls that take up to items items each; every
// item's status counts.
func (c *client) pullItems(ctx context.Context, t testing.TB, n, items int) *sync.WaitGroup {
	return c.pullArgs(ctx, t, n, map[string]any{"wait_ms": 200, "items": items})
}

// pullArgs is pull with calls of the work tool's arguments args.
func (c *client) pullArgs(ctx context.Context, t testing.TB, n int, args map[string]any) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				res, err := c.cs.CallTool(ctx, &mcp.CallToolParams{Name: work.ToolName, Arguments: args})
				statuses := []work.Status{"error"}
				if err == nil {
					var nr work.Result
					b, _ := json.Marshal(res.StructuredContent)
					_ = json.Unmarshal(b, &nr)
					statuses = []work.Status{nr.Status}
					if len(nr.Items) > 0 {
						statuses = statuses[:0]
						for _, it := range nr.Items {
							statuses = append(statuses, it.Status)
						}
					}
				}
				c.mu.Lock()
				c.stats["calls"]++
				for _, s := range statuses {
					c.stats[string(s)]++
				}
				c.mu.Unlock()
			}
		})
	}
	return &wg
}

func (c *client) count(status string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats[status]
}

// decideAll runs Decide for n items concurrently.
func decideAll(t *testing.T, d pipeline.Decider, typ *rules.Type, n int) ([]pipeline.Verdict, []error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	vs := make([]pipeline.Verdict, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { vs[i], errs[i] = d.Decide(ctx, item(t, typ, i)) })
	}
	wg.Wait()
	return vs, errs
}

type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

func bearerClient(token string) *http.Client {
	// Idle connections for every call at once, as cmd/sampler keeps:
	// with net/http's default of 2 a host, calls past the second would
	// dial anew.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	if token == "" {
		return &http.Client{Transport: tr}
	}
	return &http.Client{Transport: bearer{token, tr}}
}
