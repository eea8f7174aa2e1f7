package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/internal/httpapi"
	"github.com/triage-dev/triage/sampling"
)

// BenchmarkDecide measures the rule path of a synchronous decision through
// POST /v1/decide and through the decide MCP tool (a go-sdk client on
// 2026-07-28 over Streamable HTTP), against a plain net/http handler that
// answers a constant: the ceiling of a request/response on this machine.
// Each decision is recorded to an in-process broker, as in production.
// Compare the rows' decisions/s and latencies as ratios of one run.
func BenchmarkDecide(b *testing.B) {
	d := newDecider(b, 6)
	s, pool, live := d.sync, d.pool, d.rules
	if err := pool.AddDecideTool(s, live, sampling.DecideOptions{}); err != nil {
		b.Fatal(err)
	}
	api := httptest.NewServer(httpapi.Handler(s, httpapi.Options{Rules: live, Tokens: []httpapi.Token{{Name: "bench", Secret: "t"}}}))
	b.Cleanup(api.Close)
	mcpSrv := httptest.NewServer(pool.Handler(""))
	b.Cleanup(mcpSrv.Close)
	constant := []byte(`{"event_id":"e","tenant_id":"t1","type":"transaction","outcome":"allow","path":"rule","reason":"no rule matched","rule_id":"default","audit_id":"00000000-0000-0000-0000-000000000000","latency_ms":0.1}` + "\n")
	ceiling := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(constant)
	}))
	b.Cleanup(ceiling.Close)

	var seq atomic.Int64
	event := func() map[string]any { return transaction(fmt.Sprintf("bench-%d", seq.Add(1)), 12.5, "DE") }
	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	post := func(url string) func() error {
		return func() error {
			body, _ := json.Marshal(map[string]any{"event": event()})
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
			req.Header.Set("Authorization", "Bearer t")
			resp, err := httpClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}
	}
	mc := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "v0"}, nil)
	cs, err := mc.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: mcpSrv.URL, HTTPClient: httpClient}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cs.Close() })
	tool := func() error {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: sampling.DecideToolName, Arguments: map[string]any{"event": event()}})
		if err != nil {
			return err
		}
		if res.IsError {
			return fmt.Errorf("tool error: %v", res.Content)
		}
		return nil
	}
	for _, row := range []struct {
		name string
		call func() error
	}{
		{"constant", post(ceiling.URL)},
		{"http", post(api.URL + httpapi.DecidePath)},
		{"mcp", tool},
	} {
		for _, inFlight := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/%d-in-flight", row.name, inFlight), func(b *testing.B) {
				benchCalls(b, inFlight, row.call)
			})
		}
	}
}

// benchCalls runs b.N calls on inFlight goroutines and reports
// decisions/s and the calls' p50 and p99 in milliseconds.
func benchCalls(b *testing.B, inFlight int, call func() error) {
	var next atomic.Int64
	lat := make([][]time.Duration, inFlight)
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for g := range inFlight {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				t := time.Now()
				if err := call(); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				lat[g] = append(lat[g], time.Since(t))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	ms := func(q float64) float64 { return float64(all[int(q*float64(len(all)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "decisions/s")
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
}
