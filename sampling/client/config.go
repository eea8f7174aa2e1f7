package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/trace"

	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/sampling/work"
)

// Defaults for the zero values of Config.
const (
	DefaultConcurrency    = 4
	DefaultAnswerAttempts = 3
	DefaultBackoffMin     = 200 * time.Millisecond
	DefaultBackoffMax     = 10 * time.Second
	DefaultConnectTimeout = 30 * time.Second
	DefaultName           = "triage-sampler"
	// DefaultAnswerBudget is added to the long-poll wait to bound a call
	// when Config.CallTimeout is zero: the time one item may take to be
	// answered, including provider retries.
	DefaultAnswerBudget = 2 * time.Minute
)

// Config configures a [Sampler]. The zero value of every field but Servers
// and Provider means its documented default.
type Config struct {
	// Servers are the consumers' MCP endpoints, for example
	// "https://triage.internal:8080/mcp". At least one is required; each gets
	// its own session, supervisor and pull loops. A server written
	// "dns+http://name:port/path" (DiscoverPrefix) stands for every address
	// name resolves to, each a server of its own, followed as it changes:
	// the way to reach every consumer of a group behind one DNS name.
	Servers []string

	// ResolveEvery is how often a "dns+" server's name is resolved again.
	// Default DefaultResolveEvery.
	ResolveEvery time.Duration

	// LookupHost resolves a "dns+" server's name. Default
	// net.DefaultResolver.LookupHost.
	LookupHost func(ctx context.Context, host string) ([]string, error)

	// Token, if set, is sent as "Authorization: Bearer <Token>" on every HTTP
	// request to every server. It is not used with a custom Transport.
	Token string

	// Provider answers the sampling requests. Required.
	Provider llm.Provider

	// Concurrency is the number of triage_next calls in flight per server,
	// that is how many items this sampler answers at once per server.
	// Default 4. Set it to what the provider can take: each call that gets
	// an item holds a provider request for as long as the model takes.
	Concurrency int

	// Items is how many items one call may take (work.Args Items, at most
	// work.MaxItems): the first when one is queued, more if they are
	// queued then, answered concurrently. Fewer MCP round trips a
	// decision, but up to Concurrency × Items provider requests at once.
	// Default 1.
	Items int

	// WaitMS is the long-poll wait asked of the server per call, in
	// milliseconds (1..30000). Zero omits it and the server's default
	// (20000) applies. Short waits cost more round trips while idle.
	WaitMS int

	// CallTimeout bounds one triage_next call, long-poll and answer
	// included; a call that times out is counted as an error and retried
	// after a back-off. Default: the wait plus DefaultAnswerBudget. Too short
	// a timeout abandons items mid-answer (their leases expire server-side).
	CallTimeout time.Duration

	// ConnectTimeout bounds one connection attempt (the MCP handshake); an
	// attempt that times out is retried after a back-off. Default 30s.
	// Against a server that also leaves notifications unanswered an attempt
	// can take up to 5s more: go-sdk delivers the cancellation notice of
	// the timed-out handshake before it closes the connection.
	ConnectTimeout time.Duration

	// AnswerAttempts is how many times one sampling request is tried against
	// the provider when it fails with a retryable error (llm.IsRetryable:
	// 429, 5xx, timeouts), with back-off between attempts. Default 3; 1
	// disables retries.
	AnswerAttempts int

	// ProtocolVersion is the MCP protocol version the client asks for. Empty
	// means go-sdk's latest (2026-07-28, stateless; the client falls back to
	// 2025-11-25 against a server that does not speak it), or
	// work.ProtocolLegacy when PushOnly is set. Use "2025-11-25" to pull
	// through the server-side middleware (server-initiated createMessage).
	ProtocolVersion string

	// PushOnly turns pulling off: the sampler stays connected and answers
	// only the sampling requests a server sends on its own, as a legacy MCP
	// host would. Push needs a stateful server session on 2025-11-25 or
	// older. For testing push; a deployment pulls.
	PushOnly bool

	// DisableTools turns tool use off. By default a sampler whose Provider
	// supports tools (llm.Provider's SupportsTools; the built-in providers
	// do) declares it, with "tools": true in its work calls and the
	// sampling.tools capability on legacy sessions, and servers may then
	// offer tools in their sampling requests; the model's tool calls go
	// back to the server, which runs them. Set it for a model that handles
	// tools badly: requests then come without tools, as from servers that
	// predate them.
	DisableTools bool

	// BackoffMin and BackoffMax bound the exponential back-off, with jitter,
	// used between connection attempts, after a failed call and between
	// answer attempts. Defaults 200ms and 10s. Between answer attempts a
	// provider's Retry-After replaces the back-off; one longer than
	// BackoffMax fails the answer at once.
	BackoffMin, BackoffMax time.Duration

	// Name is the client name announced to servers. Default "triage-sampler".
	Name string

	// Logger receives the sampler's logs. Nil means no logging.
	Logger *slog.Logger

	// HTTPClient is the client for Streamable HTTP; its Transport (nil:
	// http.DefaultTransport) is wrapped to add the bearer token. Default: a
	// client without a timeout, since calls long-poll (see CallTimeout),
	// keeping an idle connection a host for each call at once. A client of
	// your own should too (http.Transport MaxIdleConnsPerHost), or calls
	// past the second dial anew.
	HTTPClient *http.Client

	// Transport, if set, replaces the Streamable HTTP transport: it is
	// called for every connection attempt with the server string from
	// Servers, which it may interpret freely (for example to connect
	// mcp.NewInMemoryTransports or an mcp.CommandTransport).
	Transport func(server string) (mcp.Transport, error)

	// TracerProvider, when not nil, records a span per provider call
	// (llm.SpanComplete) as a child of the consumer's sampling attempt,
	// whose context arrives in the request's _meta (work.MetaTraceparent):
	// the call joins the consumer's trace of the event. Nil records
	// nothing.
	TracerProvider trace.TracerProvider
}

// withDefaults validates c and returns it with defaults filled in.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	if len(c.Servers) == 0 {
		errs = append(errs, errors.New("no servers"))
	}
	if c.Transport == nil {
		for _, s := range c.Servers {
			raw, discover := discovered(s)
			u, err := url.Parse(raw)
			switch {
			case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
				errs = append(errs, fmt.Errorf("server %q is not an http(s) URL", s))
			case discover && u.Scheme != "http":
				// A certificate names the service, not each address.
				errs = append(errs, fmt.Errorf("server %q: %s works with http only (inside a cluster, or behind a mesh that adds TLS)", s, DiscoverPrefix))
			case discover && u.Port() == "":
				errs = append(errs, fmt.Errorf("server %q: %s needs the port", s, DiscoverPrefix))
			}
		}
	}
	if c.Provider == nil {
		errs = append(errs, errors.New("no provider"))
	}
	if c.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("concurrency %d is negative", c.Concurrency))
	}
	if c.Items < 0 || c.Items > work.MaxItems {
		errs = append(errs, fmt.Errorf("items %d is outside 0..%d", c.Items, work.MaxItems))
	}
	if c.WaitMS < 0 || c.WaitMS > work.MaxWaitMS {
		errs = append(errs, fmt.Errorf("wait_ms %d is outside 0..%d", c.WaitMS, work.MaxWaitMS))
	}
	if c.CallTimeout < 0 || c.ConnectTimeout < 0 || c.AnswerAttempts < 0 || c.BackoffMin < 0 || c.BackoffMax < 0 {
		errs = append(errs, errors.New("negative timeout, attempts or back-off"))
	}
	if c.BackoffMin > 0 && c.BackoffMax > 0 && c.BackoffMin > c.BackoffMax {
		errs = append(errs, fmt.Errorf("back-off min %v exceeds max %v", c.BackoffMin, c.BackoffMax))
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("sampler: config: %w", err)
	}

	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.ResolveEvery <= 0 {
		c.ResolveEvery = DefaultResolveEvery
	}
	if c.LookupHost == nil {
		c.LookupHost = net.DefaultResolver.LookupHost
	}
	if c.CallTimeout == 0 {
		wait := time.Duration(cmp.Or(c.WaitMS, work.DefaultWaitMS)) * time.Millisecond
		c.CallTimeout = wait + DefaultAnswerBudget
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.AnswerAttempts == 0 {
		c.AnswerAttempts = DefaultAnswerAttempts
	}
	if c.ProtocolVersion == "" && c.PushOnly {
		c.ProtocolVersion = work.ProtocolLegacy
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = DefaultBackoffMin
		if c.BackoffMax > 0 {
			c.BackoffMin = min(c.BackoffMin, c.BackoffMax)
		}
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = max(DefaultBackoffMax, c.BackoffMin)
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.HTTPClient == nil {
		// net/http keeps 2 idle connections a host: every call past the
		// second would dial anew when it ends, thousands a second on a
		// busy sampler, each socket left in TIME_WAIT. A legacy session's
		// standing GET and its answers' POSTs take one more each.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 2*c.Concurrency + 2
		c.HTTPClient = &http.Client{Transport: tr}
	}
	return c, nil
}
