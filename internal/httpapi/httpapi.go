// Package httpapi owns triage's synchronous HTTP API: POST /v1/decide,
// which decides one event, or a batch, with the stream's rules, guards,
// sampling and records (pipeline.Sync on channel http); its bearer-token
// authentication; and its OpenAPI document, served at GET
// /v1/openapi.json.
//
// A request is {"event": {...}} or {"events": [{...}, ...]}. One event is
// answered with its decision (pipeline.SyncAnswer); a batch with
// {"results": [...]}, each {"decision": {...}} or {"error": {...}} in
// request order, decided concurrently. Errors are RFC 9457 problem
// documents. A retry of a request (same tenant, event id and event, within
// the window) is answered with the first decision, marked replayed (and
// the header Idempotent-Replayed: true for one event), and records
// nothing. The query parameter timeout_ms, or the header Triage-Timeout-Ms,
// bounds the LLM stage: past it the event gets its type's fallback with
// reason timeout, which is recorded and returned like any decision.
package httpapi

import (
	"bufio"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
)

// Paths of the API.
const (
	DecidePath  = "/v1/decide"
	OpenAPIPath = "/v1/openapi.json"
)

// TimeoutHeader bounds the LLM stage of a request, in milliseconds, like
// the query parameter timeout_ms.
const TimeoutHeader = "Triage-Timeout-Ms"

// ReplayedHeader is "true" on the answer to a retried request.
const ReplayedHeader = "Idempotent-Replayed"

// maxBody bounds a request body: a batch of events of up to
// pipeline.DefaultMaxBytes each would otherwise be unbounded.
const maxBody = 8 << 20

// batchConcurrency bounds the events of one batch decided at once.
const batchConcurrency = 16

// Token is a bearer token of the API.
type Token struct {
	// Name names the caller in audit records and the guards' caller
	// limits.
	Name   string
	Secret string
	// Tenants, when not empty, are the only tenants the token may ask
	// for.
	Tenants []string
}

// LoadTokens reads a tokens file: one "name token [tenant,tenant]" a line;
// blank lines and lines starting with # are skipped. A token given twice
// is refused: it would name two callers.
func LoadTokens(path string) ([]Token, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("httpapi: tokens: %w", err)
	}
	defer f.Close()
	var out []Token
	seen := map[string]int{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || len(f) > 3 {
			return nil, fmt.Errorf("httpapi: tokens %s:%d: want \"name token [tenant,...]\"", path, n)
		}
		if first, dup := seen[f[1]]; dup {
			return nil, fmt.Errorf("httpapi: tokens %s:%d: the token of line %d again: a token names one caller", path, n, first)
		}
		seen[f[1]] = n
		t := Token{Name: f[0], Secret: f[1]}
		if len(f) == 3 {
			t.Tenants = strings.Split(f[2], ",")
		}
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("httpapi: tokens %s: %w", path, err)
	}
	return out, nil
}

// Decider makes synchronous decisions: pipeline.Sync.
type Decider interface {
	Decide(ctx context.Context, req pipeline.SyncRequest) (pipeline.SyncResponse, error)
}

// Options configure the API.
type Options struct {
	// Tokens are the accepted bearer tokens; with none, every request is
	// refused.
	Tokens []Token
	// MaxBatch bounds the events of one request. Default 100.
	MaxBatch int
	// Rules are the live rules, whose event types the OpenAPI document
	// describes. Required.
	Rules *rules.Live
	// Version is the API's version in the OpenAPI document.
	Version string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

type api struct {
	d    Decider
	opts Options
	log  *slog.Logger
}

// Handler serves POST /v1/decide and GET /v1/openapi.json.
func Handler(d Decider, opts Options) http.Handler {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 100
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	a := &api{d: d, opts: opts, log: opts.Logger}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+DecidePath, a.decide)
	mux.HandleFunc("GET "+OpenAPIPath, a.openAPI)
	return mux
}

// request is the body of POST /v1/decide.
type request struct {
	Event  json.RawMessage   `json:"event"`
	Events []json.RawMessage `json:"events"`
}

// BatchResult is one event's entry in a batch's answer.
type BatchResult struct {
	Decision *pipeline.SyncAnswer `json:"decision,omitempty"`
	Error    *Problem             `json:"error,omitempty"`
}

// Problem is an RFC 9457 problem document.
type Problem struct {
	// Type names the problem: urn:triage:problem: then one of
	// invalid_request, invalid_event, unauthorized, tenant_not_allowed,
	// event_id_reused, too_large, unavailable.
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Reason is, for invalid_event, the validation's reason code (the
	// DLQ vocabulary: missing, wrong_type, invalid_json, ...).
	Reason string `json:"reason,omitempty"`
}

func problem(status int, kind, detail string) *Problem {
	return &Problem{Type: "urn:triage:problem:" + kind, Title: http.StatusText(status), Status: status, Detail: detail}
}

func (a *api) decide(w http.ResponseWriter, r *http.Request) {
	tok, ok := a.authenticate(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="triage"`)
		writeProblem(w, problem(http.StatusUnauthorized, "unauthorized", "a valid bearer token is required"))
		return
	}
	timeout, perr := requestTimeout(r)
	if perr != nil {
		writeProblem(w, perr)
		return
	}
	var req request
	body := http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeProblem(w, problem(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the body is over %d bytes", maxBody)))
			return
		}
		writeProblem(w, problem(http.StatusBadRequest, "invalid_request", "the body is not a JSON object {\"event\": ...} or {\"events\": [...]}: "+err.Error()))
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		writeProblem(w, problem(http.StatusBadRequest, "invalid_request", "the body holds more than one JSON value"))
		return
	}
	one := len(req.Event) > 0 && string(req.Event) != "null"
	switch {
	case one && req.Events != nil:
		writeProblem(w, problem(http.StatusBadRequest, "invalid_request", "give event or events, not both"))
		return
	case !one && req.Events == nil:
		writeProblem(w, problem(http.StatusBadRequest, "invalid_request", "event or events is required"))
		return
	case !one && (len(req.Events) == 0 || len(req.Events) > a.opts.MaxBatch):
		writeProblem(w, problem(http.StatusBadRequest, "invalid_request", fmt.Sprintf("events holds %d events: want 1 to %d", len(req.Events), a.opts.MaxBatch)))
		return
	}
	ask := func(event json.RawMessage) (pipeline.SyncResponse, error) {
		return a.d.Decide(r.Context(), pipeline.SyncRequest{Channel: audit.ChannelHTTP, Caller: tok.Name,
			Event: event, Timeout: timeout, Tenants: tok.Tenants})
	}
	if one {
		resp, err := ask(req.Event)
		if err != nil {
			a.writeError(w, err)
			return
		}
		if resp.Replayed {
			w.Header().Set(ReplayedHeader, "true")
		}
		writeJSON(w, http.StatusOK, resp.Answer())
		return
	}
	results := make([]BatchResult, len(req.Events))
	var wg sync.WaitGroup
	sem := make(chan struct{}, batchConcurrency)
	for i, ev := range req.Events {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			resp, err := ask(ev)
			if err != nil {
				results[i].Error = a.problemOf(err)
				return
			}
			ans := resp.Answer()
			results[i].Decision = &ans
		})
	}
	wg.Wait()
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
}

// authenticate finds the request's bearer token. Every token is compared,
// in constant time each, so that the time taken does not tell which one
// nearly matched.
func (a *api) authenticate(r *http.Request) (Token, bool) {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || got == "" {
		return Token{}, false
	}
	match := -1
	for i := range a.opts.Tokens {
		if subtle.ConstantTimeCompare([]byte(got), []byte(a.opts.Tokens[i].Secret)) == 1 {
			match = i
		}
	}
	if match < 0 {
		return Token{}, false
	}
	return a.opts.Tokens[match], true
}

// requestTimeout reads the LLM stage's bound from the query or the header.
func requestTimeout(r *http.Request) (time.Duration, *Problem) {
	v := r.URL.Query().Get("timeout_ms")
	if v == "" {
		v = r.Header.Get(TimeoutHeader)
	}
	if v == "" {
		return 0, nil
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms < 1 || ms > int64(time.Hour/time.Millisecond) {
		return 0, problem(http.StatusBadRequest, "invalid_request", fmt.Sprintf("timeout_ms %q: want milliseconds, 1 to 3600000", v))
	}
	return time.Duration(ms) * time.Millisecond, nil
}

func (a *api) problemOf(err error) *Problem {
	var de *pipeline.DecodeError
	switch {
	case errors.As(err, &de):
		p := problem(http.StatusUnprocessableEntity, "invalid_event", de.Detail)
		p.Reason = de.Reason
		return p
	case errors.Is(err, pipeline.ErrTenantNotAllowed):
		return problem(http.StatusForbidden, "tenant_not_allowed", err.Error())
	case errors.Is(err, pipeline.ErrEventIDReused):
		return problem(http.StatusConflict, "event_id_reused", "the event id was decided for a different event of the tenant; use a new event id")
	case errors.Is(err, pipeline.ErrSyncBusy):
		return problem(http.StatusServiceUnavailable, "unavailable", "too many decisions in flight; retry")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return problem(http.StatusServiceUnavailable, "unavailable", "the request ended before its decision; retry it for the decision")
	}
	a.log.Warn("httpapi: decision not recorded", "err", err)
	return problem(http.StatusServiceUnavailable, "unavailable", "the decision could not be recorded; retry")
}

func (a *api) writeError(w http.ResponseWriter, err error) {
	p := a.problemOf(err)
	if p.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeProblem(w, p)
}

func writeProblem(w http.ResponseWriter, p *Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
