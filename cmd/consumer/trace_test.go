package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/triage-dev/triage/internal/config/configtest"
	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/sampling"
)

// collector is an OTLP/HTTP trace receiver: it counts spans by service and
// name.
type collector struct {
	mu    sync.Mutex
	spans map[string]map[string]int // service → span name → count
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var req coltrace.ExportTraceServiceRequest
	if err != nil || r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.Key == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		if c.spans[service] == nil {
			c.spans[service] = map[string]int{}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				c.spans[service][s.Name]++
			}
		}
	}
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// TestDemoExportsTraces: --otlp-endpoint sends the demo's traces over
// OTLP/HTTP, every event traced with OTEL_TRACES_SAMPLER_ARG=1, the
// builtin sampler's provider calls among them; they are flushed before
// the process exits.
func TestDemoExportsTraces(t *testing.T) {
	col := &collector{spans: map[string]map[string]int{}}
	srv := httptest.NewServer(col)
	t.Cleanup(srv.Close)
	configtest.Env(t, map[string]string{"OTEL_TRACES_SAMPLER_ARG": "1"})
	code := run(context.Background(), []string{
		"--embedded", "--embedded-port", "0", "--demo", "200", "--demo-bad", "0.02",
		"--http-listen", "", "--mcp-listen", "", "--log-level", "warn", "--otlp-endpoint", srv.URL,
	})
	if code != 0 {
		t.Fatalf("exit code %d", code)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	got := col.spans["triage-consumer"]
	if got[pipeline.SpanEvent] != 200 {
		t.Errorf("%d %s spans, want one per event (200): %v", got[pipeline.SpanEvent], pipeline.SpanEvent, col.spans)
	}
	for _, name := range []string{pipeline.SpanFetch, pipeline.SpanHandoff, pipeline.SpanDecide, sampling.SpanAttempt, llm.SpanComplete, pipeline.SpanEmit, pipeline.SpanCommit} {
		if got[name] == 0 {
			t.Errorf("no %s span exported: %v", name, col.spans)
		}
	}
}
