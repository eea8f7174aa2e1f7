package sampling_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"

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
	return paymentType(t), newPool(t, sampling.Options{QueueWait: 5 * time.Second}), offlineProvider(t)
}

// offlineProvider is the offline scorer, with o.
func offlineProvider(t *testing.T, o ...llm.Options) llm.Provider {
	t.Helper()
	p, err := llm.New("offline", append(o, llm.Options{})[0])
	if err != nil {
		t.Fatal(err)
	}
	return p
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
func runSampler(t *testing.T, pool *sampling.Pool, cfg sampler.Config) *sampler.Sampler {
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
	return s
}

// TestHangingSamplerCannotStallThePool: a sampler (the real client, 8
// slots) whose model hangs on one request in five still gets at least 90 %
// of the ambiguous events sampled, on both protocol generations: an answer
// is bounded by the item's sampling timeout, which the request carries
// (work.MetaTimeoutMS), so a hung one frees its slot when its lease
// expires and the item is re-queued, instead of holding the slot for good.
// Nor is it quarantined: its hangs come in runs, as its slots fill with
// them, but they are a fifth of its leases.
func TestHangingSamplerCannotStallThePool(t *testing.T) {
	for _, version := range []string{"", work.ProtocolLegacy} {
		t.Run("protocol="+version, func(t *testing.T) {
			typ, offline := paymentType(t), offlineProvider(t)
			pool, reg := metricPool(t, sampling.Options{QueueWait: 5 * time.Second})
			runSampler(t, pool, sampler.Config{Provider: &hangEvery{n: 5, Provider: offline}, Concurrency: 8, ProtocolVersion: version})

			const n = 100
			sampled := sampledOf(t, pool, typ, n)
			if sampled < n*90/100 {
				t.Fatalf("%d of %d sampled with one request in five hanging, want at least 90 %%", sampled, n)
			}
			if q := transitions(reg, "open"); q != 0 {
				t.Fatalf("the lone sampler was quarantined %v times", q)
			}
		})
	}
}

// TestHangingSamplerBesideAHealthyOne: with a healthy sampler beside the
// one that hangs on a request in five, at least 99 % of the events are
// sampled: expired leases re-queue, and the healthy sampler takes them.
// The one that hangs is not quarantined: four in five of its answers are
// usable (TestQuarantineTrips).
func TestHangingSamplerBesideAHealthyOne(t *testing.T) {
	for _, version := range []string{"", work.ProtocolLegacy} {
		t.Run("protocol="+version, func(t *testing.T) {
			typ, offline := paymentType(t), offlineProvider(t)
			pool, reg := metricPool(t, sampling.Options{QueueWait: 5 * time.Second})
			runSampler(t, pool, sampler.Config{Provider: &hangEvery{n: 5, Provider: offline}, Concurrency: 8, ProtocolVersion: version})
			runSampler(t, pool, sampler.Config{Provider: offline, Concurrency: 8, ProtocolVersion: version})
			const n = 200
			sampled := sampledOf(t, pool, typ, n)
			if sampled < n*99/100 {
				t.Fatalf("%d of %d sampled beside a healthy sampler, want at least 99 %%", sampled, n)
			}
			// Not asserted: on a machine so loaded that its answers, too,
			// outlive the 300 ms leases, its failures are the most, and
			// quarantine is right.
			t.Logf("the sampler that hangs on a request in five was quarantined %v times", transitions(reg, "open"))
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

// metricPool is newPool with metrics, in the registry it returns.
func metricPool(t *testing.T, opts sampling.Options) (*sampling.Pool, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := sampling.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	opts.Metrics = m
	return newPool(t, opts), reg
}

// transitions is how many times the sessions' breakers of the pool whose
// metrics reg holds entered state to: "open" (a quarantine began),
// "half-open" (a probe) or "closed". -1 if reg cannot be read.
func transitions(reg *prometheus.Registry, to string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return -1
	}
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "triage_sampling_session_breaker_transitions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "to" && l.GetValue() == to {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// TestSamplerTakesSeveralItems: the real client with Items 8 decides every
// item, and its stats count each item of a call, on both protocol
// generations.
func TestSamplerTakesSeveralItems(t *testing.T) {
	for _, version := range []string{"", legacy} {
		t.Run("version="+version, func(t *testing.T) {
			typ, offline := paymentType(t), offlineProvider(t)
			pool := newPool(t, sampling.Options{})
			s := runSampler(t, pool, sampler.Config{Provider: offline, Concurrency: 2, Items: 8, ProtocolVersion: version})
			const n = 40
			vs, errs := decideAll(t, pool, typ, n)
			for i := range vs {
				if errs[i] != nil || vs[i].Path != pipeline.PathSampled {
					t.Fatalf("item %d: %+v %v", i, vs[i], errs[i])
				}
			}
			st, err := s.Await(t.Context(), func(st sampler.Stats) bool { return st.Decided == n })
			if err != nil {
				t.Fatalf("sampler stats %+v: %v", st, err)
			}
		})
	}
}
