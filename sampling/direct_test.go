package sampling_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/sampling"
)

// chatServer speaks the OpenAI Chat Completions wire format (what Ollama,
// vLLM and llama.cpp serve) and answers with the scripted replies in turn;
// "" blocks until the request is cancelled.
type chatServer struct {
	mu      sync.Mutex
	script  []reply
	bodies  []map[string]any
	times   []time.Time // when each request arrived
	srv     *httptest.Server
	reqSeen int
	// retryAfter, if set, is the Retry-After header of every error reply.
	retryAfter string
}

type reply struct {
	status  int
	content string
}

func newChatServer(t *testing.T, script ...reply) *chatServer {
	c := &chatServer{script: script}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" {
			http.NotFound(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		c.mu.Lock()
		c.bodies = append(c.bodies, m)
		c.times = append(c.times, time.Now())
		rep := c.script[min(c.reqSeen, len(c.script)-1)]
		c.reqSeen++
		retryAfter := c.retryAfter
		c.mu.Unlock()
		if rep.status == 0 {
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if retryAfter != "" && rep.status != http.StatusOK {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(rep.status)
		if rep.status != http.StatusOK {
			fmt.Fprintf(w, `{"error":{"message":"scripted %d","type":"test","code":null}}`, rep.status)
			return
		}
		content, _ := json.Marshal(rep.content)
		fmt.Fprintf(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1764190000,"model":"llama3.2",
			"choices":[{"index":0,"message":{"role":"assistant","content":%s},"finish_reason":"stop"}],
			"usage":{"prompt_tokens":40,"completion_tokens":9,"total_tokens":49}}`, content)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *chatServer) provider(t *testing.T) llm.Provider {
	p, err := llm.New("openai", llm.Options{BaseURL: c.srv.URL + "/v1", Model: "llama3.2"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDirect(t *testing.T) {
	typ := paymentType(t) // 300 ms sampling timeout
	valid := reply{http.StatusOK, `{"outcome":"block","reason":"mule pattern","score":0.9}`}
	cases := []struct {
		name     string
		script   []reply
		outcome  string
		fallback string // FallbackReason of the error, "" for a decision
		statuses []audit.Status
	}{
		{"answer", []reply{valid}, "block", "", []audit.Status{audit.StatusOK}},
		{"corrected", []reply{{http.StatusOK, "Looks fine to me."}, valid}, "block", "",
			[]audit.Status{audit.StatusInvalidAnswer, audit.StatusOK}},
		{"garbage twice", []reply{{http.StatusOK, `{"outcome":"approve"}`}}, "", "invalid_answer",
			[]audit.Status{audit.StatusInvalidAnswer, audit.StatusInvalidAnswer}},
		{"429 then answer", []reply{{http.StatusTooManyRequests, ""}, valid}, "block", "",
			[]audit.Status{audit.StatusError, audit.StatusOK}},
		{"400 is final", []reply{{http.StatusBadRequest, ""}}, "", "error", []audit.Status{audit.StatusError}},
		// A timeout is retried once (TimeoutRetries), as the pool gives an
		// item whose lease expired one more lease.
		{"hangs", []reply{{0, ""}}, "", "timeout", []audit.Status{audit.StatusTimeout, audit.StatusTimeout}},
		{"hangs once", []reply{{0, ""}, valid}, "block", "", []audit.Status{audit.StatusTimeout, audit.StatusOK}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := newChatServer(t, c.script...)
			d := sampling.NewDirect(srv.provider(t), sampling.DirectOptions{Backoff: 1, Logger: testLogger()})
			v, err := d.Decide(context.Background(), item(t, typ, 1))
			if c.fallback == "" {
				if err != nil || v.Outcome != c.outcome || v.Path != pipeline.PathSampled || v.Model != "llama3.2" {
					t.Fatalf("got %+v, %v", v, err)
				}
			} else if err == nil || pipeline.FallbackReason(err) != c.fallback {
				t.Fatalf("err = %v (reason %q), want reason %q", err, pipeline.FallbackReason(err), c.fallback)
			}
			if len(v.Attempts) != len(c.statuses) {
				t.Fatalf("%d attempts, want %d: %+v", len(v.Attempts), len(c.statuses), v.Attempts)
			}
			for i, a := range v.Attempts {
				if a.Status != c.statuses[i] || a.Mode != sampling.ModeDirect {
					t.Errorf("attempt %d: %s/%s, want %s/direct", i, a.Status, a.Mode, c.statuses[i])
				}
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			msgs, _ := srv.bodies[0]["messages"].([]any)
			if len(msgs) != 2 || srv.bodies[0]["max_tokens"] != 64.0 {
				t.Errorf("request body %v", srv.bodies[0])
			}
		})
	}
}

func TestDirectCancelled(t *testing.T) {
	srv := newChatServer(t, reply{0, ""})
	d := sampling.NewDirect(srv.provider(t), sampling.DirectOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Decide(ctx, item(t, paymentType(t), 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

// TestDirectHonoursRetryAfter: a 429 with Retry-After is retried no sooner
// than the provider asked, however short the back-off; a Retry-After beyond
// BackoffMax is not waited for, and the item falls back at once.
func TestDirectHonoursRetryAfter(t *testing.T) {
	typ := paymentType(t)
	valid := reply{http.StatusOK, `{"outcome":"allow"}`}
	for _, c := range []struct {
		name       string
		retryAfter string
		max        time.Duration
		requests   int
		statuses   []audit.Status
	}{
		{"waited for", "1", 0, 2, []audit.Status{audit.StatusError, audit.StatusOK}},
		{"beyond BackoffMax", "60", time.Second, 1, []audit.Status{audit.StatusError}},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := newChatServer(t, reply{http.StatusTooManyRequests, ""}, valid)
			srv.retryAfter = c.retryAfter
			d := sampling.NewDirect(srv.provider(t), sampling.DirectOptions{Backoff: time.Nanosecond, BackoffMax: c.max, Logger: testLogger()})
			v, err := d.Decide(context.Background(), item(t, typ, 1))
			if c.requests == 2 && (err != nil || v.Outcome != "allow") {
				t.Fatalf("got %+v, %v; want the retry to decide", v, err)
			}
			if c.requests == 1 && pipeline.FallbackReason(err) != "error" {
				t.Fatalf("err = %v, want the fallback at once", err)
			}
			if len(v.Attempts) != len(c.statuses) {
				t.Fatalf("attempts %+v, want statuses %v", v.Attempts, c.statuses)
			}
			for i, a := range v.Attempts {
				if a.Status != c.statuses[i] {
					t.Fatalf("attempt %d: %s, want %s", i, a.Status, c.statuses[i])
				}
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if len(srv.times) != c.requests {
				t.Fatalf("%d requests, want %d", len(srv.times), c.requests)
			}
			if c.requests == 2 {
				if gap := srv.times[1].Sub(srv.times[0]); gap < time.Second {
					t.Fatalf("retried %v after the 429, before its Retry-After of 1s", gap)
				}
			}
		})
	}
}
