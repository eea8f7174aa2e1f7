package client_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/sampling/client"
)

// chatServer speaks the OpenAI Chat Completions wire format, as Ollama,
// vLLM, llama.cpp's server and LiteLLM do. Each request gets the next of
// statuses (200 once they run out) and is recorded.
type chatServer struct {
	t        *testing.T
	statuses []int
	// messages are the assistant messages of the 200 answers, in order,
	// as JSON; once they run out, a text answer naming "block".
	messages []string

	mu       sync.Mutex
	requests []map[string]any
}

func (c *chatServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer sk-test" {
		c.t.Errorf("request %s %s, Authorization %q", r.Method, r.URL.Path, r.Header.Get("Authorization"))
		http.Error(w, "unexpected request", http.StatusNotFound)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var req map[string]any
	if err := json.Unmarshal(body, &req); err != nil {
		c.t.Errorf("body %s: %v", body, err)
	}
	c.mu.Lock()
	c.requests = append(c.requests, req)
	status := http.StatusOK
	if n := len(c.requests); n <= len(c.statuses) {
		status = c.statuses[n-1]
	}
	message, finish := `{"role":"assistant","content":"{\"outcome\":\"block\",\"reason\":\"amount\"}"}`, "length"
	if status == http.StatusOK && len(c.messages) > 0 {
		message, finish = c.messages[0], "tool_calls"
		c.messages = c.messages[1:]
	}
	c.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	if status != http.StatusOK {
		w.Header().Set("Retry-After-Ms", "1")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":{"message":"status %d","type":"test","code":null}}`, status)
		return
	}
	fmt.Fprint(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"llama3.2",`+
		`"choices":[{"index":0,"message":`+message+`,"finish_reason":"`+finish+`"}],`+
		`"usage":{"prompt_tokens":42,"completion_tokens":7,"total_tokens":49}}`)
}

func (c *chatServer) sent() []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]map[string]any(nil), c.requests...)
}

func openAI(t *testing.T, c *chatServer) llm.Provider {
	t.Helper()
	return openAIStructured(t, c, "")
}

// openAIStructured is openAI with Options.Structured.
func openAIStructured(t *testing.T, c *chatServer, structured string) llm.Provider {
	t.Helper()
	ts := httptest.NewServer(c)
	t.Cleanup(ts.Close)
	p, err := llm.New("openai", llm.Options{BaseURL: ts.URL + "/v1", APIKey: "sk-test", Model: "llama3.2", Structured: structured})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOpenAICompatible pulls one item answered by an OpenAI-compatible
// server that first answers 429: the sampler retries, and the request the
// server sees carries the MCP request's fields.
func TestOpenAICompatible(t *testing.T) {
	for _, pc := range protocols {
		t.Run(pc.name, func(t *testing.T) {
			chat := &chatServer{t: t, statuses: []int{http.StatusTooManyRequests}}
			w := newWorkServer(items(1, "allow", "review", "block")...)
			s, stop := start(t, client.Config{
				Servers: []string{"mem"}, Transport: newMemServer(w.mcpServer(nil)).transport,
				Provider: openAI(t, chat), ProtocolVersion: pc.version,
				Concurrency: 1, BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond,
			})
			await(t, s, "item decided", func(st client.Stats) bool { return st.Decided == 1 })
			stop()

			d := collect(t, w, 1)[0]
			if d.model != "llama3.2" || d.stopReason != llm.StopMaxTokens || d.inputTokens != 42 || d.outputTokens != 7 {
				t.Errorf("decision %+v", d)
			}
			if st := s.Stats(); st.Answered != 1 || st.Errors != 0 {
				t.Errorf("stats %+v", st)
			}
			reqs := chat.sent()
			if len(reqs) != 2 {
				t.Fatalf("%d requests, want 2 (429, then a retry)", len(reqs))
			}
			got := reqs[1]
			want := map[string]any{
				"model": "llama3.2", "max_tokens": 128.0, "temperature": 0.2, "stop": []any{"\n\n"},
				"messages": []any{
					map[string]any{"role": "system", "content": "You decide. Answer with one JSON object."},
					map[string]any{"role": "user", "content": items(1, "x")[0].text},
				},
			}
			for k, v := range want {
				if !reflect.DeepEqual(got[k], v) {
					t.Errorf("%s = %#v, want %#v", k, got[k], v)
				}
			}
		})
	}
}

// TestProviderRejects: a 400 is not retried; the answer fails, the call
// fails, and the sampler keeps running.
func TestProviderRejects(t *testing.T) {
	for _, pc := range protocols {
		t.Run(pc.name, func(t *testing.T) {
			chat := &chatServer{t: t, statuses: []int{http.StatusBadRequest}}
			w := newWorkServer(items(1, "allow", "block")...)
			s, stop := start(t, client.Config{
				Servers: []string{"mem"}, Transport: newMemServer(w.mcpServer(nil)).transport,
				Provider: openAI(t, chat), ProtocolVersion: pc.version,
				Concurrency: 1, BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond,
			})
			st := await(t, s, "answer and call failed", func(st client.Stats) bool { return st.Errors >= 2 })
			stop()
			if st.Answered != 0 || st.Decided != 0 || st.Connects != 1 {
				t.Errorf("stats %+v", st)
			}
			if n := len(chat.sent()); n != 1 {
				t.Errorf("%d requests, want 1 (no retry after 400)", n)
			}
			// The failure reaches the server as an error result, in the
			// with-tools form this sampler answers in.
			if f := w.failed(); len(f) != 1 || !strings.Contains(f[0], "400") {
				t.Errorf("server saw failures %q, want one naming the 400", f)
			}
		})
	}
}

// TestOpenAIToolLoop pulls an item whose request offers a tool, answered by
// an OpenAI-compatible server (without structured output: with it, the
// provider offers no tools) whose model first calls it: the server sees
// the tool as a function, then the call and its result as an assistant
// tool_calls message and a role "tool" message, and the item is decided.
func TestOpenAIToolLoop(t *testing.T) {
	for _, pc := range protocols {
		t.Run(pc.name, func(t *testing.T) {
			chat := &chatServer{t: t, messages: []string{`{"role":"assistant","content":null,"tool_calls":[` +
				`{"id":"call_1","type":"function","function":{"name":"transaction_history","arguments":"{\"limit\":5}"}}]}`}}
			w := newWorkServer(borderlineItems(1)...)
			w.tools = true
			s, stop := start(t, client.Config{
				Servers: []string{"mem"}, Transport: newMemServer(w.mcpServer(nil)).transport,
				Provider: openAIStructured(t, chat, llm.StructuredNone), ProtocolVersion: pc.version, Concurrency: 1,
			})
			await(t, s, "item decided", func(st client.Stats) bool { return st.Decided == 1 })
			stop()
			d := collect(t, w, 1)[0]
			if !reflect.DeepEqual(d.toolCalls, []string{llm.HistoryTool}) || d.rounds != 2 || d.text != `{"outcome":"block","reason":"amount"}` {
				t.Errorf("decision %+v", d)
			}
			sent := chat.sent()
			if len(sent) != 2 {
				t.Fatalf("%d requests, want 2", len(sent))
			}
			wantTools := []any{map[string]any{"type": "function", "function": map[string]any{
				"name": llm.HistoryTool, "description": historyTool.Description, "parameters": map[string]any{"type": "object"}}}}
			for i, req := range sent {
				if !reflect.DeepEqual(req["tools"], wantTools) {
					t.Errorf("request %d: tools %v, want %v", i, req["tools"], wantTools)
				}
			}
			msgs, _ := sent[1]["messages"].([]any)
			wantTail := []any{
				map[string]any{"role": "assistant", "tool_calls": []any{map[string]any{"id": "call_1", "type": "function",
					"function": map[string]any{"name": llm.HistoryTool, "arguments": `{"limit":5}`}}}},
				map[string]any{"role": "tool", "tool_call_id": "call_1", "content": historyResult},
			}
			if len(msgs) != 4 || !reflect.DeepEqual(msgs[2:], wantTail) {
				t.Errorf("second request's messages %v\nwant system, user, then %v", msgs, wantTail)
			}
		})
	}
}
