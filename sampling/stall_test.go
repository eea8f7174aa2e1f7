package sampling_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/internal/testrun"
	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
	"github.com/triage-dev/triage/sampling"
	sampler "github.com/triage-dev/triage/sampling/client"
	"github.com/triage-dev/triage/sampling/work"
)

// hangEvery is a provider that hangs on every nth request, until its
// context ends, and answers the others with the offline scorer.
type hangEvery struct {
	n     int64
	calls atomic.Int64
	llm.Provider
}

func (h *hangEvery) Complete(ctx context.Context, req llm.Request) (llm.Response, error) {
	if h.calls.Add(1)%h.n == 0 {
		<-ctx.Done()
		return llm.Response{}, ctx.Err()
	}
	return h.Provider.Complete(ctx, req)
}

// stallSetup returns the payment type (a 300 ms sampling timeout), a pool
// and the offline provider.
func stallSetup(t *testing.T) (*rules.Type, *sampling.Pool, llm.Provider) {
	t.Helper()
	offline, err := llm.New("offline", llm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return paymentType(t), newPool(t, sampling.Options{QueueWait: 5 * time.Second}), offline
}

// sampledOf decides n items with pool and returns how many were sampled.
func sampledOf(t *testing.T, pool *sampling.Pool, typ *rules.Type, n int) int {
	t.Helper()
	_, errs := decideAll(t, pool, typ, n)
	sampled := 0
	for _, err := range errs {
		if err == nil {
			sampled++
		}
	}
	t.Logf("%d of %d sampled", sampled, n)
	return sampled
}

// runSampler runs the real sampler with cfg against pool's MCP server in
// memory until the test ends.
func runSampler(t *testing.T, pool *sampling.Pool, cfg sampler.Config) {
	t.Helper()
	cfg.Servers, cfg.Logger = []string{"mem"}, testLogger()
	cfg.Transport = func(string) (mcp.Transport, error) {
		st, ct := mcp.NewInMemoryTransports()
		if _, err := pool.Server().Connect(context.Background(), st, nil); err != nil {
			return nil, err
		}
		return ct, nil
	}
	s, err := sampler.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop := testrun.Background(t, "sampler", time.Minute, s.Run)
	t.Cleanup(func() { _ = stop() })
}

// TestHangingSamplerCannotStallThePool: a sampler (the real client, 8
// slots) whose model hangs on one request in five still gets at least 90 %
// of the ambiguous events sampled, on both protocol generations: an answer
// is bounded by the item's sampling timeout, which the request carries
// (work.MetaTimeoutMS), so a hung one frees its slot when its lease
// expires and the item is re-queued, instead of holding the slot for good.
func TestHangingSamplerCannotStallThePool(t *testing.T) {
	for _, version := range []string{"", work.ProtocolLegacy} {
		t.Run("protocol="+version, func(t *testing.T) {
			typ, pool, offline := stallSetup(t)
			runSampler(t, pool, sampler.Config{Provider: &hangEvery{n: 5, Provider: offline}, Concurrency: 8, ProtocolVersion: version})

			const n = 100
			sampled := sampledOf(t, pool, typ, n)
			if sampled < n*90/100 {
				t.Fatalf("%d of %d sampled with one request in five hanging, want at least 90 %%", sampled, n)
			}
		})
	}
}

// TestHangingSamplerBesideAHealthyOne: with a healthy sampler beside the
// one that hangs on a request in five, at least 99 % of the events are
// sampled: expired leases re-queue, and the healthy sampler takes them.
func TestHangingSamplerBesideAHealthyOne(t *testing.T) {
	for _, version := range []string{"", work.ProtocolLegacy} {
		t.Run("protocol="+version, func(t *testing.T) {
			typ, pool, offline := stallSetup(t)
			runSampler(t, pool, sampler.Config{Provider: &hangEvery{n: 5, Provider: offline}, Concurrency: 8, ProtocolVersion: version})
			runSampler(t, pool, sampler.Config{Provider: offline, Concurrency: 8, ProtocolVersion: version})
			const n = 200
			sampled := sampledOf(t, pool, typ, n)
			if sampled < n*99/100 {
				t.Fatalf("%d of %d sampled beside a healthy sampler, want at least 99 %%", sampled, n)
			}
		})
	}
}

// failing is a provider whose every request fails.
type failing struct{ llm.Provider }

func (failing) Complete(context.Context, llm.Request) (llm.Response, error) {
	return llm.Response{}, errors.New("provider exploded: HTTP 500")
}

// TestSamplerErrorReachesThePool: when a sampler's model fails, the pool
// hears it at once, on both protocol generations: each attempt is audited
// as an error with the sampler's text, and the item falls back for that
// error, instead of waiting out its lease and being audited as expired.
func TestSamplerErrorReachesThePool(t *testing.T) {
	for _, version := range []string{"", work.ProtocolLegacy} {
		t.Run("protocol="+version, func(t *testing.T) {
			typ, pool, offline := stallSetup(t)
			runSampler(t, pool, sampler.Config{Provider: failing{offline}, Concurrency: 2, ProtocolVersion: version, AnswerAttempts: 1})

			v, err := pool.Decide(context.Background(), item(t, typ, 1))
			if pipeline.FallbackReason(err) != pipeline.FallbackError {
				t.Fatalf("fallback reason %q (%v), want %q", pipeline.FallbackReason(err), err, pipeline.FallbackError)
			}
			if len(v.Attempts) == 0 {
				t.Fatal("no attempts audited")
			}
			for _, a := range v.Attempts {
				if a.Status != audit.StatusError || !strings.Contains(a.Reason, "provider exploded") {
					t.Errorf("attempt %+v: want status error with the sampler's text", a)
				}
			}
		})
	}
}
