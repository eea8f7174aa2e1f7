package client_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/internal/testrun"
	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/sampling/client"
	"github.com/triage-dev/triage/sampling/work"
)

// protocols are the two generations a sampler pulls with: "" is go-sdk's
// default, 2026-07-28 (client-side multi round-trip); 2025-11-25 goes
// through the server-side middleware and server-initiated createMessage.
var protocols = []struct {
	name, version string
	legacy        bool
}{
	{"2026-07-28", "", false},
	{"2025-11-25", work.ProtocolLegacy, true},
}

// failsafe bounds how long a test waits for a condition that should hold
// in milliseconds; it is a deadline for a broken test, not a pause.
const failsafe = 20 * time.Second

func offline(t *testing.T) llm.Provider {
	t.Helper()
	p, err := llm.New("offline", llm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// memServer connects every attempt of a sampler (its Config.Transport) to
// a new session of the current MCP server over mcp.NewInMemoryTransports.
type memServer struct {
	mu  sync.Mutex
	srv *mcp.Server
	// conns are the server ends of the connections, in order; closing one
	// is the server going away.
	conns chan mcp.Connection
}

func newMemServer(srv *mcp.Server) *memServer {
	return &memServer{srv: srv, conns: make(chan mcp.Connection, 64)}
}

// set makes later connection attempts reach srv.
func (m *memServer) set(srv *mcp.Server) {
	m.mu.Lock()
	m.srv = srv
	m.mu.Unlock()
}

func (m *memServer) transport(string) (mcp.Transport, error) {
	m.mu.Lock()
	srv := m.srv
	m.mu.Unlock()
	st, ct := mcp.NewInMemoryTransports()
	if _, err := srv.Connect(context.Background(), serverEnd{st, m.conns}, nil); err != nil {
		return nil, err
	}
	return ct, nil
}

// serverEnd records the server's end of each connection.
type serverEnd struct {
	mcp.Transport
	conns chan<- mcp.Connection
}

func (e serverEnd) Connect(ctx context.Context) (mcp.Connection, error) {
	c, err := e.Transport.Connect(ctx)
	if err == nil {
		select {
		case e.conns <- c:
		default:
		}
	}
	return c, err
}

// start runs a sampler with cfg until the returned stop is called (or the
// test ends); stop checks that Run returned nil.
func start(t *testing.T, cfg client.Config) (*client.Sampler, func()) {
	t.Helper()
	s, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	run := testrun.Background(t, "sampler", time.Minute, s.Run)
	stop := func() {
		if err := run(); err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return s, stop
}

// await waits until cond holds for s's counters.
func await(t *testing.T, s *client.Sampler, what string, cond func(client.Stats) bool) client.Stats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failsafe)
	defer cancel()
	st, err := s.Await(ctx, cond)
	if err != nil {
		t.Fatalf("waiting for %s: %v; stats %+v", what, err, st)
	}
	return st
}

func collect(t *testing.T, w *workServer, n int) []decision {
	t.Helper()
	var ds []decision
	for range n {
		select {
		case d := <-w.decisions:
			ds = append(ds, d)
		default:
			t.Fatalf("%d decisions, want %d", len(ds), n)
		}
	}
	return ds
}

func TestPullInMemory(t *testing.T) {
	const n = 7
	for _, pc := range protocols {
		t.Run(pc.name, func(t *testing.T) {
			w := newWorkServer(items(n, "allow", "review", "block")...)
			s, stop := start(t, client.Config{
				Servers:         []string{"mem"},
				Transport:       newMemServer(w.mcpServer(nil)).transport,
				Provider:        offline(t),
				Concurrency:     3,
				ProtocolVersion: pc.version,
			})
			await(t, s, "all items decided", func(st client.Stats) bool { return st.Decided == n })
			stop()

			seen := map[string]bool{}
			for _, d := range collect(t, w, n) {
				seen[d.eventID] = true
				if d.legacy != pc.legacy {
					t.Errorf("%s: legacy path %v, want %v", d.eventID, d.legacy, pc.legacy)
				}
				if !strings.Contains(d.model, "not an LLM") || d.stopReason == "" || d.rounds != 1 {
					t.Errorf("%s: %+v", d.eventID, d)
				}
				if !d.usage || d.inputTokens <= 0 || d.outputTokens <= 0 {
					t.Errorf("%s: no usage in _meta: %+v", d.eventID, d)
				}
				if !slices.ContainsFunc([]string{"allow", "review", "block"}, func(o string) bool { return strings.Contains(d.text, `"`+o+`"`) }) {
					t.Errorf("%s: answer %q names no outcome", d.eventID, d.text)
				}
			}
			if len(seen) != n {
				t.Errorf("decided %d distinct items, want %d", len(seen), n)
			}
			st := s.Stats()
			if st.Answered != n || st.Errors != 0 || st.Connects != 1 || st.Reconnects != 0 || st.Calls < n {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestCorrectiveRound: the server answers the first answer with a second
// input request, as triage does for an invalid answer; the sampler answers
// it within the same call.
func TestCorrectiveRound(t *testing.T) {
	for _, pc := range protocols {
		t.Run(pc.name, func(t *testing.T) {
			w := newWorkServer(items(2, "allow", "block")...)
			w.corrective = true
			s, stop := start(t, client.Config{
				Servers: []string{"mem"}, Transport: newMemServer(w.mcpServer(nil)).transport,
				Provider: offline(t), ProtocolVersion: pc.version,
			})
			await(t, s, "both items decided", func(st client.Stats) bool { return st.Decided == 2 })
			stop()
			for _, d := range collect(t, w, 2) {
				if d.rounds != 2 {
					t.Errorf("%s: %d rounds, want 2", d.eventID, d.rounds)
				}
			}
			if st := s.Stats(); st.Answered != 4 || st.Errors != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestReconnectInMemory: the server goes away (its end of the connection
// closes, as in a crash) and a new one takes its place; the sampler
// connects again and keeps pulling.
func TestReconnectInMemory(t *testing.T) {
	for _, pc := range protocols {
		t.Run(pc.name, func(t *testing.T) {
			first := newWorkServer(items(1, "allow", "block")...)
			second := newWorkServer(item{id: "after", text: "amount: 5", outcomes: []string{"allow", "block"}})
			ms := newMemServer(first.mcpServer(nil))
			s, stop := start(t, client.Config{
				Servers: []string{"mem"}, Transport: ms.transport, Provider: offline(t), ProtocolVersion: pc.version,
				Concurrency: 2, BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond,
			})
			await(t, s, "first item decided", func(st client.Stats) bool { return st.Decided == 1 })
			ms.set(second.mcpServer(nil))
			if err := (<-ms.conns).Close(); err != nil {
				t.Fatal(err)
			}
			close(first.stop) // the old server's long polls end into the void
			st := await(t, s, "item decided after reconnecting", func(st client.Stats) bool { return st.Decided == 2 })
			stop()
			if st.Connects != 2 || st.Reconnects != 1 {
				t.Errorf("stats %+v, want two sessions", st)
			}
			if d := collect(t, second, 1)[0]; d.eventID != "after" || d.legacy != pc.legacy {
				t.Errorf("decision %+v", d)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	p := offline(t)
	cases := []struct {
		name string
		cfg  client.Config
		err  string
	}{
		{"no servers", client.Config{Provider: p}, "no servers"},
		{"no provider", client.Config{Servers: []string{"http://h/mcp"}}, "no provider"},
		{"not a URL", client.Config{Servers: []string{"h:8080/mcp"}, Provider: p}, "not an http(s) URL"},
		{"negative concurrency", client.Config{Servers: []string{"http://h/mcp"}, Provider: p, Concurrency: -1}, "concurrency -1"},
		{"wait too long", client.Config{Servers: []string{"http://h/mcp"}, Provider: p, WaitMS: 60000}, "wait_ms 60000"},
		{"back-off inverted", client.Config{Servers: []string{"http://h/mcp"}, Provider: p, BackoffMin: time.Second, BackoffMax: time.Millisecond}, "exceeds max"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := client.New(c.cfg); err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("err = %v, want it to mention %q", err, c.err)
			}
		})
	}
	if _, err := client.New(client.Config{Servers: []string{"https://h:8443/mcp"}, Provider: p}); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}
