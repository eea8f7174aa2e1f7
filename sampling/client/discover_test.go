package client_test

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/triage-dev/triage/internal/testrun"
	"github.com/triage-dev/triage/sampling/client"
)

// listenPair listens on the same port of 127.0.0.1 and 127.0.0.2: two
// consumers behind one name, as a headless Service's pods are.
func listenPair(t *testing.T) (a, b net.Listener, port string) {
	t.Helper()
	for range 20 {
		a, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(a.Addr().String())
		b, err := net.Listen("tcp", "127.0.0.2:"+port)
		if err == nil {
			return a, b, port
		}
		a.Close()
	}
	t.Fatal("no port free on both 127.0.0.1 and 127.0.0.2")
	return nil, nil, ""
}

// TestDiscover: a "dns+" server connects to every address its name
// resolves to and follows the name: both consumers' items are decided, and
// a consumer that leaves the name is let go (no reconnects once it stops).
func TestDiscover(t *testing.T) {
	const n = 4
	la, lb, port := listenPair(t)
	wa, wb := newWorkServer(items(n, "allow")...), newWorkServer(items(n, "block")...)
	sa := &http.Server{Handler: mcpHandler(wa.mcpServer(nil), true)}
	sb := &http.Server{Handler: mcpHandler(wb.mcpServer(nil), true)}
	go func() { _ = sa.Serve(la) }()
	go func() { _ = sb.Serve(lb) }()
	t.Cleanup(func() { _ = sa.Close(); _ = sb.Close() })

	var mu sync.Mutex
	addrs := []string{"127.0.0.1", "127.0.0.2"}
	lookups := 0
	lookup := func(_ context.Context, host string) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		if host != "consumers.test" {
			t.Errorf("resolved %q", host)
		}
		lookups++
		return append([]string(nil), addrs...), nil
	}
	s, stop := start(t, client.Config{
		Servers: []string{"dns+http://consumers.test:" + port + "/mcp"}, Provider: offline(t),
		Concurrency: 2, ResolveEvery: 20 * time.Millisecond, LookupHost: lookup,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
	})
	st := await(t, s, "both consumers' items decided", func(st client.Stats) bool { return st.Decided == 2*n })
	if st.Connects != 2 {
		t.Errorf("%d connects, want one per consumer", st.Connects)
	}
	if len(collect(t, wa, n)) != n || len(collect(t, wb, n)) != n {
		t.Fatal("an item is missing")
	}

	// 127.0.0.1 leaves the name; then it stops. A sampler still holding
	// it would fail to reconnect and count errors.
	mu.Lock()
	addrs = []string{"127.0.0.2"}
	seen := lookups
	mu.Unlock()
	testrun.Until(t, "the name resolved again", failsafe, 10*time.Millisecond, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return lookups >= seen+2 // resolved since, and acted on it
	})
	_ = sa.Close()
	before := s.Stats().Errors
	time.Sleep(300 * time.Millisecond) // several back-offs of a reconnect loop
	if after := s.Stats().Errors; after != before {
		t.Errorf("errors %d → %d after the consumer left the name: the sampler still tries it", before, after)
	}
	close(wa.stop)
	close(wb.stop)
	stop()
}

func TestDiscoverConfig(t *testing.T) {
	for server, want := range map[string]bool{
		"dns+http://consumers:7070/mcp":  true,
		"dns+https://consumers:7070/mcp": false, // a certificate names the service, not each address
		"dns+http://consumers/mcp":       false, // no port
		"dns+ftp://consumers:21/":        false,
	} {
		_, err := client.New(client.Config{Servers: []string{server}, Provider: offline(t)})
		if (err == nil) != want {
			t.Errorf("%s: %v, want ok %v", server, err, want)
		}
	}
}
