package sampling_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/internal/testrun"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/sampling"
	"github.com/triage-dev/triage/sampling/work"
)

const legacy = "2025-11-25" // a protocol version without multi round-trip requests

func newPool(t *testing.T, opts sampling.Options) *sampling.Pool {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	p := sampling.NewPool(opts)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// TestPull: samplers on both protocol generations, in memory and over
// Streamable HTTP, pull items and decide them.
// transports are the pull tests' cases: both protocol generations, in
// memory and over Streamable HTTP.
var transports = []struct {
	name, version string
	http          bool
}{
	{"memory/2026-07-28", "", false},
	{"memory/2025-11-25", legacy, false},
	{"http/2026-07-28", "", true},
	{"http/2025-11-25", legacy, true},
}

func TestPull(t *testing.T) {
	typ := paymentType(t)
	for _, tc := range transports {
		t.Run(tc.name, func(t *testing.T) {
			pool := newPool(t, sampling.Options{})
			var c *client
			if tc.http {
				c = connectHTTP(t, pool, "secret", tc.version, outcomeAnswer("block"))
			} else {
				c = connectMemory(t, pool, tc.version, outcomeAnswer("block"))
			}
			ctx, cancel := context.WithCancel(context.Background())
			wg := c.pull(ctx, t, 4)
			vs, errs := decideAll(t, pool, typ, 20)
			waitUntil(t, "the sampler to read 20 decided results", func() bool { return c.count("decided") == 20 })
			cancel()
			wg.Wait()
			for i, v := range vs {
				if errs[i] != nil {
					t.Fatalf("item %d: %v", i, errs[i])
				}
				if v.Outcome != "block" || v.Path != pipeline.PathSampled || v.Model != "fake-model" {
					t.Fatalf("item %d: %+v", i, v)
				}
				if len(v.Attempts) != 1 {
					t.Fatalf("item %d: %d attempts", i, len(v.Attempts))
				}
				a := v.Attempts[0]
				if a.Mode != sampling.ModePull || a.Status != audit.StatusOK || a.InputTokens != 12 || a.OutputTokens != 7 || a.ModelRequested != "claude-haiku" {
					t.Fatalf("item %d: attempt %+v", i, a)
				}
				if strings.Contains(a.RequestSummary, "alice@example.com") {
					t.Fatalf("the request summary leaks a masked field: %q", a.RequestSummary)
				}
			}
			if n := c.count("decided"); n != 20 {
				t.Fatalf("sampler saw %d decided results, want 20", n)
			}
			c.mu.Lock()
			p := c.seen[0]
			c.mu.Unlock()
			if p.SystemPrompt == "" || p.MaxTokens != 64 || p.ModelPreferences == nil || p.ModelPreferences.Hints[0].Name != "claude-haiku" {
				t.Fatalf("request as the sampler saw it: %+v", p)
			}
			if md, _ := p.Metadata.(map[string]any); md["event_id"] == nil || md["outcomes"] == nil {
				t.Fatalf("metadata %v", p.Metadata)
			}
			for _, m := range p.Messages {
				if strings.Contains(m.Content.(*mcp.TextContent).Text, "alice@example.com") {
					t.Fatal("the masked note reached the sampler")
				}
			}
		})
	}
}

// TestPushToLegacyHost: a 2025-11-25 host that declared sampling but never
// calls the work tool gets the requests pushed.
func TestPushToLegacyHost(t *testing.T) {
	typ := paymentType(t)
	for _, viaHTTP := range []bool{false, true} {
		pool := newPool(t, sampling.Options{PushGrace: 10 * time.Millisecond})
		if viaHTTP {
			connectHTTP(t, pool, "", legacy, outcomeAnswer("allow"))
		} else {
			connectMemory(t, pool, legacy, outcomeAnswer("allow"))
		}
		vs, errs := decideAll(t, pool, typ, 10)
		for i, v := range vs {
			if errs[i] != nil || v.Outcome != "allow" || v.Attempts[0].Mode != sampling.ModePush {
				t.Fatalf("http=%v item %d: %+v %v", viaHTTP, i, v, errs[i])
			}
		}
	}
}

// TestCorrectiveRetry: a garbage answer gets one corrective follow-up; a
// second garbage answer gets the fallback.
func TestCorrectiveRetry(t *testing.T) {
	typ := paymentType(t)
	for _, version := range []string{"", legacy} {
		pool := newPool(t, sampling.Options{})
		var calls atomic.Int32
		garbageOnce := func(ctx context.Context, p *mcp.CreateMessageParams) (*mcp.CreateMessageResult, error) {
			if len(p.Messages) == 1 {
				calls.Add(1)
				return &mcp.CreateMessageResult{Model: "m", Content: &mcp.TextContent{Text: "I would approve it."}}, nil
			}
			if last := p.Messages[len(p.Messages)-1].Content.(*mcp.TextContent).Text; !strings.Contains(last, "outcome") {
				t.Errorf("corrective message does not restate the format: %q", last)
			}
			return outcomeAnswer("review")(ctx, p)
		}
		c := connectMemory(t, pool, version, garbageOnce)
		ctx, cancel := context.WithCancel(context.Background())
		wg := c.pull(ctx, t, 2)
		vs, errs := decideAll(t, pool, typ, 5)
		for i, v := range vs {
			if errs[i] != nil || v.Outcome != "review" || len(v.Attempts) != 2 || v.Attempts[0].Status != audit.StatusInvalidAnswer {
				t.Fatalf("version %q item %d: %+v %v", version, i, v, errs[i])
			}
		}

		always := connectMemory(t, pool, version, func(context.Context, *mcp.CreateMessageParams) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Model: "m", Content: &mcp.TextContent{Text: `{"outcome":"approve"}`}}, nil
		})
		cancel()
		wg.Wait()
		// A call the client gave up on may still wait for work on the
		// server's side until the cancellation arrives, and take the next
		// item: closing the session ends it, so that only always answers.
		_ = c.cs.Close()
		ctx, cancel = context.WithCancel(context.Background())
		wg = always.pull(ctx, t, 1)
		v, err := pool.Decide(context.Background(), item(t, typ, 99))
		cancel()
		wg.Wait()
		invalid := 0
		for _, a := range v.Attempts {
			if a.Status == audit.StatusInvalidAnswer {
				invalid++
			}
		}
		if !errors.Is(err, sampling.ErrInvalidAnswer) || pipeline.FallbackReason(err) != "invalid_answer" || invalid != 2 {
			t.Fatalf("version %q: always garbage: %+v %v", version, v, err)
		}
	}
}

// TestHungSamplerLeaseExpires: a sampler that takes items and never answers
// costs each item two lease timeouts (the lease, then the one re-queue) and
// then the fallback; a healthy sampler alongside decides what it gets.
func TestHungSamplerLeaseExpires(t *testing.T) {
	typ := paymentType(t) // 300 ms sampling timeout
	pool := newPool(t, sampling.Options{QueueWait: 5 * time.Second})
	hang := func(ctx context.Context, _ *mcp.CreateMessageParams) (*mcp.CreateMessageResult, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	hung := connectMemory(t, pool, "", hang)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hung.pull(ctx, t, 2)

	start := time.Now()
	v, err := pool.Decide(context.Background(), item(t, typ, 1))
	if !errors.Is(err, sampling.ErrLeaseExpired) || pipeline.FallbackReason(err) != "lease_expired" {
		t.Fatalf("hung sampler: %+v %v", v, err)
	}
	if len(v.Attempts) != 2 || v.Attempts[0].Status != audit.StatusTimeout {
		t.Fatalf("attempts: %+v", v.Attempts)
	}
	t.Logf("fallback after %s (two 300 ms leases)", time.Since(start))

	healthy := connectMemory(t, pool, "", outcomeAnswer("allow"))
	healthy.pull(ctx, t, 4)
	vs, errs := decideAll(t, pool, typ, 20)
	decided := 0
	for i := range vs {
		switch {
		case errs[i] == nil && vs[i].Outcome == "allow":
			decided++
		case errors.Is(errs[i], sampling.ErrLeaseExpired):
		default:
			t.Fatalf("item %d: %+v %v", i, vs[i], errs[i])
		}
	}
	if decided == 0 {
		t.Fatal("the healthy sampler decided nothing")
	}
}

func TestNoSampler(t *testing.T) {
	pool := newPool(t, sampling.Options{QueueWait: 50 * time.Millisecond})
	_, err := pool.Decide(context.Background(), item(t, paymentType(t), 1))
	if !errors.Is(err, sampling.ErrNoSampler) || pipeline.FallbackReason(err) != "no_sampler" {
		t.Fatalf("err = %v", err)
	}
}

func TestDecideCancelled(t *testing.T) {
	pool := newPool(t, sampling.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := pool.Decide(ctx, item(t, paymentType(t), 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestBearerToken(t *testing.T) {
	pool := newPool(t, sampling.Options{})
	srv := httptest.NewServer(pool.Handler("secret"))
	defer srv.Close()
	for _, tc := range []struct {
		header string
		want   int
	}{{"", http.StatusUnauthorized}, {"Bearer wrong", http.StatusUnauthorized}} {
		req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
		req.Header.Set("Content-Type", "application/json")
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Authorization %q: status %d, want %d", tc.header, resp.StatusCode, tc.want)
		}
	}
}

// waitUntil polls cond: a hang guard for counters with no event to wait on.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testrun.Until(t, what, waitTimeout, 5*time.Millisecond, cond)
}

// TestPushTimeoutCancelsClient: a pushed request that outlives its lease
// (the type's timeout) is cancelled on the client too
// (notifications/cancelled), and the item ends in the fallback after its
// one re-queue.
func TestPushTimeoutCancelsClient(t *testing.T) {
	pool := newPool(t, sampling.Options{PushGrace: 10 * time.Millisecond})
	var received, cancelled atomic.Int32
	connectMemory(t, pool, legacy, func(ctx context.Context, _ *mcp.CreateMessageParams) (*mcp.CreateMessageResult, error) {
		received.Add(1)
		<-ctx.Done()
		cancelled.Add(1)
		return nil, ctx.Err()
	})
	v, err := pool.Decide(context.Background(), item(t, paymentType(t), 1))
	if pipeline.FallbackReason(err) != "lease_expired" || len(v.Attempts) != 2 || v.Attempts[1].Mode != sampling.ModePush {
		t.Fatalf("got %+v, %v (reason %q)", v, err, pipeline.FallbackReason(err))
	}
	// Normally both leases' requests reach the client; on a machine slow
	// enough for a lease to end before its request is sent, that request
	// is not sent at all.
	waitUntil(t, "every pushed request to be cancelled on the client", func() bool {
		n := received.Load()
		return n > 0 && cancelled.Load() == n
	})
}

// TestPullSeveralItems: a sampler whose calls take up to 8 items each
// answers queued items several to a call, on both protocol generations and
// transports, with corrective rounds on some of them inside the same call,
// and reads every item's result.
func TestPullSeveralItems(t *testing.T) {
	typ := paymentType(t)
	for _, tc := range transports {
		t.Run(tc.name, func(t *testing.T) {
			pool := newPool(t, sampling.Options{})
			c := connect(t, pool, tc.http, tc.version, blockEveryThirdCorrected)
			const n = 20
			type out struct {
				v   pipeline.Verdict
				err error
			}
			results := make(chan out, n)
			for i := range n {
				go func() {
					v, err := pool.Decide(context.Background(), item(t, typ, i))
					results <- out{v, err}
				}()
			}
			waitUntil(t, "the items queued", func() bool { return pool.Items() == n })
			ctx, cancel := context.WithCancel(context.Background())
			wg := c.pullItems(ctx, t, 1, 8)
			corrected := 0
			for range n {
				r := <-results
				if r.err != nil || r.v.Outcome != "block" {
					t.Fatalf("%+v %v", r.v, r.err)
				}
				if len(r.v.Attempts) == 2 && r.v.Attempts[0].Status == audit.StatusInvalidAnswer {
					corrected++
				}
			}
			if corrected != 7 {
				t.Fatalf("%d items decided after a corrective round, want 7 (every third)", corrected)
			}
			waitUntil(t, "the sampler to read 20 decided results", func() bool { return c.count("decided") == n })
			cancel()
			wg.Wait()
			if calls := c.count("calls"); calls > 10 {
				t.Fatalf("%d calls for %d items queued at once, 8 a call at most: want 3 or 4 (plus the idle ones)", calls, n)
			}
		})
	}
}

// TestPullRounds: a sampler whose client takes 9 input rounds a call
// (work.Args Rounds) gets the next item's request in the answer to its
// retry while the call has rounds left, corrective rounds included; an
// older session, whose calls the SDK's middleware completes, still takes
// one item a call. Items arrive one at a time, each after the previous
// one's decision, as with one item in flight.
func TestPullRounds(t *testing.T) {
	typ := paymentType(t)
	for _, tc := range transports {
		t.Run(tc.name, func(t *testing.T) {
			pool := newPool(t, sampling.Options{})
			c := connect(t, pool, tc.http, tc.version, blockEveryThirdCorrected)
			calls := pullCalls(t, c.cs, map[string]any{"wait_ms": 2000, "rounds": work.GoSDKRounds})
			const n = 20
			for i := range n {
				v, err := pool.Decide(t.Context(), item(t, typ, i))
				if err != nil || v.Outcome != "block" {
					t.Fatalf("item %d: %+v %v", i, v, err)
				}
			}
			// Every round's item is decided before the call's final result
			// is sent: wait for the last one.
			var perCall []int // the items of each call that took any
			waitUntil(t, "every item in a call's result", func() bool {
				perCall = calls()
				sum := 0
				for _, k := range perCall {
					sum += k
				}
				return sum == n
			})
			if tc.version == legacy {
				if len(perCall) != n {
					t.Fatalf("items per call %v, want one each on %s", perCall, legacy)
				}
				return
			}
			// 9 rounds: an item is added while two rounds are left (its
			// request and a corrective one), so up to 8 a call, one fewer
			// for each corrective round in it: items 0, 3, 6, ... have one.
			// The last call ends when its wait does, with what it took.
			if want := []int{6, 6, 6, 2}; !slices.Equal(perCall, want) {
				t.Fatalf("items per call %v, want %v", perCall, want)
			}
		})
	}
}

// blockEveryThirdCorrected blocks every item, but the first answer for
// every third (ev-0000, ev-0003, ...) does not fit the schema.
func blockEveryThirdCorrected(ctx context.Context, p *mcp.CreateMessageParams) (*mcp.CreateMessageResult, error) {
	md, _ := p.Metadata.(map[string]any)
	id, _ := md["event_id"].(string)
	var n int
	fmt.Sscanf(id, "ev-%d", &n)
	if n%3 == 0 && len(p.Messages) == 1 {
		return &mcp.CreateMessageResult{Model: "fake-model", Content: &mcp.TextContent{Text: "not sure"}}, nil
	}
	return outcomeAnswer("block")(ctx, p)
}

// pullCalls runs a work-tool loop with args on cs until the test ends;
// calls returns how many items each of its calls that took any carried,
// in order.
func pullCalls(t *testing.T, cs *mcp.ClientSession, args map[string]any) (calls func() []int) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	var mu sync.Mutex
	var perCall []int
	wg.Go(func() {
		for ctx.Err() == nil {
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: work.ToolName, Arguments: args})
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("call: %v", err)
				}
				return
			}
			var r work.Result
			b, _ := json.Marshal(res.StructuredContent)
			if err := json.Unmarshal(b, &r); err != nil || r.Status == work.StatusIdle {
				continue
			}
			mu.Lock()
			perCall = append(perCall, max(len(r.Items), 1))
			mu.Unlock()
		}
	})
	return func() []int {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(perCall)
	}
}
