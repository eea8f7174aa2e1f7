package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Message roles.
const (
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Stop reasons in MCP's vocabulary (Response.StopReason). A provider reason
// without an MCP equivalent passes through unchanged (e.g. "refusal",
// "content_filter").
const (
	StopEndTurn   = "endTurn"
	StopMaxTokens = "maxTokens"
	StopSequence  = "stopSequence"
	// StopToolUse: the model asks for ToolCalls to be run before it answers.
	StopToolUse = "toolUse"
)

// Tool choices in MCP's vocabulary (Request.ToolChoice, MCP's
// toolChoice.mode).
const (
	// ToolChoiceAuto lets the model decide whether to call a tool (the
	// default, also for "").
	ToolChoiceAuto = "auto"
	// ToolChoiceRequired makes the model call at least one tool.
	ToolChoiceRequired = "required"
	// ToolChoiceNone forbids tool calls while the tools stay declared, so
	// that a conversation that already holds tool calls remains valid.
	ToolChoiceNone = "none"
)

// DefaultMaxTokens is the answer bound when Request.MaxTokens is 0. Triage's
// answers are one small JSON object.
const DefaultMaxTokens = 256

// Message is one turn of the conversation.
type Message struct {
	Role string // RoleUser or RoleAssistant
	Text string
	// ToolCalls, on an assistant message, are the tools the model asked to
	// run in that turn.
	ToolCalls []ToolCall
	// ToolResults, on a user message, answer the previous turn's ToolCalls,
	// one each.
	ToolResults []ToolResult
}

// Tool is a tool the model may call while it decides: the server that
// sent the request runs it, in the scope of the event under decision.
type Tool struct {
	Name        string
	Description string
	// InputSchema is the JSON Schema of the arguments: an object.
	InputSchema map[string]any
}

// ToolCall is the model's request to run a tool.
type ToolCall struct {
	// ID pairs the call with its ToolResult; providers assign it.
	ID    string
	Name  string
	Input map[string]any
}

// ToolResult is a tool's answer to one ToolCall.
type ToolResult struct {
	CallID string
	// Content is the result as text (triage's tools answer JSON).
	Content string
	// IsError says the call failed or was refused; Content says why.
	IsError bool
}

// Preferences are MCP's modelPreferences, provider-neutral. ModelRoute says
// how they pick a model.
type Preferences struct {
	// Hints are model name hints in order of preference, matched as
	// substrings (e.g. "sonnet", "claude-3-haiku", "gpt-4o").
	Hints []string
	// Priorities from 0 to 1; nil means unset and counts as 0.
	CostPriority, SpeedPriority, IntelligencePriority *float64
}

// Request is one completion request.
type Request struct {
	// System is the system prompt; empty sends none.
	System string
	// Messages must hold at least one message, roles user or assistant.
	Messages    []Message
	Preferences Preferences
	// Temperature is passed through as is; nil leaves the provider default.
	// The anthropic provider never sends it: Anthropic API version
	// 2026-10-21 rejects sampling parameters, so Claude samples at its
	// default.
	Temperature *float64
	// MaxTokens bounds the answer (for thinking models, thinking included);
	// 0 means DefaultMaxTokens.
	MaxTokens int
	// Stop sequences end the answer early; at most a few, as the provider
	// allows (OpenAI: 4).
	Stop []string
	// Schema is the JSON Schema the answer must follow (AnswerSchema); nil
	// asks for free text. A provider that can constrain its output to a
	// schema gets it (Options.Structured); the caller validates the answer
	// either way, since most providers cannot.
	Schema map[string]any
	// Tools the model may call before it answers; empty offers none. A
	// response that calls them has StopReason StopToolUse and ToolCalls;
	// the caller runs them and sends the results in a new user message.
	Tools []Tool
	// ToolChoice is ToolChoiceAuto, ToolChoiceRequired or ToolChoiceNone;
	// "" means auto. It applies only when Tools is not empty.
	ToolChoice string
	// Metadata is the MCP request's metadata, passed through. triage sets
	// "event_id" (string), "type" (string), "outcomes" ([]string, the
	// decision schema's outcomes) and "fallback" (string). Providers other
	// than offline ignore it; offline reads "outcomes" and ignores
	// Temperature, MaxTokens and Stop.
	Metadata map[string]any
}

// Response is a provider's answer.
type Response struct {
	Text string
	// Model is the model that answered, as the provider names it.
	Model string
	// StopReason is StopEndTurn, StopMaxTokens, StopSequence, or the
	// provider's own reason when MCP has no equivalent.
	StopReason string
	// ToolCalls are the tools the model asks to run (StopReason
	// StopToolUse); Text may then be empty. A provider that reports tool
	// calls with a plain end of turn (some OpenAI-compatible servers say
	// "stop") has its StopReason made StopToolUse, so that callers need
	// look at one field only.
	ToolCalls []ToolCall
	// Token usage as the provider reports it; 0 when unknown. The offline
	// scorer's counts are approximations (characters / 4).
	InputTokens, OutputTokens int64
}

// Provider completes requests. Implementations are safe for concurrent use.
//
// A provider that passes Request.Tools to its model and may answer with
// ToolCalls says so with a method SupportsTools() bool returning true, as
// the providers New returns do; callers that declare tool support to
// others (the sampler) check for it. A provider without the method may
// ignore the tools, which is a valid answer (no calls) but wastes them.
type Provider interface {
	// Name is the provider's name as given to New ("anthropic", "openai",
	// "offline").
	Name() string
	// Complete sends one request, without retrying. A non-nil error is an
	// *Error; IsRetryable says whether trying again can help.
	Complete(ctx context.Context, req Request) (Response, error)
}

// Options configure New. The zero value is valid for "openai" (against
// api.openai.com, without a key) and "offline"; "anthropic" needs APIKey.
type Options struct {
	// APIKey authenticates to the provider. Required for anthropic; optional
	// for openai (local servers such as Ollama need none). cmd/ reads it from
	// the environment (ANTHROPIC_API_KEY, OPENAI_API_KEY); this package never
	// does.
	APIKey string
	// BaseURL replaces the provider's endpoint: for openai any
	// OpenAI-compatible server (Ollama http://127.0.0.1:11434/v1, vLLM,
	// llama.cpp, LiteLLM), for anthropic a proxy or gateway. Empty means
	// the provider's public API.
	BaseURL string
	// Models is the hint-to-model table; nil means the provider's built-in
	// table (see ModelRoute). Every route needs a Hint and a Model.
	Models []ModelRoute
	// Model pins one model for every request, overriding the table. With
	// an OpenAI-compatible server other than OpenAI's, set it to a model
	// the server has (e.g. "llama3.2"): the built-in defaults are OpenAI's.
	Model string
	// HTTPClient sends the requests; nil means a client like
	// http.DefaultClient that keeps up to 64 idle connections a host
	// instead of 2. Requests are bounded by their context, not by a client
	// timeout.
	HTTPClient *http.Client
	// Structured says how openai asks for output that follows
	// Request.Schema: StructuredJSONSchema (the default: OpenAI, vLLM,
	// Ollama, llama.cpp's llama-server), StructuredJSONObject
	// (llama-cpp-python's server, which accepts only json_object with a
	// schema) or StructuredNone (servers that reject both). A request that
	// offers tools carries it only to OpenAI itself (no BaseURL): compatible
	// servers constrain the whole output with it, tool calls included.
	// anthropic always sends the schema as output_config.format; offline
	// ignores it.
	Structured string
	// Latency is offline only: every answer waits this long first
	// (benchmarks use it to stand in for a model), returning early with the
	// context's error when ctx ends. 0 answers at once.
	Latency time.Duration
}

// defaultClient sends the requests of providers given no client. Many
// requests go to one host at once (a pool's workers, a sampler's calls):
// net/http keeps only 2 idle connections a host, so every other request
// would dial, and shake hands over TLS, anew.
var defaultClient = func() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = maxIdleConnsPerHost
	return &http.Client{Transport: tr}
}()

// maxIdleConnsPerHost is the connections defaultClient keeps open to a
// provider between requests: as many as a consumer's sampling workers
// usually are.
const maxIdleConnsPerHost = 64

// New returns the named provider: "anthropic", "openai" or "offline".
func New(provider string, o Options) (Provider, error) {
	if o.Latency < 0 {
		return nil, fmt.Errorf("llm: negative latency %v", o.Latency)
	}
	if provider == offlineName {
		return newOffline(o), nil
	}
	var builtin modelTable
	switch provider {
	case anthropicName:
		builtin = anthropicModels
	case openaiName:
		builtin = openaiModels
	default:
		return nil, fmt.Errorf("llm: unknown provider %q (want %s, %s or %s)",
			provider, anthropicName, openaiName, offlineName)
	}
	models, err := newModelTable(builtin, o.Models, o.Model)
	if err != nil {
		return nil, fmt.Errorf("llm: %s: %w", provider, err)
	}
	if o.BaseURL != "" {
		if u, err := url.Parse(o.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("llm: %s: base URL %q: want http(s)://host[/path]", provider, o.BaseURL)
		}
	}
	switch o.Structured {
	case "":
		o.Structured = StructuredJSONSchema
	case StructuredJSONSchema, StructuredJSONObject, StructuredNone:
	default:
		return nil, fmt.Errorf("llm: %s: structured output %q (want %s, %s or %s)",
			provider, o.Structured, StructuredJSONSchema, StructuredJSONObject, StructuredNone)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = defaultClient
	}
	if provider == anthropicName {
		return newAnthropic(o, models)
	}
	return newOpenAI(o, models), nil
}

// Error is a failed completion. Retryable says whether the same request may
// succeed later: true for HTTP 408, 429 and 5xx, timeouts and broken
// connections; false for other 4xx (bad request, auth, unknown model),
// invalid requests caught before sending, and a cancelled context.
type Error struct {
	Provider string
	// Status is the HTTP status; 0 when no response arrived.
	Status    int
	Retryable bool
	// RetryAfter is the wait the provider asked for (Retry-After header),
	// 0 when it named none.
	RetryAfter time.Duration
	Err        error
}

// Error names the provider; the wrapped error names the status.
func (e *Error) Error() string { return fmt.Sprintf("llm: %s: %v", e.Provider, e.Err) }

// Unwrap returns the underlying error: the SDK's, or a context error.
func (e *Error) Unwrap() error { return e.Err }

// IsRetryable reports whether err is an *Error that a retry may cure.
func IsRetryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable
}

// retryableStatus reports whether an HTTP status is worth a retry. 408 is
// a server-side timeout; 529 (Anthropic "overloaded") is among the 5xx.
func retryableStatus(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// statusError wraps an error response. resp may be nil.
func statusError(provider string, status int, resp *http.Response, err error) *Error {
	e := &Error{Provider: provider, Status: status, Retryable: retryableStatus(status), Err: err}
	if resp != nil {
		e.RetryAfter = retryAfter(resp.Header, time.Now())
	}
	return e
}

// transportError wraps an error that came without an HTTP response.
func transportError(provider string, err error) *Error {
	return &Error{Provider: provider, Retryable: retryableTransport(err), Err: err}
}

// retryableTransport reports whether an error without an HTTP response is
// transient: a timeout or a connection that failed or broke. A cancelled
// context is the caller giving up, not a fault.
func retryableTransport(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}

// invalidRequest is the error for a request rejected before sending.
func invalidRequest(provider, format string, args ...any) *Error {
	return &Error{Provider: provider, Err: fmt.Errorf("invalid request: "+format, args...)}
}

// check validates what every provider needs and returns the token bound.
func check(provider string, req Request) (maxTokens int64, err error) {
	if len(req.Messages) == 0 {
		return 0, invalidRequest(provider, "no messages")
	}
	for i, m := range req.Messages {
		if m.Role != RoleUser && m.Role != RoleAssistant {
			return 0, invalidRequest(provider, "message %d: role %q (want %s or %s)", i, m.Role, RoleUser, RoleAssistant)
		}
		if err := checkTools(m); err != nil {
			return 0, invalidRequest(provider, "message %d: %v", i, err)
		}
	}
	for i, t := range req.Tools {
		if t.Name == "" {
			return 0, invalidRequest(provider, "tool %d has no name", i)
		}
	}
	switch req.ToolChoice {
	case "", ToolChoiceAuto, ToolChoiceRequired, ToolChoiceNone:
	default:
		return 0, invalidRequest(provider, "tool choice %q (want %s, %s or %s)", req.ToolChoice,
			ToolChoiceAuto, ToolChoiceRequired, ToolChoiceNone)
	}
	switch {
	case req.MaxTokens < 0:
		return 0, invalidRequest(provider, "negative max tokens %d", req.MaxTokens)
	case req.MaxTokens == 0:
		return DefaultMaxTokens, nil
	}
	return int64(req.MaxTokens), nil
}

// checkTools validates a message's tool calls and results: calls only from
// the assistant and results only from the user (as every provider's API
// has it), each with the id that pairs them.
func checkTools(m Message) error {
	if len(m.ToolCalls) > 0 && m.Role != RoleAssistant {
		return errors.New("tool calls on a user message")
	}
	if len(m.ToolResults) > 0 && m.Role != RoleUser {
		return errors.New("tool results on an assistant message")
	}
	for j, c := range m.ToolCalls {
		if c.ID == "" || c.Name == "" {
			return fmt.Errorf("tool call %d needs an id and a name", j)
		}
	}
	for j, r := range m.ToolResults {
		if r.CallID == "" {
			return fmt.Errorf("tool result %d has no call id", j)
		}
	}
	return nil
}

// toolStop returns stop, made StopToolUse when the model called tools but
// the provider reported a plain end of turn.
func toolStop(stop string, calls []ToolCall) string {
	if len(calls) > 0 && stop == StopEndTurn {
		return StopToolUse
	}
	return stop
}

// toolInput decodes a tool call's JSON arguments, which must be an object
// (or empty, for a tool without parameters).
func toolInput(provider, name string, raw []byte) (map[string]any, error) {
	in := map[string]any{}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return in, nil
	}
	if err := json.Unmarshal(raw, &in); err != nil || in == nil {
		// A model can write malformed arguments; the same request may
		// well get good ones, but the caller decides whether to ask again.
		return nil, &Error{Provider: provider, Err: fmt.Errorf("tool call %q: arguments are not a JSON object: %q", name, raw)}
	}
	return in, nil
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date
// (RFC 9110 section 10.2.3), plus the retry-after-ms extension both
// providers send. 0 when absent or unreadable.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if ms, err := strconv.ParseFloat(h.Get("Retry-After-Ms"), 64); err == nil && ms > 0 {
		return time.Duration(ms * float64(time.Millisecond))
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
