package status

import (
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/internal/headless"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/sampling"
)

// Markup in what the page shows (a document's text quoted in a prompt, a
// model's answer, a tenant id, a sampler's name) reaches the DOM as text,
// in a real browser: no element is created from it and no handler runs.
func TestPageShowsMarkupAsText(t *testing.T) {
	bin, err := headless.Find()
	if err != nil {
		t.Fatal(err)
	}
	const payload = `<img src=x onerror="document.body.dataset.pwned=1"><script>document.body.dataset.pwned=2</script>`
	a := New(Options{})
	r := pipeline.Result{
		Decision: &pipeline.Decision{EventID: "ev-1", Type: "document", TenantID: "tenant" + payload, Path: pipeline.PathSampled,
			Outcome: "no_pii", Model: "model" + payload, Tier: "tier" + payload},
		Latency: 120 * time.Millisecond,
		Trail: []*audit.Record{
			{Kind: audit.KindSampling, TenantID: "tenant" + payload, ModelAnswered: "model" + payload, Status: audit.StatusOK,
				RequestSummary: "Title:\n<<<\n" + payload + "\n>>>", ResponseSummary: `{"outcome":"no_pii","reason":"` + payload + `"}`},
			{Kind: audit.KindToolCall, Tool: "tool" + payload, Status: audit.StatusOK},
			{Kind: audit.KindDecision, AuditID: "11111111-2222-3333-4444-555555555555"},
		},
	}
	a.Add(r)
	fb := r
	fb.Decision = &pipeline.Decision{EventID: "ev-2", Type: "document", TenantID: "t", Path: pipeline.PathFallback, Outcome: "contains_pii", Reason: "reason" + payload}
	fb.Trail = nil
	a.Add(fb)
	srv := httptest.NewServer(Handler(a, Sources{
		Decider: "decider" + payload,
		Paused:  func() map[string][]int32 { return map[string][]int32{"topic" + payload: {0}} },
		Samplers: func() []sampling.SamplerInfo {
			return []sampling.SamplerInfo{{Name: "sampler" + payload, Protocol: "proto" + payload, Mode: "pull", Region: "region" + payload}}
		},
	}))
	defer srv.Close()

	dom, err := headless.Browser{Bin: bin, ProfileDir: t.TempDir(), BudgetMS: 3000}.DumpDOM(t.Context(), srv.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`id="decisions"[^>]*data-value="2"`).MatchString(dom) {
		t.Fatalf("the page did not render the snapshot:\n%s", dom)
	}
	if strings.Contains(dom, "<img") || strings.Contains(dom, "pwned=\"") || strings.Contains(dom, "data-pwned") {
		t.Fatalf("markup from the data became elements:\n%s", dom)
	}
	escaped := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(payload)
	for _, where := range []string{"tenant", "model", "tier", "reason", "decider", "sampler", "proto", "region", "tool", "topic", "Title:\n&lt;&lt;&lt;\n"} {
		if !strings.Contains(dom, where+escaped) {
			t.Errorf("%q is not shown as text", where)
		}
	}
	// Two <script> elements would mean one came from the data.
	if n := strings.Count(dom, "<script"); n != 1 {
		t.Fatalf("%d script elements in the DOM", n)
	}
}
