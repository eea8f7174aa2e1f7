package testrun

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// ConnCountingServer starts an HTTP test server of h, closed when the test
// ends, and returns it with the count of connections clients have opened
// to it: what tells a client that reuses its connections from one that
// dials anew.
func ConnCountingServer(t testing.TB, h http.Handler) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	conns := new(atomic.Int64)
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, conns
}
