package llm_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/triage-dev/triage/internal/testrun"
	"github.com/triage-dev/triage/llm"
)

// sent is one request as the provider's server received it.
type sent struct {
	method, path string
	header       http.Header
	body         map[string]any
}

// reply is what the fake provider answers.
type reply struct {
	status int
	header map[string]string
	body   string
}

// fakeAPI is a provider endpoint on loopback: it records every request
// (the SDK's real wire output) and answers each with r.
type fakeAPI struct {
	*httptest.Server
	reqs  chan sent
	count atomic.Int32
}

func newFakeAPI(t *testing.T, r reply) *fakeAPI {
	t.Helper()
	f := &fakeAPI{reqs: make(chan sent, 8)}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		f.count.Add(1)
		raw, err := io.ReadAll(req.Body)
		s := sent{method: req.Method, path: req.URL.Path, header: req.Header.Clone()}
		if err == nil {
			err = json.Unmarshal(raw, &s.body)
		}
		if err != nil {
			t.Errorf("request body: %v (%q)", err, raw)
		}
		select {
		case f.reqs <- s:
		default:
			t.Errorf("more requests than expected")
		}
		for k, v := range r.header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(r.status)
		_, _ = io.WriteString(w, r.body)
	}))
	t.Cleanup(f.Close)
	return f
}

// only returns the one request the server received.
func (f *fakeAPI) only(t *testing.T) sent {
	t.Helper()
	if n := f.count.Load(); n != 1 {
		t.Fatalf("server got %d requests, want 1 (adapters must not retry)", n)
	}
	return <-f.reqs
}

// complete builds the provider, checks its name and sends req.
func complete(t *testing.T, provider string, o llm.Options, req llm.Request) llm.Response {
	t.Helper()
	p, err := llm.New(provider, o)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != provider {
		t.Errorf("Name() = %q, want %q", p.Name(), provider)
	}
	resp, err := p.Complete(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// check returns the one request the server received after checking its
// method, path and body.
func (f *fakeAPI) check(t *testing.T, path string, body map[string]any) sent {
	t.Helper()
	r := f.only(t)
	if r.method != http.MethodPost || r.path != path {
		t.Errorf("request = %s %s, want POST %s", r.method, r.path, path)
	}
	if !reflect.DeepEqual(r.body, body) {
		t.Errorf("request body = %#v\nwant           %#v", r.body, body)
	}
	return r
}

// statusCase is an error response and the *llm.Error it must become.
type statusCase struct {
	status     int
	header     map[string]string
	kind       string // the provider's error type or code
	retryable  bool
	retryAfter time.Duration
}

// testStatusErrors answers one request per case with the case's status and
// body(kind), and checks the error. options gives the provider's options for
// the fake server's address.
func testStatusErrors(t *testing.T, provider string, cases []statusCase,
	options func(addr string) llm.Options, body func(kind string) string) {
	t.Helper()
	for _, tt := range cases {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			srv := newFakeAPI(t, reply{status: tt.status, header: tt.header, body: body(tt.kind)})
			p, err := llm.New(provider, options(srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Complete(t.Context(), llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Text: "hi"}}})
			e := assertStatusError(t, err, provider, tt.status, tt.retryable)
			if e.RetryAfter != tt.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", e.RetryAfter, tt.retryAfter)
			}
			srv.only(t)
		})
	}
}

// blockingAPI is a provider endpoint whose handler holds every request until
// the client goes away; arrived is closed when the first request is in.
func blockingAPI(t *testing.T) (srv *httptest.Server, arrived <-chan struct{}) {
	t.Helper()
	in := make(chan struct{})
	var once atomic.Bool
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server watches for the client going away (and cancels
		// r.Context()) only once the body has been read.
		_, _ = io.Copy(io.Discard, r.Body)
		if once.CompareAndSwap(false, true) {
			close(in)
		}
		<-r.Context().Done()
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections() // unblocks a handler whose client hung on
		srv.Close()
	})
	return srv, in
}

// assertCancel checks that Complete returns promptly with a non-retryable
// context.Canceled when ctx is cancelled while the server holds the request.
func assertCancel(t *testing.T, p llm.Provider, arrived <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-arrived
		cancel()
	}()
	_, err := p.Complete(ctx, llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Text: "hi"}}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if llm.IsRetryable(err) {
		t.Errorf("cancelled call reported retryable: %v", err)
	}
}

// assertStatusError checks the *Error for a failed call.
func assertStatusError(t *testing.T, err error, provider string, status int, retryable bool) *llm.Error {
	t.Helper()
	var e *llm.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *llm.Error", err, err)
	}
	if e.Provider != provider || e.Status != status || e.Retryable != retryable || llm.IsRetryable(err) != retryable {
		t.Errorf("error = {Provider:%q Status:%d Retryable:%v}, want {%q %d %v}: %v",
			e.Provider, e.Status, e.Retryable, provider, status, retryable, err)
	}
	return e
}

// assertRefused checks that a server that is gone is a retryable error
// without a status. o.BaseURL is the path under the server's address.
func assertRefused(t *testing.T, provider string, o llm.Options) {
	t.Helper()
	gone := httptest.NewServer(http.NotFoundHandler())
	o.BaseURL = gone.URL + o.BaseURL
	gone.Close()
	p, err := llm.New(provider, o)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Complete(t.Context(), llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Text: "hi"}}})
	assertStatusError(t, err, provider, 0, true)
}

// jsonPath reads a nested value: path elements are map keys or slice indexes.
func jsonPath(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			s, _ := v.([]any)
			if k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}

func ptr[T any](v T) *T { return &v }

// TestProvidersKeepConnections: requests at once to one provider reuse
// their connections. With net/http's default of 2 idle connections a
// host, every request past the second would dial (and, against a real
// API, shake hands over TLS) anew.
func TestProvidersKeepConnections(t *testing.T) {
	const concurrency, each = 16, 40
	for _, tc := range []struct {
		provider, path string
		reply          reply
	}{
		{"openai", "/v1", openaiReply("gpt-5-mini", "stop", `"{\"outcome\":\"allow\"}"`)},
		{"anthropic", "", anthropicReply("claude-haiku-4-5", "end_turn", `[{"type": "text", "text": "{\"outcome\":\"allow\"}"}]`)},
	} {
		t.Run(tc.provider, func(t *testing.T) {
			srv, conns := testrun.ConnCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				time.Sleep(5 * time.Millisecond) // the requests overlap
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, tc.reply.body)
			}))
			p, err := llm.New(tc.provider, llm.Options{APIKey: "k", BaseURL: srv.URL + tc.path})
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for range concurrency {
				wg.Go(func() {
					for range each {
						if _, err := p.Complete(t.Context(), llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Text: "hi"}}}); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			if got := conns.Load(); got > concurrency+concurrency/2 {
				t.Errorf("%d connections for %d requests, %d at once", got, concurrency*each, concurrency)
			}
		})
	}
}
