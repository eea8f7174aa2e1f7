package sampling_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
	"github.com/triage-dev/triage/sampling"
	"github.com/triage-dev/triage/sampling/work"
)

// toolRules offers transaction_history on payments, whose device is hashed
// and whose user_id is not allow-listed.
const toolRules = `types:
  payment:
    key: account_id
    fields:
      account_id: {type: string, required: true}
      user_id: {type: string, required: true}
      amount: {type: number, required: true, min: 0}
      device: {type: string, required: true}
    outcomes: [allow, review, block]
    fallback: review
    default: sample
    rules: []
    sampling:
      timeout: 5s
      system: You review payments.
      fields: [amount, device]
      mask: {device: hash}
      template: "Payment of {{.amount}} from device {{.device}}."
      tools: [transaction_history]
      max_tool_rounds: 2
`

// toolSetup is a payment type, a history holding payments of account a-1
// (three in tenant t, one in tenant u) and a-2, and the item under
// decision: payment ev-now of a-1 in tenant t, observed like the others.
func toolSetup(t *testing.T) (*sampling.History, pipeline.Item) {
	t.Helper()
	set, err := rules.Parse("tools.yaml", []byte(toolRules), rules.WithMaskKey(rules.RandomMaskKey()))
	typ := paymentIn(t, set, err)
	h := sampling.NewHistory(sampling.HistoryOptions{})
	observe := func(id, tenant, account string, amount int) pipeline.Event {
		fields := map[string]any{"event_id": id, "type": "payment", "tenant_id": tenant, "occurred_at": "2026-11-26T10:00:00Z",
			"account_id": account, "user_id": "user-" + account, "amount": json.Number(fmt.Sprint(amount)), "device": "raw-device-" + account}
		if err := typ.Validate(fields); err != nil {
			t.Fatal(err)
		}
		ev := pipeline.Event{ID: id, Type: "payment", TenantID: tenant, Key: account, Fields: fields}
		h.Observe(typ, ev)
		return ev
	}
	observe("ev-1", "t", "a-1", 101)
	observe("ev-2", "t", "a-1", 102)
	observe("ev-3", "t", "a-2", 999)
	observe("ev-4", "u", "a-1", 888)
	ev := observe("ev-now", "t", "a-1", 5000)
	return h, pipeline.Item{Event: ev, Type: typ, Rule: rules.Result{Type: "payment", RuleID: rules.DefaultRuleID, Action: rules.ActionSample}}
}

// toolSampler is a sampler that runs tool loops: a go-sdk client with a
// CreateMessageWithToolsHandler that answers by script and keeps every
// request it got.
type toolSampler struct {
	mu     sync.Mutex
	seen   []*mcp.CreateMessageWithToolsParams
	script func(p *mcp.CreateMessageWithToolsParams) *mcp.CreateMessageWithToolsResult
}

func (s *toolSampler) client() *mcp.Client {
	return mcp.NewClient(&mcp.Implementation{Name: "tool-sampler", Version: "v0"}, &mcp.ClientOptions{
		CreateMessageWithToolsHandler: func(_ context.Context, req *mcp.CreateMessageWithToolsRequest) (*mcp.CreateMessageWithToolsResult, error) {
			s.mu.Lock()
			s.seen = append(s.seen, req.Params)
			s.mu.Unlock()
			return s.script(req.Params), nil
		},
	})
}

func (s *toolSampler) requests() []*mcp.CreateMessageWithToolsParams {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen)
}

// outOfScopeThenAnswer asks, while tools are offered and no results came
// back yet, for another account's history and for its own; then it
// decides review.
func outOfScopeThenAnswer(p *mcp.CreateMessageWithToolsParams) *mcp.CreateMessageWithToolsResult {
	if len(p.Tools) > 0 && !hasToolResults(p) {
		return &mcp.CreateMessageWithToolsResult{Role: "assistant", Model: "fake-model", StopReason: "toolUse", Content: []mcp.Content{
			&mcp.ToolUseContent{ID: "c1", Name: rules.ToolTransactionHistory, Input: map[string]any{"account_id": "a-2"}},
			&mcp.ToolUseContent{ID: "c2", Name: rules.ToolTransactionHistory, Input: map[string]any{"limit": 5}},
		}}
	}
	return textResult(`{"outcome":"review","reason":"unusual next to its history","score":0.7}`)
}

// alwaysTools calls the history tool whatever it is asked.
func alwaysTools(*mcp.CreateMessageWithToolsParams) *mcp.CreateMessageWithToolsResult {
	return &mcp.CreateMessageWithToolsResult{Role: "assistant", Model: "fake-model", StopReason: "toolUse", Content: []mcp.Content{
		&mcp.ToolUseContent{ID: "c", Name: rules.ToolTransactionHistory, Input: map[string]any{}},
	}}
}

func textResult(text string) *mcp.CreateMessageWithToolsResult {
	return &mcp.CreateMessageWithToolsResult{Role: "assistant", Model: "fake-model", StopReason: "endTurn",
		Content: []mcp.Content{&mcp.TextContent{Text: text}}}
}

func hasToolResults(p *mcp.CreateMessageWithToolsParams) bool {
	for _, m := range p.Messages {
		for _, c := range m.Content {
			if _, ok := c.(*mcp.ToolResultContent); ok {
				return true
			}
		}
	}
	return false
}

// connectTools connects cl to the pool in memory on version ("" is the
// SDK's default, 2026-07-28); with pull, it runs the work tool's loop
// until the test ends, declaring tools in its arguments when declare is
// set.
func connectTools(t *testing.T, pool *sampling.Pool, cl *mcp.Client, version string, pull, declare bool) {
	t.Helper()
	ct, st := mcp.NewInMemoryTransports()
	ctx, cancel := context.WithCancel(context.Background())
	ss, err := pool.Server().Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := cl.Connect(ctx, ct, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		_ = cs.Close()
		_ = ss.Close()
	})
	if !pull {
		return
	}
	wg.Go(func() {
		for ctx.Err() == nil {
			_, _ = cs.CallTool(ctx, &mcp.CallToolParams{Name: work.ToolName,
				Arguments: map[string]any{"wait_ms": 200, "tools": declare, "sampler": "tool-sampler"}})
		}
	})
}

func decideOne(t *testing.T, d pipeline.Decider, it pipeline.Item) (pipeline.Verdict, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	return d.Decide(ctx, it)
}

// records returns the verdict's audit records of kind.
func records(v pipeline.Verdict, kind audit.Kind) []audit.Record {
	var out []audit.Record
	for _, a := range v.Attempts {
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

// checkScopedLoop checks the verdict of outOfScopeThenAnswer: decided,
// with the other account's history refused and audited, and the own
// account's history returned masked, without the event itself, another
// account's or another tenant's events.
func checkScopedLoop(t *testing.T, v pipeline.Verdict, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("Decide: %v (attempts %+v)", err, v.Attempts)
	}
	if v.Outcome != "review" {
		t.Errorf("outcome = %q, want review", v.Outcome)
	}
	calls := records(v, audit.KindToolCall)
	if len(calls) != 2 {
		t.Fatalf("tool call records = %d, want 2: %+v", len(calls), v.Attempts)
	}
	denied, ok := calls[0], calls[1]
	if denied.Status != audit.StatusDenied || denied.Tool != rules.ToolTransactionHistory ||
		!strings.Contains(denied.Reason, "not the account_id") || denied.RequestSummary != `{"account_id":"a-2"}` ||
		denied.Path != pipeline.PathSampled {
		t.Errorf("refused call's record = %+v", denied)
	}
	if ok.Status != audit.StatusOK || ok.Tool != rules.ToolTransactionHistory || ok.RequestSummary != `{"limit":5}` {
		t.Errorf("allowed call's record = %+v", ok)
	}
	var got struct {
		Events []map[string]any `json:"events"`
		Count  int              `json:"count"`
	}
	if err := json.Unmarshal([]byte(ok.ResponseSummary), &got); err != nil {
		t.Fatalf("result %q: %v", ok.ResponseSummary, err)
	}
	if got.Count != 2 || len(got.Events) != 2 || got.Events[0]["amount"] != 102.0 || got.Events[1]["amount"] != 101.0 {
		t.Errorf("history = %s, want a-1's two earlier payments in tenant t, newest first", ok.ResponseSummary)
	}
	for _, leak := range []string{"raw-device", "user-", "account_id", `"amount":999`, `"amount":888`, `"amount":5000`} {
		if strings.Contains(ok.ResponseSummary, leak) {
			t.Errorf("history %s shows %q", ok.ResponseSummary, leak)
		}
	}
	if d, _ := got.Events[0]["device"].(string); !strings.HasPrefix(d, "h:") {
		t.Errorf("device = %v, want it hashed", got.Events[0]["device"])
	}
	sampled := records(v, audit.KindSampling)
	if len(sampled) != 2 || sampled[0].Reason != "the model called tools" || sampled[1].Status != audit.StatusOK {
		t.Errorf("sampling records = %+v", sampled)
	}
}

// checkSecondRequest checks the request that followed the tool round: the
// assistant's calls and the results, the refusal marked as an error.
func checkSecondRequest(t *testing.T, seen []*mcp.CreateMessageWithToolsParams) {
	t.Helper()
	if len(seen) != 2 {
		t.Fatalf("sampler got %d requests, want 2", len(seen))
	}
	if len(seen[0].Tools) != 1 || seen[0].Tools[0].Name != rules.ToolTransactionHistory {
		t.Errorf("first request's tools = %v", seen[0].Tools)
	}
	msgs := seen[1].Messages
	if len(msgs) != 3 || len(seen[1].Tools) != 1 {
		t.Fatalf("second request: %d messages, %d tools; want 3 and 1", len(msgs), len(seen[1].Tools))
	}
	var results []*mcp.ToolResultContent
	for _, c := range msgs[2].Content {
		if r, ok := c.(*mcp.ToolResultContent); ok {
			results = append(results, r)
		}
	}
	if msgs[2].Role != "user" || len(results) != 2 || results[0].ToolUseID != "c1" || !results[0].IsError || results[1].IsError {
		t.Errorf("tool results = %+v", msgs[2])
	}
}

// TestToolLoop: in every mode, a sampler that runs tools asks for another
// account's history (refused and audited) and its own (masked, scoped),
// and still decides.
func TestToolLoop(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version string
		pull    bool
	}{
		{"pull " + work.ProtocolMRTR, "", true},
		{"pull " + legacy, legacy, true},
		{"push " + legacy, legacy, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, it := toolSetup(t)
			pool := newPool(t, sampling.Options{History: h, PushGrace: 10 * time.Millisecond})
			s := &toolSampler{script: outOfScopeThenAnswer}
			connectTools(t, pool, s.client(), tc.version, tc.pull, true)
			v, err := decideOne(t, pool, it)
			checkScopedLoop(t, v, err)
			checkSecondRequest(t, s.requests())
			wantMode := sampling.ModePull
			if !tc.pull {
				wantMode = sampling.ModePush
			}
			for _, a := range v.Attempts {
				if a.Mode != wantMode {
					t.Errorf("record %s mode = %q, want %q", a.Kind, a.Mode, wantMode)
				}
			}
		})
	}
	t.Run("direct", func(t *testing.T) {
		h, it := toolSetup(t)
		prov := &toolProvider{script: func(req llm.Request) llm.Response {
			return llmResponse(outOfScopeThenAnswer(requestToMCP(req)))
		}}
		v, err := decideOne(t, sampling.NewDirect(prov, sampling.DirectOptions{History: h}), it)
		checkScopedLoop(t, v, err)
		checkSecondRequest(t, mcpRequests(prov.requests()))
	})
}

// TestToolsNotDeclared: a sampler that did not declare tool support gets
// the request without tools and decides.
func TestToolsNotDeclared(t *testing.T) {
	for _, tc := range []struct{ name, version string }{
		{"pull " + work.ProtocolMRTR, ""},
		{"pull " + legacy, legacy},
	} {
		t.Run(tc.name+" without the argument", func(t *testing.T) {
			h, it := toolSetup(t)
			pool := newPool(t, sampling.Options{History: h})
			// It could run tools, but on 2026-07-28 it does not say so, and
			// on 2025-11-25 its capabilities say so.
			s := &toolSampler{script: outOfScopeThenAnswer}
			connectTools(t, pool, s.client(), tc.version, true, false)
			v, err := decideOne(t, pool, it)
			seen := s.requests()
			if tc.version == legacy {
				// Declared in its capabilities: tools offered.
				checkScopedLoop(t, v, err)
				return
			}
			if err != nil || v.Outcome != "review" || len(records(v, audit.KindToolCall)) != 0 {
				t.Fatalf("Decide = %+v, %v; want review without tool calls", v, err)
			}
			if len(seen) != 1 || len(seen[0].Tools) != 0 {
				t.Errorf("requests = %d, tools %v; want one request without tools", len(seen), seen[0].Tools)
			}
		})
	}
	t.Run("direct, provider without tools", func(t *testing.T) {
		h, it := toolSetup(t)
		prov := &toolProvider{noTools: true, script: func(req llm.Request) llm.Response {
			return llmResponse(outOfScopeThenAnswer(requestToMCP(req)))
		}}
		v, err := decideOne(t, sampling.NewDirect(prov, sampling.DirectOptions{History: h}), it)
		if err != nil || v.Outcome != "review" || len(records(v, audit.KindToolCall)) != 0 {
			t.Fatalf("Decide = %+v, %v; want review without tool calls", v, err)
		}
		if reqs := prov.requests(); len(reqs) != 1 || len(reqs[0].Tools) != 0 {
			t.Errorf("requests = %+v, want one without tools", reqs)
		}
	})
	t.Run("basic sampler "+legacy, func(t *testing.T) {
		h, it := toolSetup(t)
		pool := newPool(t, sampling.Options{History: h})
		c := connectMemory(t, pool, legacy, outcomeAnswer("allow"))
		ctx, cancel := context.WithCancel(context.Background())
		wg := c.pull(ctx, t, 1)
		defer func() { cancel(); wg.Wait() }()
		v, err := decideOne(t, pool, it)
		if err != nil || v.Outcome != "allow" || len(records(v, audit.KindToolCall)) != 0 {
			t.Fatalf("Decide = %+v, %v; want allow without tool calls", v, err)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, p := range c.seen {
			for _, m := range p.Messages {
				if _, ok := m.Content.(*mcp.TextContent); !ok {
					t.Errorf("basic sampler got %T content", m.Content)
				}
			}
		}
	})
}

// TestToolRoundsBounded: a model that keeps calling tools gets max_tool_rounds
// rounds, then a request without tools; calling tools then is an invalid
// answer, and after the corrective round the item falls back.
func TestToolRoundsBounded(t *testing.T) {
	check := func(t *testing.T, v pipeline.Verdict, err error, seen []*mcp.CreateMessageWithToolsParams) {
		t.Helper()
		if !errors.Is(err, sampling.ErrInvalidAnswer) {
			t.Fatalf("err = %v, want ErrInvalidAnswer", err)
		}
		if n := len(records(v, audit.KindToolCall)); n != 2 {
			t.Errorf("tool call records = %d, want 2 (max_tool_rounds)", n)
		}
		if len(seen) != 4 {
			t.Fatalf("requests = %d, want 4: two rounds, the final one and the corrective one", len(seen))
		}
		for i, p := range seen {
			if offered := len(p.Tools) > 0; offered != (i < 2) {
				t.Errorf("request %d offers tools: %v", i, offered)
			}
		}
		last := seen[2].Messages[len(seen[2].Messages)-1]
		text, _ := last.Content[0].(*mcp.TextContent)
		if text == nil || !strings.Contains(text.Text, "No more tools may be called") {
			t.Errorf("final request's last message = %+v, want the tool results as text and the demand for an answer", last.Content)
		}
	}
	t.Run("pull", func(t *testing.T) {
		h, it := toolSetup(t)
		pool := newPool(t, sampling.Options{History: h, Requeues: -1})
		s := &toolSampler{script: alwaysTools}
		connectTools(t, pool, s.client(), "", true, true)
		v, err := decideOne(t, pool, it)
		check(t, v, err, s.requests())
	})
	t.Run("direct", func(t *testing.T) {
		h, it := toolSetup(t)
		prov := &toolProvider{script: func(req llm.Request) llm.Response { return llmResponse(alwaysTools(requestToMCP(req))) }}
		v, err := decideOne(t, sampling.NewDirect(prov, sampling.DirectOptions{History: h}), it)
		check(t, v, err, mcpRequests(prov.requests()))
	})
}

// TestToolErrors: unknown tools, bad arguments and another tenant are
// answered as errors and audited; the decision is still made.
func TestToolErrors(t *testing.T) {
	h, it := toolSetup(t)
	calls := []llm.ToolCall{
		{ID: "1", Name: "wire_money", Input: map[string]any{"to": "x"}},
		{ID: "2", Name: rules.ToolTransactionHistory, Input: map[string]any{"limit": "ten"}},
		{ID: "3", Name: rules.ToolTransactionHistory, Input: map[string]any{"tenant_id": "u", "limit": 1.0}},
		{ID: "4", Name: rules.ToolTransactionHistory, Input: map[string]any{"tenant_id": "t", "account_id": "a-1", "limit": 1.0}},
		{ID: "5", Name: rules.ToolTransactionHistory, Input: map[string]any{}},
	}
	prov := &toolProvider{script: func(req llm.Request) llm.Response {
		if len(req.Tools) > 0 && len(req.Messages) == 1 {
			return llm.Response{ToolCalls: calls, StopReason: llm.StopToolUse, Model: "m"}
		}
		return llm.Response{Text: `{"outcome":"allow","reason":"fine"}`, Model: "m"}
	}}
	v, err := decideOne(t, sampling.NewDirect(prov, sampling.DirectOptions{History: h}), it)
	if err != nil || v.Outcome != "allow" {
		t.Fatalf("Decide = %+v, %v", v, err)
	}
	want := []struct {
		status audit.Status
		reason string
	}{
		{audit.StatusError, `unknown tool "wire_money"`},
		{audit.StatusError, "limit"},
		{audit.StatusDenied, "tenant_id"},
		{audit.StatusOK, ""},
		{audit.StatusError, "at most 4 tool calls"},
	}
	got := records(v, audit.KindToolCall)
	if len(got) != len(want) {
		t.Fatalf("tool call records = %+v", got)
	}
	for i, w := range want {
		if got[i].Status != w.status || !strings.Contains(got[i].Reason, w.reason) {
			t.Errorf("call %d: %s %q, want %s %q", i+1, got[i].Status, got[i].Reason, w.status, w.reason)
		}
	}
	if !strings.Contains(got[3].ResponseSummary, `"count":1`) {
		t.Errorf("own account, explicit: %s", got[3].ResponseSummary)
	}
}

// TestHistory: windows are per tenant, type and key, hold the last PerKey
// events, skip redeliveries, and forget the entities observed least
// recently past MaxEntries.
func TestHistory(t *testing.T) {
	_, it := toolSetup(t)
	typ := it.Type
	set, err := rules.Parse("default.yaml", rules.Default, rules.WithMaskKey(rules.RandomMaskKey()))
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := set.Type("document")
	h := sampling.NewHistory(sampling.HistoryOptions{PerKey: 3, MaxEntries: 6})
	add := func(id, tenant, key string) {
		h.Observe(typ, pipeline.Event{ID: id, Type: "payment", TenantID: tenant, Key: key,
			Fields: map[string]any{"amount": 1.0, "device": "d", "account_id": key, "user_id": "secret"}})
	}
	for i := range 5 {
		add(fmt.Sprint("a", i), "t", "a")
	}
	add("a4", "t", "a") // redelivered
	add("b0", "u", "a") // another tenant, same key
	if got := h.Recent(typ, "t", "a", "", 0); len(got) != 3 {
		t.Errorf("window of a = %d events, want 3", len(got))
	}
	if got := h.Recent(typ, "u", "a", "", 0); len(got) != 1 {
		t.Errorf("tenant u's window of a = %d events, want 1", len(got))
	}
	if got := h.Recent(doc, "t", "a", "", 0); len(got) != 0 {
		t.Errorf("another type's window = %v", got)
	}
	if got := h.Recent(typ, "t", "a", "a4", 2); len(got) != 2 {
		t.Errorf("window without a4, limit 2 = %d events", len(got))
	}
	for _, e := range h.Recent(typ, "t", "a", "", 0) {
		if _, ok := e["user_id"]; ok || e["device"] == "d" {
			t.Errorf("kept %v: want the allow-list, masked", e)
		}
	}
	add("c0", "t", "c")
	add("c1", "t", "c")
	add("c2", "t", "c") // 3 + 1 + 3 > 6: a of t, observed least recently, goes
	if keys, events := h.Len(); keys != 2 || events != 4 {
		t.Errorf("Len = %d entities, %d events; want 2, 4", keys, events)
	}
	if got := h.Recent(typ, "t", "a", "", 0); got != nil {
		t.Errorf("evicted window = %v", got)
	}

	h.Observe(doc, pipeline.Event{ID: "d1", Type: "document", TenantID: "t", Key: "doc", Fields: map[string]any{"title": "x"}})
	if keys, _ := h.Len(); keys != 2 {
		t.Errorf("a type without transaction_history was kept")
	}
}

// toolProvider is a test double of an LLM provider that runs tools: it
// answers each request by script and keeps them.
type toolProvider struct {
	noTools bool // says it does not run tools
	mu      sync.Mutex
	seen    []llm.Request
	script  func(llm.Request) llm.Response
}

func (p *toolProvider) Name() string { return "tool-provider" }

// SupportsTools says that the provider runs tool loops (llm.Provider).
func (p *toolProvider) SupportsTools() bool { return !p.noTools }

func (p *toolProvider) Complete(_ context.Context, req llm.Request) (llm.Response, error) {
	p.mu.Lock()
	p.seen = append(p.seen, req)
	p.mu.Unlock()
	return p.script(req), nil
}

func (p *toolProvider) requests() []llm.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.seen)
}

var (
	requestToMCP = sampling.RequestToMCP
	llmResponse  = func(r *mcp.CreateMessageWithToolsResult) llm.Response {
		resp, _ := work.ResponseFromMCP(r)
		return resp
	}
)

func mcpRequests(reqs []llm.Request) []*mcp.CreateMessageWithToolsParams {
	out := make([]*mcp.CreateMessageWithToolsParams, len(reqs))
	for i, r := range reqs {
		out[i] = requestToMCP(r)
	}
	return out
}

// TestDocumentMetadata: the document under decision's metadata, masked;
// another document's is refused.
func TestDocumentMetadata(t *testing.T) {
	set, err := rules.Parse("default.yaml", rules.Default, rules.WithMaskKey(rules.RandomMaskKey()))
	if err != nil {
		t.Fatal(err)
	}
	typ, _ := set.Type("document")
	fields := map[string]any{"event_id": "d-1", "type": "document", "tenant_id": "t", "occurred_at": "2026-11-26T10:00:00Z",
		"doc_id": "doc-1", "owner_id": "owner-1", "mime": "application/pdf", "size_bytes": json.Number("2048"),
		"title": "CV of bob@example.com", "text": "secret text"}
	if err := typ.Validate(fields); err != nil {
		t.Fatal(err)
	}
	it := pipeline.Item{Event: pipeline.Event{ID: "d-1", Type: "document", TenantID: "t", Key: "doc-1", Fields: fields},
		Type: typ, Rule: rules.Result{Type: "document", RuleID: "sample_unknown_template", Action: rules.ActionSample}}
	prov := &toolProvider{script: func(req llm.Request) llm.Response {
		if len(req.Tools) > 0 && len(req.Messages) == 1 {
			return llm.Response{StopReason: llm.StopToolUse, ToolCalls: []llm.ToolCall{
				{ID: "1", Name: rules.ToolDocumentMetadata, Input: map[string]any{"doc_id": "doc-2"}},
				{ID: "2", Name: rules.ToolDocumentMetadata, Input: map[string]any{"doc_id": "doc-1"}},
				{ID: "3", Name: rules.ToolTransactionHistory, Input: map[string]any{}},
			}}
		}
		return llm.Response{Text: `{"outcome":"contains_pii","reason":"a CV"}`}
	}}
	v, err := decideOne(t, sampling.NewDirect(prov, sampling.DirectOptions{History: sampling.NewHistory(sampling.HistoryOptions{})}), it)
	if err != nil || v.Outcome != "contains_pii" {
		t.Fatalf("Decide = %+v, %v", v, err)
	}
	got := records(v, audit.KindToolCall)
	if len(got) != 3 || got[0].Status != audit.StatusDenied || got[1].Status != audit.StatusOK || got[2].Status != audit.StatusError {
		t.Fatalf("tool call records = %+v", got)
	}
	want := `{"mime":"application/pdf","size_bytes":2048,"title":"CV of [EMAIL]"}`
	if got[1].ResponseSummary != want {
		t.Errorf("metadata = %s, want %s", got[1].ResponseSummary, want)
	}
	if tools := prov.requests()[0].Tools; len(tools) != 1 || tools[0].Name != rules.ToolDocumentMetadata {
		t.Errorf("offered tools = %+v, want document_metadata only", tools)
	}
}

// TestHistoryAnswersAreNotCached: an answer that read the account's
// history is not reused for an identical request (the history moves on);
// one that did not is.
func TestHistoryAnswersAreNotCached(t *testing.T) {
	set, err := rules.Parse("tools.yaml", []byte(toolRules+"guards:\n  cache: {ttl: {payment: 1m}}\n"), rules.WithMaskKey(rules.RandomMaskKey()))
	typ := paymentIn(t, set, err)
	h := sampling.NewHistory(sampling.HistoryOptions{})
	item := func(id string, amount int) pipeline.Item {
		fields := map[string]any{"event_id": id, "type": "payment", "tenant_id": "t", "occurred_at": "2026-11-26T10:00:00Z",
			"account_id": "a-1", "user_id": "u", "amount": json.Number(fmt.Sprint(amount)), "device": "d"}
		if err := typ.Validate(fields); err != nil {
			t.Fatal(err)
		}
		ev := pipeline.Event{ID: id, Type: "payment", TenantID: "t", Key: "a-1", Fields: fields}
		h.Observe(typ, ev)
		return pipeline.Item{Event: ev, Type: typ, Rule: rules.Result{Type: "payment", RuleID: rules.DefaultRuleID, Action: rules.ActionSample}}
	}
	prov := &toolProvider{script: func(req llm.Request) llm.Response {
		if !strings.HasPrefix(req.Messages[0].Text, "Payment of 7 ") {
			return llmResponse(textResult(`{"outcome":"allow","reason":"small","score":0.9}`))
		}
		return llmResponse(outOfScopeThenAnswer(requestToMCP(req)))
	}}
	g := sampling.NewGuard(sampling.NewDirect(prov, sampling.DirectOptions{History: h}), sampling.GuardOptions{Logger: testLogger()})
	paths := func(amount int) []string {
		var out []string
		for i := range 2 {
			v, err := decideOne(t, g, item(fmt.Sprint("ev-", amount, "-", i), amount))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, v.Path)
		}
		return out
	}
	if got := paths(7); !slices.Equal(got, []string{"sampled", "sampled"}) {
		t.Errorf("answers that read the history: %v, want both sampled", got)
	}
	if got := paths(8); !slices.Equal(got, []string{"sampled", "cache"}) {
		t.Errorf("answers without tools: %v, want sampled then cache", got)
	}
}

// TestPullRoundsFitToolLoops: a call takes a further item only when the
// item's longest exchange (max_tool_rounds 2, the answer and the
// corrective round: 4 requests) fits in the rounds its client takes (9):
// the go-sdk client gives up on a call past them, which would leave its
// items to expire. An item taken when it no longer fits goes back to the
// queue, for the sampler's next call.
func TestPullRoundsFitToolLoops(t *testing.T) {
	for _, tc := range []struct {
		name    string
		script  func(*mcp.CreateMessageWithToolsParams) *mcp.CreateMessageWithToolsResult
		outcome string
		want    []int // items per call
	}{
		// Two requests an item: at rounds 1, 3 and 5; at 7 one would need
		// up to 10.
		{"one tool round", oneToolRoundThenAnswer, "review", []int{3, 3}},
		// Four requests an item, as many as may be: at rounds 1 and 5.
		{"tools until refused", alwaysTools, "", []int{2, 2, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, it := toolSetup(t)
			pool := newPool(t, sampling.Options{History: h, Requeues: -1})
			s := &toolSampler{script: tc.script}
			cl := s.client()
			ct, st := mcp.NewInMemoryTransports()
			ctx, cancel := context.WithCancel(context.Background())
			ss, err := pool.Server().Connect(ctx, st, nil)
			if err != nil {
				t.Fatal(err)
			}
			cs, err := cl.Connect(ctx, ct, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				cancel()
				_ = cs.Close()
				_ = ss.Close()
			})
			calls := pullCalls(t, cs, map[string]any{"wait_ms": 2000, "tools": true, "rounds": work.GoSDKRounds})
			n := 0
			for _, k := range tc.want {
				n += k
			}
			for i := range n {
				next := it
				next.Event.ID = fmt.Sprintf("ev-now-%d", i)
				v, err := decideOne(t, pool, next)
				if tc.outcome == "" {
					if !errors.Is(err, sampling.ErrInvalidAnswer) {
						t.Fatalf("item %d: %v, want ErrInvalidAnswer", i, err)
					}
				} else if err != nil || v.Outcome != tc.outcome {
					t.Fatalf("item %d: %+v %v", i, v, err)
				}
			}
			var perCall []int
			waitUntil(t, "every item in a call's result", func() bool {
				perCall = calls()
				return len(perCall) == len(tc.want)
			})
			if !slices.Equal(perCall, tc.want) {
				t.Fatalf("items per call %v, want %v", perCall, tc.want)
			}
		})
	}
}

// oneToolRoundThenAnswer calls the history tool once, then decides review.
func oneToolRoundThenAnswer(p *mcp.CreateMessageWithToolsParams) *mcp.CreateMessageWithToolsResult {
	if len(p.Tools) > 0 && !hasToolResults(p) {
		return &mcp.CreateMessageWithToolsResult{Role: "assistant", Model: "fake-model", StopReason: "toolUse", Content: []mcp.Content{
			&mcp.ToolUseContent{ID: "c", Name: rules.ToolTransactionHistory, Input: map[string]any{}},
		}}
	}
	return textResult(`{"outcome":"review","reason":"in line with its history","score":0.4}`)
}
