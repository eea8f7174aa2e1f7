package status

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage/sampling"
)

func TestHandler(t *testing.T) {
	a := New(Options{})
	a.Add(sampled(1, 300*time.Millisecond))
	seen := time.Now().Add(-2 * time.Second)
	srv := httptest.NewServer(Handler(a, Sources{
		Decider:       "builtin sampler",
		Lag:           func() int64 { return 42 },
		Paused:        func() map[string][]int32 { return map[string][]int32{"events.documents": {3, 1}} },
		SamplingItems: func() (int64, bool) { return 7, true },
		Samplers: func() []sampling.SamplerInfo {
			return []sampling.SamplerInfo{{Name: "s1", Protocol: "2025-11-25", Mode: sampling.ModePull, Region: "eu", Tools: true, InFlight: 2, LastSeen: seen}}
		},
	}))
	defer srv.Close()

	res, err := http.Get(srv.URL + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); res.StatusCode != 200 || ct != "application/json" {
		t.Fatalf("status.json: %d %s", res.StatusCode, ct)
	}
	// The page reads these keys: check them on the raw JSON.
	var raw map[string]json.RawMessage
	if err := json.NewDecoder(res.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"decisions", "rate", "series", "latency_ms", "latency_definition", "sampling_items", "paused_partitions",
		"fetch_lag", "samplers", "fallbacks", "refused", "tokens", "tool_calls", "recent", "decider", "window_s", "latency_window_s"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("status.json has no %q", k)
		}
	}
	var s Snapshot
	b, _ := json.Marshal(raw)
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.Decisions != 1 || s.FetchLag != 42 || s.SamplingItems == nil || *s.SamplingItems != 7 || s.Decider != "builtin sampler" ||
		strings.Join(s.Paused, " ") != "events.documents/1 events.documents/3" || len(s.Recent) != 1 || s.Recent[0].AuditID != "audit-1" {
		t.Fatalf("snapshot: %+v", s)
	}
	if len(s.Samplers) != 1 || s.Samplers[0].Region != "eu" || s.Samplers[0].InFlight != 2 || s.Samplers[0].SeenAgoS < 2 {
		t.Fatalf("samplers: %+v", s.Samplers)
	}

	res, err = http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	csp := res.Header.Get("Content-Security-Policy")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if !regexp.MustCompile(`script-src 'sha256-[A-Za-z0-9+/]{43}='`).MatchString(csp) ||
		!regexp.MustCompile(`style-src 'sha256-[A-Za-z0-9+/]{43}='`).MatchString(csp) || !strings.Contains(csp, "default-src 'none'") {
		t.Fatalf("policy %q", csp)
	}
	for _, path := range []string{"/nothing", "/status.json/x"} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, res.StatusCode)
		}
	}
}

// Without a pool (direct mode) samplers is null, which the page shows as
// such; an empty pool is an empty list.
func TestSamplersNullWithoutPool(t *testing.T) {
	a := New(Options{})
	if s := (Sources{}).read(a.Snapshot()); s.Samplers != nil || s.SamplingItems != nil {
		t.Fatalf("%+v", s)
	}
	s := Sources{Samplers: func() []sampling.SamplerInfo { return nil }}.read(a.Snapshot())
	if b, _ := json.Marshal(s.Samplers); string(b) != "[]" {
		t.Fatalf("samplers %s", b)
	}
}

// The page shows attacker-influenced text (prompts, answers, tenant ids):
// its script must build the DOM from text nodes only, and load nothing
// from elsewhere.
func TestPageNeverParsesData(t *testing.T) {
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
		"http://", "https://", "@import", "url("} {
		if strings.Contains(string(page), bad) {
			t.Errorf("page.html contains %q", bad)
		}
	}
}
