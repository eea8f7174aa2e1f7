package sampling_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/internal/testrun"
	"github.com/triage-dev/triage/llm"
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

// TestHangingSamplerCannotStallThePool: a sampler (the real client, 8
// slots) whose model hangs on one request in five still gets at least 90 %
// of the ambiguous events sampled, on both protocol generations: an answer
// is bounded by the item's sampling timeout, which the request carries
// (work.MetaTimeoutMS), so a hung one frees its slot when its lease
// expires and the item is re-queued, instead of holding the slot for good.
func TestHangingSamplerCannotStallThePool(t *testing.T) {
	for _, version := range []string{"", work.ProtocolLegacy} {
		t.Run("protocol="+version, func(t *testing.T) {
			typ := paymentType(t) // 300 ms sampling timeout
			pool := newPool(t, sampling.Options{QueueWait: 5 * time.Second})
			offline, err := llm.New("offline", llm.Options{})
			if err != nil {
				t.Fatal(err)
			}
			s, err := sampler.New(sampler.Config{
				Servers:  []string{"mem"},
				Provider: &hangEvery{n: 5, Provider: offline},
				Transport: func(string) (mcp.Transport, error) {
					st, ct := mcp.NewInMemoryTransports()
					if _, err := pool.Server().Connect(context.Background(), st, nil); err != nil {
						return nil, err
					}
					return ct, nil
				},
				Concurrency: 8, ProtocolVersion: version, Logger: testLogger(),
			})
			if err != nil {
				t.Fatal(err)
			}
			stop := testrun.Background(t, "sampler", time.Minute, s.Run)
			defer func() { _ = stop() }()

			const n = 100
			_, errs := decideAll(t, pool, typ, n)
			sampled := 0
			for _, err := range errs {
				if err == nil {
					sampled++
				}
			}
			t.Logf("%d of %d sampled", sampled, n)
			if sampled < n*90/100 {
				t.Fatalf("%d of %d sampled with one request in five hanging, want at least 90 %%", sampled, n)
			}
		})
	}
}
