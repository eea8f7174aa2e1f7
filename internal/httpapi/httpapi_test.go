package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/internal/embedded"
	"github.com/triage-dev/triage/internal/httpapi"
	"github.com/triage-dev/triage/internal/kafkatest"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
	"github.com/triage-dev/triage/sampling"
)

// api serves the API on a pipeline.Sync that records to an embedded
// broker, with the built-in rules, and a sampling pool that no sampler
// serves: an ambiguous event waits for one until its request's timeout.
type api struct {
	url     string
	brokers []string
}

// decider is a pipeline.Sync with the built-in rules, recording to an
// embedded broker with partitions per topic, in front of the guards and a
// sampling pool that no sampler serves until the test connects one.
type decider struct {
	sync    *pipeline.Sync
	pool    *sampling.Pool
	rules   *rules.Live
	brokers []string
}

func newDecider(tb testing.TB, partitions int32) decider {
	tb.Helper()
	set, err := rules.Parse("default.yaml", rules.Default, rules.WithMaskKey(rules.RandomMaskKey()))
	if err != nil {
		tb.Fatal(err)
	}
	d := decider{rules: rules.Static(set),
		brokers: kafkatest.EmbeddedWith(tb, embedded.Config{Topics: []string{"decisions", "audit"}, Partitions: partitions})}
	quiet := slog.New(slog.DiscardHandler)
	d.pool = sampling.NewPool(sampling.Options{QueueWait: time.Minute, Logger: quiet})
	tb.Cleanup(func() { _ = d.pool.Close() })
	d.sync, err = pipeline.NewSync(pipeline.SyncConfig{Brokers: d.brokers, Rules: d.rules,
		Decider: sampling.NewGuard(d.pool, sampling.GuardOptions{Logger: quiet}), Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(d.sync.Close) // before the pool closes: cleanups run last in, first out
	return d
}

func newAPI(t *testing.T) *api {
	t.Helper()
	d := newDecider(t, 1)
	s, live, brokers := d.sync, d.rules, d.brokers
	h := httpapi.Handler(s, httpapi.Options{Rules: live, MaxBatch: 3, Tokens: []httpapi.Token{
		{Name: "checkout", Secret: "secret-1"},
		{Name: "tenant-bound", Secret: "secret-2", Tenants: []string{"t2"}},
	}})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &api{url: srv.URL, brokers: brokers}
}

// transaction is a valid transaction event: the rules allow it, or with
// a large amount from a high-risk country send it to the LLM.
func transaction(id string, amount float64, country string) map[string]any {
	return map[string]any{"type": "transaction", "event_id": id, "tenant_id": "t1", "occurred_at": "2026-12-02T10:00:00Z",
		"account_id": "a1", "user_id": "u1", "amount": amount, "currency": "EUR", "country": country, "ip_country": "DE",
		"merchant": "m", "mcc": "5411", "channel": "ecommerce", "device_id": "d1",
		"txn_count_24h": 1, "avg_amount_30d": 50.0, "account_age_days": 400, "chargebacks_90d": 0}
}

// post sends body (JSON-encoded unless a string) to path with token and
// returns the status, headers and body.
func (a *api) post(t *testing.T, path, token string, body any) (int, http.Header, []byte) {
	t.Helper()
	raw, ok := body.(string)
	if !ok {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		raw = string(b)
	}
	req, err := http.NewRequest(http.MethodPost, a.url+path, strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, out
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return v
}

// records reads topic's records whose JSON event_id is id.
func records(t *testing.T, brokers []string, topic, id string) []map[string]any {
	t.Helper()
	return slices.DeleteFunc(kafkatest.ReadJSON[map[string]any](t, brokers, topic), func(m map[string]any) bool { return m["event_id"] != id })
}

func TestDecideValidAndRetried(t *testing.T) {
	a := newAPI(t)
	ev := transaction("e-1", 12.5, "DE")
	code, h, body := a.post(t, httpapi.DecidePath, "secret-1", map[string]any{"event": ev})
	if code != http.StatusOK || h.Get(httpapi.ReplayedHeader) != "" {
		t.Fatalf("status %d, replayed %q: %s", code, h.Get(httpapi.ReplayedHeader), body)
	}
	first := decode[pipeline.SyncAnswer](t, body)
	if first.Outcome != "allow" || first.Path != pipeline.PathRule || first.EventID != "e-1" || first.AuditID == "" {
		t.Fatalf("answer %s: want allow by rule", body)
	}
	code, h, body = a.post(t, httpapi.DecidePath, "secret-1", map[string]any{"event": ev})
	again := decode[pipeline.SyncAnswer](t, body)
	if code != http.StatusOK || h.Get(httpapi.ReplayedHeader) != "true" || !again.Replayed || again.AuditID != first.AuditID {
		t.Fatalf("retry: status %d, header %q, answer %s: want the first decision, replayed", code, h.Get(httpapi.ReplayedHeader), body)
	}
	if n := len(records(t, a.brokers, "decisions", "e-1")); n != 1 {
		t.Fatalf("%d decision records after a request and its retry, want 1", n)
	}
	recs := records(t, a.brokers, "audit", "e-1")
	if len(recs) != 1 || recs[0]["channel"] != audit.ChannelHTTP || recs[0]["caller"] != "checkout" || recs[0]["audit_id"] != first.AuditID {
		t.Fatalf("audit records %v: want one decision record, channel http, caller checkout", recs)
	}

	changed := transaction("e-1", 13, "DE")
	code, _, body = a.post(t, httpapi.DecidePath, "secret-1", map[string]any{"event": changed})
	if p := decode[httpapi.Problem](t, body); code != http.StatusConflict || p.Type != "urn:triage:problem:event_id_reused" {
		t.Fatalf("a reused event id: status %d %s, want 409 event_id_reused", code, body)
	}
}

func TestDecideRefusals(t *testing.T) {
	a := newAPI(t)
	ev := transaction("e-2", 12.5, "DE")
	missing := transaction("e-3", 12.5, "DE")
	delete(missing, "currency")
	for _, tc := range []struct {
		name   string
		token  string
		body   any
		status int
		kind   string
		detail string
	}{
		{"no token", "", map[string]any{"event": ev}, http.StatusUnauthorized, "unauthorized", ""},
		{"wrong token", "secret-x", map[string]any{"event": ev}, http.StatusUnauthorized, "unauthorized", ""},
		{"missing field", "secret-1", map[string]any{"event": missing}, http.StatusUnprocessableEntity, "invalid_event", "currency"},
		{"not JSON", "secret-1", `{"event":`, http.StatusBadRequest, "invalid_request", ""},
		{"unknown member", "secret-1", map[string]any{"event": ev, "priority": 1}, http.StatusBadRequest, "invalid_request", "priority"},
		{"empty", "secret-1", map[string]any{}, http.StatusBadRequest, "invalid_request", "required"},
		{"both", "secret-1", map[string]any{"event": ev, "events": []any{ev}}, http.StatusBadRequest, "invalid_request", "not both"},
		{"batch too big", "secret-1", map[string]any{"events": []any{ev, ev, ev, ev}}, http.StatusBadRequest, "invalid_request", "1 to 3"},
		{"other tenant", "secret-2", map[string]any{"event": ev}, http.StatusForbidden, "tenant_not_allowed", "t1"},
		{"too large", "secret-1", `{"event":"` + strings.Repeat("x", 9<<20) + `"}`, http.StatusRequestEntityTooLarge, "too_large", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, h, body := a.post(t, httpapi.DecidePath, tc.token, tc.body)
			p := decode[httpapi.Problem](t, body)
			if code != tc.status || p.Status != tc.status || p.Type != "urn:triage:problem:"+tc.kind || !strings.Contains(p.Detail, tc.detail) {
				t.Fatalf("status %d %s: want %d %s naming %q", code, body, tc.status, tc.kind, tc.detail)
			}
			if h.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("content type %q", h.Get("Content-Type"))
			}
			if code == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
	if n := len(records(t, a.brokers, "decisions", "e-2")) + len(records(t, a.brokers, "decisions", "e-3")); n != 0 {
		t.Fatalf("refused requests left %d decisions", n)
	}
}

// TestDecidePastDeadline: no sampler answers, so an ambiguous event gets
// its type's fallback when its timeout passes, recorded like any decision.
func TestDecidePastDeadline(t *testing.T) {
	a := newAPI(t)
	ev := transaction("e-4", 9000, "NG") // sample_large_high_risk
	for _, tc := range []struct {
		name   string
		path   string
		header string
	}{
		{"query", httpapi.DecidePath + "?timeout_ms=150", ""},
		{"header", httpapi.DecidePath, "150"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev["event_id"] = "e-4-" + tc.name
			raw, _ := json.Marshal(map[string]any{"event": ev})
			req, _ := http.NewRequest(http.MethodPost, a.url+tc.path, bytes.NewReader(raw))
			req.Header.Set("Authorization", "Bearer secret-1")
			if tc.header != "" {
				req.Header.Set(httpapi.TimeoutHeader, tc.header)
			}
			started := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			took := time.Since(started)
			ans := decode[pipeline.SyncAnswer](t, body)
			if resp.StatusCode != http.StatusOK || ans.Path != pipeline.PathFallback || ans.Reason != pipeline.FallbackTimeout || ans.Outcome != "review" {
				t.Fatalf("status %d %s: want the fallback review, reason timeout", resp.StatusCode, body)
			}
			// Not a timing assertion: the pool's queue wait is a minute,
			// so an answer well before it came from the request's bound.
			if took > 30*time.Second {
				t.Fatalf("answered after %s: the timeout did not bound the LLM stage", took)
			}
			recs := records(t, a.brokers, "decisions", ev["event_id"].(string))
			if len(recs) != 1 || recs[0]["path"] != pipeline.PathFallback {
				t.Fatalf("decision records %v: want the fallback recorded", recs)
			}
		})
	}
	code, _, body := a.post(t, httpapi.DecidePath+"?timeout_ms=soon", "secret-1", map[string]any{"event": ev})
	if code != http.StatusBadRequest {
		t.Fatalf("timeout_ms=soon: status %d %s, want 400", code, body)
	}
}

func TestDecideBatch(t *testing.T) {
	a := newAPI(t)
	bad := transaction("b-2", 10, "DE")
	bad["amount"] = "ten"
	code, _, body := a.post(t, httpapi.DecidePath, "secret-1", map[string]any{"events": []any{
		transaction("b-1", 10, "DE"), bad, transaction("b-3", 60000, "KP"),
	}})
	if code != http.StatusOK {
		t.Fatalf("status %d %s", code, body)
	}
	got := decode[struct{ Results []httpapi.BatchResult }](t, body)
	if len(got.Results) != 3 {
		t.Fatalf("%d results for 3 events: %s", len(got.Results), body)
	}
	r0, r1, r2 := got.Results[0], got.Results[1], got.Results[2]
	if r0.Decision == nil || r0.Decision.EventID != "b-1" || r0.Decision.Outcome != "allow" {
		t.Fatalf("first result %s: want b-1 allowed", body)
	}
	if r1.Error == nil || r1.Error.Status != http.StatusUnprocessableEntity || !strings.Contains(r1.Error.Detail, "amount") {
		t.Fatalf("second result %s: want an invalid_event naming amount", body)
	}
	if r2.Decision == nil || r2.Decision.EventID != "b-3" || r2.Decision.Outcome != "block" || r2.Decision.RuleID != "block_sanctioned" {
		t.Fatalf("third result %s: want b-3 blocked by block_sanctioned", body)
	}
}

// TestOpenAPIDocument: the served document is OpenAPI 3.1 for the decide
// operation, and its schemas hold for what the API answers and accepts.
func TestOpenAPIDocument(t *testing.T) {
	a := newAPI(t)
	resp, err := http.Get(a.url + httpapi.OpenAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var doc struct {
		OpenAPI    string `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage
		Components struct {
			Schemas map[string]json.RawMessage
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" || doc.Paths[httpapi.DecidePath]["post"] == nil {
		t.Fatalf("openapi %q, paths %v: want 3.1.0 with POST %s", doc.OpenAPI, doc.Paths, httpapi.DecidePath)
	}
	schema := func(name string) *jsonschema.Resolved {
		var s jsonschema.Schema
		if err := json.Unmarshal(doc.Components.Schemas[name], &s); err != nil {
			t.Fatalf("schema %s: %v", name, err)
		}
		r, err := s.Resolve(nil)
		if err != nil {
			t.Fatalf("schema %s: %v", name, err)
		}
		return r
	}
	_, _, body := a.post(t, httpapi.DecidePath, "secret-1", map[string]any{"event": transaction("o-1", 10, "DE")})
	if err := schema("Decision").Validate(decode[map[string]any](t, body)); err != nil {
		t.Fatalf("an answer %s does not fit the Decision schema: %v", body, err)
	}
	_, _, body = a.post(t, httpapi.DecidePath, "secret-1", map[string]any{"event": map[string]any{"type": "transaction"}})
	if err := schema("Problem").Validate(decode[map[string]any](t, body)); err != nil {
		t.Fatalf("a problem %s does not fit the Problem schema: %v", body, err)
	}
	event := schema("Event")
	valid := decode[map[string]any](t, must(json.Marshal(transaction("o-2", 10, "DE"))))
	if err := event.Validate(valid); err != nil {
		t.Fatalf("a valid transaction does not fit the Event schema: %v", err)
	}
	invalid := transaction("o-3", 10, "DE")
	invalid["currency"] = "euro"
	if err := event.Validate(decode[map[string]any](t, must(json.Marshal(invalid)))); err == nil {
		t.Fatal("a transaction with currency \"euro\" fits the Event schema")
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(fmt.Sprint("marshal: ", err))
	}
	return b
}

func TestLoadTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("# callers\ncheckout s1\n\nagent s2 t1,t2\n")
	got, err := httpapi.LoadTokens(path)
	if err != nil || len(got) != 2 || got[0].Name != "checkout" || got[1].Secret != "s2" || len(got[1].Tenants) != 2 {
		t.Fatalf("tokens %+v, %v", got, err)
	}
	for _, bad := range []string{"lonely\n", "a zz-secret t1 extra\n", "a zz-secret\nb zz-secret\n"} {
		write(bad)
		if _, err := httpapi.LoadTokens(path); err == nil || strings.Contains(err.Error(), "zz-secret") {
			t.Errorf("%q: error %v, want one that names no token", bad, err)
		}
	}
}
