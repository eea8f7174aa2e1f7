package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/internal/testrun"
	"github.com/triage-dev/triage/sampling/client"
	"github.com/triage-dev/triage/sampling/work"
)

// transports are the two ways a consumer serves /mcp: stateless for
// 2026-07-28 (pull only), stateful for 2025-11-25 and older (pull and push).
var transports = []struct {
	name      string
	stateless bool
	version   string
	legacy    bool
}{
	{"stateless 2026-07-28", true, "", false},
	{"stateful 2025-11-25", false, work.ProtocolLegacy, true},
}

// authorized serves h to requests bearing token, and 401 to the rest; it
// counts both.
type authorized struct {
	token    string
	h        http.Handler
	ok, deny atomic.Int64
	lastDeny atomic.Value // string: the Authorization header last denied
}

func (a *authorized) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if got := r.Header.Get("Authorization"); got != "Bearer "+a.token {
		a.deny.Add(1)
		a.lastDeny.Store(got)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	a.ok.Add(1)
	a.h.ServeHTTP(w, r)
}

func mcpHandler(srv *mcp.Server, stateless bool) http.Handler {
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv },
		&mcp.StreamableHTTPOptions{Stateless: stateless})
}

func TestHTTPBearer(t *testing.T) {
	const n = 5
	for _, tc := range transports {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorkServer(items(n, "allow", "review", "block")...)
			auth := &authorized{token: "s3cret", h: mcpHandler(w.mcpServer(nil), tc.stateless)}
			ts := httptest.NewServer(auth)
			defer ts.Close()

			s, stop := start(t, client.Config{
				Servers: []string{ts.URL + "/mcp"}, Token: "s3cret", Provider: offline(t),
				Concurrency: 2, ProtocolVersion: tc.version,
			})
			await(t, s, "all items decided", func(st client.Stats) bool { return st.Decided == n })
			// End the long polls first. On a stateful session the client's
			// closing DELETE makes go-sdk's ServerSession.Close wait for
			// in-flight handlers, and the cancellation notice of the sampler's
			// long poll, sent asynchronously, may arrive after it: the DELETE
			// would then wait out its 5s timeout.
			close(w.stop)
			stop()
			for _, d := range collect(t, w, n) {
				if d.legacy != tc.legacy || !d.usage {
					t.Errorf("%s: %+v", d.eventID, d)
				}
			}
			if auth.deny.Load() != 0 || auth.ok.Load() == 0 {
				t.Errorf("authorized %d, denied %d requests", auth.ok.Load(), auth.deny.Load())
			}
			if st := s.Stats(); st.Errors != 0 || st.Connects != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestHTTPWrongToken: every attempt gets 401; the sampler keeps retrying
// with back-off until cancelled, and Run then returns nil.
func TestHTTPWrongToken(t *testing.T) {
	w := newWorkServer()
	auth := &authorized{token: "s3cret", h: mcpHandler(w.mcpServer(nil), true)}
	ts := httptest.NewServer(auth)
	defer ts.Close()

	s, stop := start(t, client.Config{
		Servers: []string{ts.URL + "/mcp"}, Token: "wrong", Provider: offline(t),
		BackoffMin: time.Millisecond, BackoffMax: 4 * time.Millisecond,
	})
	st := await(t, s, "three failed reconnects", func(st client.Stats) bool { return st.Reconnects >= 3 && st.Errors >= 4 })
	stop()
	if st.Connects != 0 || st.Calls != 0 || auth.ok.Load() != 0 {
		t.Errorf("stats %+v, %d requests authorized", st, auth.ok.Load())
	}
	if got, _ := auth.lastDeny.Load().(string); got != "Bearer wrong" {
		t.Errorf("Authorization %q, want the configured token", got)
	}
}

// restartable is an HTTP server on a fixed address that can go away and
// come back, with a fresh MCP server (and so no sessions) each time.
type restartable struct {
	t    *testing.T
	addr string
	srv  *http.Server
	done chan struct{}
}

func (r *restartable) start(h http.Handler) {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.srv = &http.Server{Handler: h}
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		_ = r.srv.Serve(ln)
	}()
}

// stop closes the listener and every connection at once, and waits for
// Serve to return.
func (r *restartable) stop() {
	if err := r.srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		r.t.Error(err)
	}
	<-r.done
}

// TestHTTPReconnect: the server goes away and comes back on the same
// address without its sessions. The sampler keeps pulling: a stateful
// session is re-established, a stateless one carries on.
func TestHTTPReconnect(t *testing.T) {
	for _, tc := range transports {
		t.Run(tc.name, func(t *testing.T) {
			first := newWorkServer(items(1, "allow", "block")...)
			rs := &restartable{t: t, addr: "127.0.0.1:0"}
			rs.start(mcpHandler(first.mcpServer(nil), tc.stateless))

			s, stop := start(t, client.Config{
				Servers: []string{"http://" + rs.addr + "/mcp"}, Provider: offline(t), ProtocolVersion: tc.version,
				Concurrency: 2, BackoffMin: time.Millisecond, BackoffMax: 20 * time.Millisecond,
			})
			await(t, s, "first item decided", func(st client.Stats) bool { return st.Decided == 1 })

			rs.stop()
			close(first.stop)
			await(t, s, "calls failing", func(st client.Stats) bool { return st.Errors >= 2 })

			second := newWorkServer(item{id: "after", text: "amount: 5", outcomes: []string{"allow", "block"}})
			rs.start(mcpHandler(second.mcpServer(nil), tc.stateless))
			defer rs.stop()
			st := await(t, s, "item decided after the restart", func(st client.Stats) bool { return st.Decided == 2 })
			close(second.stop)
			stop()
			if !tc.stateless && (st.Connects < 2 || st.Reconnects < 1) {
				t.Errorf("stateful session not re-established: %+v", st)
			}
			if d := collect(t, second, 1)[0]; d.eventID != "after" || d.legacy != tc.legacy {
				t.Errorf("decision %+v", d)
			}
		})
	}
}

// TestPushOnly: a push-only sampler on a legacy session of a stateful
// server answers the createMessage requests the server sends on its own,
// and never pulls.
func TestPushOnly(t *testing.T) {
	sessions := make(chan *mcp.ServerSession, 1)
	w := newWorkServer()
	srv := w.mcpServer(&mcp.ServerOptions{
		InitializedHandler: func(_ context.Context, req *mcp.InitializedRequest) { sessions <- req.Session },
	})
	auth := &authorized{token: "s3cret", h: mcpHandler(srv, false)}
	ts := httptest.NewServer(auth)
	defer ts.Close()

	s, stop := start(t, client.Config{
		Servers: []string{ts.URL + "/mcp"}, Token: "s3cret", Provider: offline(t), PushOnly: true,
	})
	var ss *mcp.ServerSession
	select {
	case ss = <-sessions:
	case <-time.After(failsafe):
		t.Fatal("no session")
	}
	if v := ss.InitializeParams().ProtocolVersion; v != work.ProtocolLegacy {
		t.Errorf("protocol %q, want %q", v, work.ProtocolLegacy)
	}
	ctx, cancel := context.WithTimeout(context.Background(), failsafe)
	defer cancel()
	for i, text := range []string{"Contact me at jane@example.com", "Meeting notes, nothing personal"} {
		res, err := ss.CreateMessage(ctx, params(item{id: "push", outcomes: []string{"contains_pii", "no_pii"}}, text))
		if err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
		if !strings.Contains(res.Model, "not an LLM") || !strings.Contains(textContent(res.Content), `"outcome"`) {
			t.Errorf("push %d: %+v", i, res)
		}
		if _, _, ok := work.UsageFromMeta(res.Meta); !ok {
			t.Errorf("push %d: no usage in %v", i, res.Meta)
		}
	}
	stop()
	if st := s.Stats(); st.Answered != 2 || st.Calls != 0 || st.Errors != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestHTTPConnectTimeout: a server that accepts connections but never
// answers a request; every connection attempt times out and is retried.
func TestHTTPConnectTimeout(t *testing.T) {
	var hung atomic.Int64
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			ID json.RawMessage `json:"id"`
		}
		if err := json.NewDecoder(r.Body).Decode(&msg); err == nil && msg.ID == nil {
			// Notifications (the client's cancellation notice) are
			// accepted: go-sdk closes a failed session only after sending
			// it, for up to 5s.
			w.WriteHeader(http.StatusAccepted)
			return
		}
		hung.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer ts.Close()
	defer close(release)
	s, stop := start(t, client.Config{
		Servers: []string{ts.URL + "/mcp"}, Provider: offline(t), ConnectTimeout: 20 * time.Millisecond,
		BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond,
	})
	st := await(t, s, "two timed-out attempts", func(st client.Stats) bool { return st.Errors >= 2 && st.Reconnects >= 1 })
	stop()
	if st.Connects != 0 || hung.Load() < 2 {
		t.Errorf("stats %+v, %d requests", st, hung.Load())
	}
}

// TestHTTPKeepsConnections: a sampler's calls at once reuse their
// connections. net/http keeps 2 idle connections a host unless told
// otherwise, so calls past the second would dial anew as they end,
// thousands a second on a busy sampler, each leaving a socket in
// TIME_WAIT. The sampler's own client is held against one with
// net/http's defaults, over the same items: some connections are still
// dialled anew (the SDK may end a request before its response is read
// through), but not most.
func TestHTTPKeepsConnections(t *testing.T) {
	own := dialled(t, nil)
	defaults := dialled(t, &http.Client{})
	t.Logf("connections: %d with the sampler's client, %d with net/http's defaults", own, defaults)
	if own*2 > defaults {
		t.Errorf("%d connections with the sampler's own client, %d with net/http's defaults: want at most half", own, defaults)
	}
}

// dialled runs a sampler of 8 calls at once with hc over 400 items and
// returns how many connections it opened.
func dialled(t *testing.T, hc *http.Client) int64 {
	const n, concurrency = 400, 8
	w := newWorkServer()
	go func() {
		for _, it := range items(n, "allow", "review", "block") {
			w.items <- it
		}
	}()
	go func() {
		for range n {
			<-w.decisions
		}
	}()
	ts, conns := testrun.ConnCountingServer(t, mcpHandler(w.mcpServer(nil), true))
	s, stop := start(t, client.Config{Servers: []string{ts.URL + "/mcp"}, Provider: offline(t), Concurrency: concurrency, HTTPClient: hc})
	await(t, s, "all items decided", func(st client.Stats) bool { return st.Decided == n })
	close(w.stop)
	stop()
	return conns.Load()
}
