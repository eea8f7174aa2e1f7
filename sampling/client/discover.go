package client

import (
	"context"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// DiscoverPrefix marks a server that stands for every consumer behind a DNS
// name: "dns+http://triage-mcp.triage.svc:7070/mcp" connects to each address
// the name resolves to (a Kubernetes headless Service's pods, say), on the
// URL's port and path, and follows the name as consumers come and go.
//
// A sampler must reach every consumer, not one behind a load balancer: a
// consumer leases an item to the call that took it, and the retry carrying
// the answer must come back to the consumer that holds the lease.
const DiscoverPrefix = "dns+"

// DefaultResolveEvery is how often a discovered name is resolved again.
const DefaultResolveEvery = 15 * time.Second

// discover keeps one session per address of server's host (server without
// DiscoverPrefix), resolving it every ResolveEvery, until ctx ends.
func (s *Sampler) discover(ctx context.Context, server string) error {
	u, _ := url.Parse(server) // validated in withDefaults
	running := map[string]context.CancelFunc{}
	var wg sync.WaitGroup
	defer func() {
		for _, stop := range running {
			stop()
		}
		wg.Wait()
	}()
	tick := time.NewTicker(s.cfg.ResolveEvery)
	defer tick.Stop()
	for {
		addrs, err := s.cfg.LookupHost(ctx, u.Hostname())
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			// Keep the sessions there are: a resolver that fails for a
			// moment must not disconnect every consumer.
			s.log.Warn("sampler: resolve", "name", u.Hostname(), "err", err)
		default:
			want := targets(u, addrs)
			for _, t := range want {
				if running[t] != nil {
					continue
				}
				tctx, stop := context.WithCancel(ctx)
				running[t] = stop
				s.log.Info("sampler: discovered a consumer", "name", u.Hostname(), "server", t)
				wg.Go(func() { _ = s.supervise(tctx, t) })
			}
			for t, stop := range running {
				if !slices.Contains(want, t) {
					s.log.Info("sampler: a consumer left the name", "name", u.Hostname(), "server", t)
					stop()
					delete(running, t)
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// targets are the server URLs of the addresses a name resolved to.
func targets(u *url.URL, addrs []string) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		t := *u
		t.Host = net.JoinHostPort(a, u.Port())
		out = append(out, t.String())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// discovered reports whether server is a name to discover consumers by,
// and the URL to resolve.
func discovered(server string) (string, bool) {
	return strings.CutPrefix(server, DiscoverPrefix)
}
