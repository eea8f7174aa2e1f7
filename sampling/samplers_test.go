package sampling_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/triage-dev/triage/sampling"
)

// TestSamplers: the pool lists the samplers connected, a puller on
// 2026-07-28 and a legacy host it pushes to, with their protocol, mode and
// token-bound region, and the gauge counts them.
func TestSamplers(t *testing.T) {
	pool := sampling.NewPool(sampling.Options{PushGrace: 50 * time.Millisecond, Logger: testLogger()})
	t.Cleanup(func() { _ = pool.Close() })
	srv := httptest.NewServer(pool.HandlerTokens([]sampling.Token{{Secret: "eu-secret", Region: "eu"}, {Secret: "us-secret", Region: "us"}}))
	t.Cleanup(srv.Close)
	if got := pool.Samplers(); len(got) != 0 {
		t.Fatalf("samplers before any connected: %+v", got)
	}
	puller := connectURL(t, srv.URL, "eu-secret", "2026-07-28", outcomeAnswer("allow"))
	ctx, cancel := context.WithCancel(context.Background())
	wg := puller.pull(ctx, t, 2)
	defer func() { cancel(); wg.Wait() }()
	connectURL(t, srv.URL, "us-secret", "2025-11-25", outcomeAnswer("allow"))

	deadline := time.Now().Add(waitTimeout)
	var got []sampling.SamplerInfo
	for ; time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got = pool.Samplers(); len(got) == 2 {
			break
		}
	}
	if len(got) != 2 {
		t.Fatalf("samplers %+v, want 2", got)
	}
	byMode := map[string]sampling.SamplerInfo{}
	for _, s := range got {
		byMode[s.Mode] = s
	}
	if s := byMode[sampling.ModePull]; s.Protocol != "2026-07-28" || s.Region != "eu" {
		t.Errorf("puller %+v", s)
	}
	if s := byMode[sampling.ModePush]; s.Protocol != "2025-11-25" || s.Region != "us" {
		t.Errorf("pushed-to host %+v", s)
	}
	if n := testutil.ToFloat64(pool.SamplersGauge()); n != 2 {
		t.Errorf("gauge %v, want 2", n)
	}
}
