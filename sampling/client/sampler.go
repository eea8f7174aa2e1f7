package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/sync/errgroup"

	"github.com/triage-dev/triage/internal/retry"
	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/sampling/work"
)

// keepAlive is the ping interval on legacy (≤ 2025-11-25) sessions, so that
// a push-only sampler notices a server that vanished without closing its
// stream. go-sdk does not ping on 2026-07-28 sessions, which are stateless.
const keepAlive = 30 * time.Second

// A Sampler connects to consumers' MCP servers, pulls their work and answers
// their sampling requests with a provider. Create it with [New], run it with
// [Sampler.Run]; [Sampler.Stats] and [Sampler.Await] observe it.
type Sampler struct {
	cfg     Config
	log     *slog.Logger
	client  *mcp.Client
	http    *http.Client
	args    work.Args
	stats   *counters
	running atomic.Bool
}

// New validates cfg and returns a Sampler. It does not connect.
func New(cfg Config) (*Sampler, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	cfg.Provider = llm.Traced(cfg.Provider, cfg.TracerProvider)
	s := &Sampler{
		cfg: cfg,
		log: cfg.Logger,
		// The consumer records the name in its audit records, and keeps a
		// re-queued item from the sampler that failed it for a moment;
		// stateless (2026-07-28) sessions carry no client info or id of
		// their own, so the name gets a suffix of this process's own.
		// Rounds is the go-sdk client's own limit: the server may then
		// give a retry the next item's request at once.
		args: work.Args{WaitMS: cfg.WaitMS, Sampler: cfg.Name + "/" + rand.Text()[:8], Items: cfg.Items,
			Rounds: work.GoSDKRounds},
		stats: newCounters(),
	}
	s.http = cfg.HTTPClient
	if cfg.Token != "" {
		hc := *cfg.HTTPClient
		hc.Transport = bearer{token: cfg.Token, base: cfg.HTTPClient.Transport}
		s.http = &hc
		if cfg.Transport == nil {
			for _, server := range cfg.Servers {
				if u, _ := url.Parse(server); u.Scheme == "http" && !isLoopback(u.Hostname()) {
					s.log.Warn("sampler: bearer token sent over plain HTTP", "server", server)
				}
			}
		}
	}
	opts := &mcp.ClientOptions{
		Logger: cfg.Logger,
		// No roots: the default capability would announce them.
		Capabilities: &mcp.ClientCapabilities{},
		KeepAlive:    keepAlive,
	}
	// Sampling is deprecated as of 2026-07-28 (SEP-2577) but is the
	// protocol triage pulls work with; setting a handler also declares the
	// sampling capability on legacy sessions, with tools for the
	// with-tools handler. go-sdk takes one of the two (it panics on both);
	// the with-tools one also gets the requests without tools.
	if !cfg.DisableTools && supportsTools(cfg.Provider) {
		s.args.Tools = true // stateless calls carry no capabilities: say it here
		opts.CreateMessageWithToolsHandler = answerWith(s, work.AnswerTimeoutWithTools,
			HandlerWithTools(cfg.Provider, cfg.Logger), errorResultWithTools)
	} else {
		opts.CreateMessageHandler = answerWith(s, work.AnswerTimeout, Handler(cfg.Provider, cfg.Logger), work.ErrorResult)
	}
	s.client = mcp.NewClient(&mcp.Implementation{Name: cfg.Name, Version: version()}, opts)
	return s, nil
}

// Run connects to every server and pulls and answers work until ctx ends,
// reconnecting with back-off whenever a session is lost or cannot be
// established; it never gives up on a server. It returns nil when ctx
// ends, and an error only if the Sampler is already running.
//
// Ending closes every session. Closing a stateful (2025-11-25) HTTP session
// sends a DELETE, which the server may hold while its long poll of the
// cancelled call is still running; go-sdk bounds that wait at 5s.
func (s *Sampler) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("sampler: already running")
	}
	defer s.running.Store(false)
	g, ctx := errgroup.WithContext(ctx)
	for _, server := range s.cfg.Servers {
		if name, ok := discovered(server); ok {
			g.Go(func() error { return s.discover(ctx, name) })
			continue
		}
		g.Go(func() error { return s.supervise(ctx, server) })
	}
	return g.Wait()
}

// supervise keeps one server's session up until ctx ends.
func (s *Sampler) supervise(ctx context.Context, server string) error {
	bo := s.backoff()
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			s.stats.add(func(st *Stats) { st.Reconnects++ })
		}
		healthy, err := s.serve(ctx, server)
		if ctx.Err() != nil {
			return nil
		}
		if healthy {
			bo.Reset()
		}
		if err != nil {
			s.stats.add(func(st *Stats) { st.Errors++ })
			s.log.Warn("sampler: session failed", "server", server, "attempt", attempt, "err", err)
		}
		if !pause(ctx, bo.NextBackOff()) {
			return nil
		}
	}
}

// errSessionEnded reports a session that the server or the transport
// closed.
var errSessionEnded = errors.New("session ended")

// serve runs one session: connect, then pull (or, push-only, just stay
// connected) until the session is lost or ctx ends. healthy reports whether
// the session did useful work, which resets the reconnect back-off.
func (s *Sampler) serve(ctx context.Context, server string) (healthy bool, err error) {
	t, err := s.transport(server)
	if err != nil {
		return false, fmt.Errorf("sampler: transport for %s: %w", server, err)
	}
	// The session outlives cctx: go-sdk detaches connections from the
	// context they were made with.
	cctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout)
	cs, err := s.client.Connect(cctx, t, &mcp.ClientSessionOptions{ProtocolVersion: s.cfg.ProtocolVersion})
	cancel()
	if err != nil {
		return false, fmt.Errorf("sampler: connect to %s: %w", server, err)
	}
	ended := make(chan struct{})
	go func() { // joined below, after cs.Close
		defer close(ended)
		_ = cs.Wait()
	}()
	defer func() {
		_ = cs.Close()
		<-ended
	}()
	s.stats.add(func(st *Stats) { st.Connects++ })
	version := cs.InitializeResult().ProtocolVersion
	s.log.Info("sampler: connected", "server", server, "protocol", version,
		"session", cs.ID(), "push_only", s.cfg.PushOnly, "concurrency", s.cfg.Concurrency, "tools", s.args.Tools)
	if s.cfg.PushOnly && version > work.ProtocolLegacy {
		s.log.Warn("sampler: push-only on a session that forbids server-initiated requests; nothing will arrive",
			"server", server, "protocol", version)
	}

	if s.cfg.PushOnly {
		select {
		case <-ended:
			return true, fmt.Errorf("sampler: %s: %w", server, errSessionEnded)
		case <-ctx.Done():
			return true, nil
		}
	}

	var ok atomic.Bool
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		select {
		case <-ended:
			return fmt.Errorf("sampler: %s: %w", server, errSessionEnded)
		case <-gctx.Done():
			return nil
		}
	})
	for range s.cfg.Concurrency {
		g.Go(func() error { return s.pull(gctx, server, cs, &ok) })
	}
	err = g.Wait()
	return ok.Load(), err
}

func (s *Sampler) transport(server string) (mcp.Transport, error) {
	if s.cfg.Transport != nil {
		return s.cfg.Transport(server)
	}
	return &mcp.StreamableClientTransport{Endpoint: server, HTTPClient: s.http}, nil
}

// answerWith wraps a sampling handler for the client: a bounded retry of
// retryable provider errors, counted in Stats, under the item's timeout
// when the request names one (timeout). A provider's Retry-After is
// honoured up to BackoffMax; a longer one fails the answer at once (the
// server re-queues the item when its lease expires). A failure is said as
// failed(err), a result rather than an error, so that the server hears it
// on every protocol generation (see work.ErrorResult).
func answerWith[P mcp.Params, R any](s *Sampler, timeout func(P) (time.Duration, bool),
	handle func(context.Context, *mcp.ClientRequest[P]) (R, error), failed func(error) R,
) func(context.Context, *mcp.ClientRequest[P]) (R, error) {
	return func(ctx context.Context, req *mcp.ClientRequest[P]) (R, error) {
		if req != nil {
			if d, ok := timeout(req.Params); ok {
				// The item's lease ends then: an answer after it is
				// wasted, and a hung model must not keep this slot.
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, d)
				defer cancel()
			}
		}
		res, err := retry.Provider(ctx, s.cfg.AnswerAttempts, s.backoff(), s.cfg.BackoffMax,
			func() (R, error) { return handle(ctx, req) })
		if err != nil {
			s.stats.add(func(st *Stats) { st.Errors++ })
			return failed(err), nil
		}
		s.stats.add(func(st *Stats) { st.Answered++ })
		return res, nil
	}
}

// errorResultWithTools is work.ErrorResult as the answer to a request with
// tools.
func errorResultWithTools(err error) *mcp.CreateMessageWithToolsResult {
	r := work.ErrorResult(err)
	return &mcp.CreateMessageWithToolsResult{Role: r.Role, Content: []mcp.Content{r.Content}, StopReason: r.StopReason, Meta: r.Meta}
}

// bearer adds "Authorization: Bearer <token>" to every request.
type bearer struct {
	token string
	base  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	base := b.base
	if base == nil {
		base = http.DefaultTransport
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return base.RoundTrip(r)
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}
