package pipeline

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/internal/kafka"
	"github.com/triage-dev/triage/rules"
)

// SyncConfig configures a Sync. The zero value of every optional field means
// the default written in its comment.
type SyncConfig struct {
	// Brokers are the Kafka seed brokers. Required.
	Brokers []string
	// DecisionsTopic and AuditTopic default to "decisions" and "audit".
	DecisionsTopic, AuditTopic string
	// Rules is the live rules set; required.
	Rules *rules.Live
	// Decider decides ambiguous events, as Config.Decider; nil gives them
	// the fallback with reason no_sampler.
	Decider Decider
	// Observe, when not nil, sees every valid event, as Config.Observe.
	Observe func(*rules.Type, Event)
	// Instance names this consumer in audit records and chains. Default
	// host-pid.
	Instance string
	// Signer, when not nil, signs the checkpoints that close the channels'
	// chains every second.
	Signer *audit.Signer
	// Window is how long a decision is remembered for retries of its
	// request (idempotency). Default 10 minutes.
	Window time.Duration
	// Remember bounds how many decisions are remembered; the oldest are
	// forgotten first. Default 100,000.
	Remember int
	// MaxWait bounds a decision whose request set no timeout. Default 30 s.
	MaxWait time.Duration
	// MaxInFlight bounds the requests decided at once; more are refused
	// with ErrSyncBusy rather than queued without bound. Default 1,024.
	MaxInFlight int
	// ClientOpts are appended to the producer's options (TLS, SASL).
	ClientOpts []kgo.Opt
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics, when not nil, receives the synchronous channels' metrics.
	Metrics *SyncMetrics
}

// SyncRequest asks for one decision.
type SyncRequest struct {
	// Channel is audit.ChannelMCP or audit.ChannelHTTP, Caller who asks
	// (audit.Record.Caller).
	Channel, Caller string
	// Event is the event, one JSON object as on the event topics.
	Event []byte
	// Timeout, when positive, bounds the Decider: past it, the event gets
	// its type's fallback with reason timeout (the decision is still
	// recorded and returned). The rules are not bounded: they take
	// microseconds.
	Timeout time.Duration
	// Tenants, when not empty, are the only tenants the caller may ask
	// for.
	Tenants []string
}

// SyncResponse is a decision made for a SyncRequest.
type SyncResponse struct {
	Decision Decision
	// AuditID is the decision's audit record.
	AuditID string
	// Replayed says the decision was made for an earlier request with the
	// same event: this request changed nothing.
	Replayed bool
	// Trail is the audit records as written (nil on a replay). Treat it as
	// read-only.
	Trail []*audit.Record
}

// SyncAnswer is a synchronous decision as the decide tool and POST
// /v1/decide answer it.
type SyncAnswer struct {
	EventID  string `json:"event_id"`
	TenantID string `json:"tenant_id"`
	Type     string `json:"type"`
	// Outcome is one of the type's outcomes.
	Outcome string `json:"outcome"`
	// Path is who decided: rule, sampled, cache or fallback.
	Path   string   `json:"path"`
	Reason string   `json:"reason,omitempty"`
	Score  *float64 `json:"score,omitempty"`
	RuleID string   `json:"rule_id,omitempty"`
	Model  string   `json:"model,omitempty"`
	Tier   string   `json:"tier,omitempty"`
	// AuditID is the decision's audit record.
	AuditID string `json:"audit_id"`
	// LatencyMS runs from the request's arrival to the decision.
	LatencyMS float64 `json:"latency_ms"`
	// Replayed says the decision was made for an earlier request with
	// the same event.
	Replayed bool `json:"replayed,omitempty"`
}

// Answer is r as the synchronous APIs answer it.
func (r SyncResponse) Answer() SyncAnswer {
	d := r.Decision
	return SyncAnswer{EventID: d.EventID, TenantID: d.TenantID, Type: d.Type, Outcome: d.Outcome, Path: d.Path,
		Reason: d.Reason, Score: d.Score, RuleID: d.RuleID, Model: d.Model, Tier: d.Tier,
		AuditID: r.AuditID, LatencyMS: d.LatencyMS, Replayed: r.Replayed}
}

// Errors of Sync.Decide besides a *DecodeError (the event is not valid).
var (
	// ErrEventIDReused: the event id was decided, within the window, for
	// a different event of the same tenant.
	ErrEventIDReused = errors.New("pipeline: the event id was already used for a different event")
	// ErrTenantNotAllowed: the caller may not ask for the event's tenant.
	ErrTenantNotAllowed = errors.New("pipeline: the caller may not ask for this tenant")
	// ErrSyncClosed: the Sync is closing.
	ErrSyncClosed = errors.New("pipeline: synchronous decisions are shutting down")
	// ErrSyncBusy: MaxInFlight requests are being decided; retry later.
	ErrSyncBusy = errors.New("pipeline: too many synchronous decisions in flight")
)

// Sync makes synchronous decisions. It is safe for concurrent use.
type Sync struct {
	cfg    SyncConfig
	log    *slog.Logger
	cl     *kgo.Client
	chains *audit.Chains
	seen   *remembered

	mu       sync.Mutex // guards closing and inFlight against new requests
	closing  bool
	inFlight int
	wg       sync.WaitGroup // requests in flight
	stop     context.CancelFunc
	stopped  chan struct{}
}

// NewSync creates the producer and starts the checkpoints.
func NewSync(cfg SyncConfig) (*Sync, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("pipeline: sync: no brokers configured")
	}
	if cfg.Rules == nil {
		return nil, errors.New("pipeline: sync: no rules")
	}
	if cfg.DecisionsTopic == "" {
		cfg.DecisionsTopic = "decisions"
	}
	if cfg.AuditTopic == "" {
		cfg.AuditTopic = "audit"
	}
	if cfg.Instance == "" {
		cfg.Instance = defaultInstance()
	}
	if cfg.Window <= 0 {
		cfg.Window = 10 * time.Minute
	}
	if cfg.Remember <= 0 {
		cfg.Remember = 100_000
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 30 * time.Second
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 1024
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.AllowAutoTopicCreation(),
		// A caller waits for the acknowledgement: do not hold the
		// records back to fill a batch.
		kgo.ProducerLinger(0),
		kgo.WithLogger(kafka.Logger(cfg.Logger, "sync")),
	}, cfg.ClientOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("pipeline: sync producer: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sync{cfg: cfg, log: cfg.Logger, cl: cl, chains: audit.NewSignedChains(cfg.Signer),
		seen: newRemembered(cfg.Window, cfg.Remember), stop: cancel, stopped: make(chan struct{})}
	go s.checkpoints(ctx)
	return s, nil
}

// Close waits for the requests in flight, closes the chains with a last
// checkpoint and flushes the producer. Requests after Close begins get
// ErrSyncClosed.
func (s *Sync) Close() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.wg.Wait()
	s.stop()
	<-s.stopped
	s.checkpoint(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.cl.Flush(ctx); err != nil {
		s.log.Warn("sync: flush at close", "err", err)
	}
	s.cl.Close()
}

// Decide decides req's event and returns once its decision and audit
// records are acknowledged. The error is a *DecodeError when the event is
// not valid (nothing is recorded), ErrEventIDReused, ErrTenantNotAllowed,
// ErrSyncClosed, or the produce error that kept the decision from being
// recorded (then nothing is remembered, and a retry decides again).
//
// The decision does not end with ctx: a caller that goes away leaves it
// to be made and recorded, so that its retry finds it. ctx bounds only the
// wait for an identical request in flight.
func (s *Sync) Decide(ctx context.Context, req SyncRequest) (SyncResponse, error) {
	s.mu.Lock()
	switch {
	case s.closing:
		s.mu.Unlock()
		return SyncResponse{}, ErrSyncClosed
	case s.inFlight >= s.cfg.MaxInFlight:
		s.mu.Unlock()
		s.cfg.Metrics.observe(req.Channel, SyncResponse{}, ErrSyncBusy, 0)
		return SyncResponse{}, ErrSyncBusy
	}
	s.inFlight++
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
		s.wg.Done()
	}()

	received := time.Now()
	resp, err := s.decide(ctx, req, received)
	s.cfg.Metrics.observe(req.Channel, resp, err, time.Since(received))
	return resp, err
}

func (s *Sync) decide(ctx context.Context, req SyncRequest, received time.Time) (SyncResponse, error) {
	set := s.cfg.Rules.Current()
	fields, typ, err := Decode(set, req.Event)
	if err != nil {
		return SyncResponse{}, err
	}
	ev := newEvent(typ, fields, received)
	ev.Partition, ev.Offset = -1, -1 // no source record
	if len(req.Tenants) > 0 && !slices.Contains(req.Tenants, ev.TenantID) {
		return SyncResponse{}, fmt.Errorf("%w: %q", ErrTenantNotAllowed, ev.TenantID)
	}
	e, first := s.seen.claim(ev.TenantID+"\x00"+ev.ID, sha256.Sum256(req.Event), received)
	if !first {
		return e.wait(ctx)
	}
	resp, err := s.make(ctx, req, set, typ, ev)
	s.seen.settle(e, resp, err)
	return resp, err
}

// make decides ev and records the decision. The Decider's context keeps
// ctx's values (the caller that samples for itself, the trace) but not its
// end.
func (s *Sync) make(ctx context.Context, req SyncRequest, set *rules.Set, typ *rules.Type, ev Event) (SyncResponse, error) {
	if s.cfg.Observe != nil {
		s.cfg.Observe(typ, ev)
	}
	res := evaluate(set, typ, ev, s.log)
	d := ruleDecision(res)
	var v Verdict
	if res.Action == rules.ActionSample {
		it := Item{Event: ev, Type: typ, Rule: res, Caller: req.Caller}
		wait := s.cfg.MaxWait
		if req.Timeout > 0 {
			wait = min(req.Timeout, wait)
		}
		d, v = s.ask(context.WithoutCancel(ctx), it, wait)
	}
	value, trail := decisionOutputs(ev, &d, v, time.Now(), func(a *audit.Record) {
		a.Partition, a.Offset, a.Consumer = -1, -1, s.cfg.Instance
		a.Channel, a.Caller = req.Channel, req.Caller
	})
	if err := s.record(audit.SyncChain(req.Channel, s.cfg.Instance), ev.Key, value, trail); err != nil {
		return SyncResponse{}, err
	}
	return SyncResponse{Decision: d, AuditID: trail[len(trail)-1].AuditID, Trail: trail}, nil
}

// ask puts an ambiguous item to the Decider for at most wait; past it, or
// when the Decider fails, the item gets its type's fallback.
func (s *Sync) ask(ctx context.Context, it Item, wait time.Duration) (Decision, Verdict) {
	if s.cfg.Decider == nil {
		return fallback(it, FallbackNoSampler), Verdict{}
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	v, err := s.cfg.Decider.Decide(ctx, it)
	return settle(it, v, err)
}

// record produces the decision and its audit trail, linked into chain,
// and waits for the broker to acknowledge them all.
func (s *Sync) record(chain, key string, value []byte, trail []*audit.Record) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.MaxWait)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed error
	ack := func(r *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			failed = errors.Join(failed, fmt.Errorf("pipeline: sync: produce to %s: %w", r.Topic, err))
			mu.Unlock()
		}
		wg.Done()
	}
	s.chains.Link(chain, trail, func() {
		wg.Add(1 + len(trail))
		s.cl.Produce(ctx, &kgo.Record{Topic: s.cfg.DecisionsTopic, Key: []byte(key), Value: value}, ack)
		for _, a := range trail {
			s.cl.Produce(ctx, auditRecord(s.cfg.AuditTopic, chain, a), ack)
		}
	})
	wg.Wait()
	if failed != nil {
		// Records after the failed ones must not link to them: the
		// chain starts a new segment.
		s.chains.Reset([]string{chain})
	}
	return failed
}

// checkpoints closes the chains that had records linked with a signed
// checkpoint every second, until ctx ends.
func (s *Sync) checkpoints(ctx context.Context) {
	defer close(s.stopped)
	if s.cfg.Signer == nil {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.checkpoint(ctx)
		}
	}
}

func (s *Sync) checkpoint(ctx context.Context) {
	s.chains.CheckpointUnsigned(s.cfg.Instance, func(chain string, cp *audit.Record) {
		s.cl.Produce(context.WithoutCancel(ctx), auditRecord(s.cfg.AuditTopic, chain, cp), func(_ *kgo.Record, err error) {
			if err != nil {
				s.log.Warn("sync: produce checkpoint", "chain", chain, "err", err)
			}
		})
	})
}

// remembered holds the decisions of the idempotency window, oldest first,
// and the requests in flight.
type remembered struct {
	window time.Duration
	max    int

	mu    sync.Mutex
	byKey map[string]*list.Element
	order *list.List // of *syncEntry, by claim time
}

type syncEntry struct {
	key  string
	sum  [sha256.Size]byte
	at   time.Time
	done chan struct{}
	resp SyncResponse
	err  error
}

func newRemembered(window time.Duration, max int) *remembered {
	return &remembered{window: window, max: max, byKey: map[string]*list.Element{}, order: list.New()}
}

// claim returns the entry of key: a new one to settle when first, or the
// one remembered or in flight. An entry whose event differs (sum) is
// returned settled with ErrEventIDReused.
func (r *remembered) claim(key string, sum [sha256.Size]byte, now time.Time) (*syncEntry, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forgetLocked(now)
	if el, ok := r.byKey[key]; ok {
		e := el.Value.(*syncEntry)
		if e.sum != sum {
			d := &syncEntry{done: make(chan struct{}), err: ErrEventIDReused}
			close(d.done)
			return d, false
		}
		return e, false
	}
	e := &syncEntry{key: key, sum: sum, at: now, done: make(chan struct{})}
	r.byKey[key] = r.order.PushBack(e)
	return e, true
}

// settle records e's outcome. A failed decision is forgotten at once, so
// that a retry makes it.
func (r *remembered) settle(e *syncEntry, resp SyncResponse, err error) {
	// A replay needs the decision, not its trail (request and response
	// summaries, kilobytes a sampled decision): the window holds many.
	resp.Trail = nil
	r.mu.Lock()
	defer r.mu.Unlock()
	e.resp, e.err = resp, err
	close(e.done)
	if err != nil {
		if el, ok := r.byKey[e.key]; ok && el.Value == e {
			r.order.Remove(el)
			delete(r.byKey, e.key)
		}
	}
}

// forgetLocked drops the settled entries older than the window, and the
// oldest settled ones beyond max. An entry in flight stays: its requests
// wait for it.
func (r *remembered) forgetLocked(now time.Time) {
	for el := r.order.Front(); el != nil; {
		e := el.Value.(*syncEntry)
		if now.Sub(e.at) < r.window && r.order.Len() < r.max {
			return
		}
		select {
		case <-e.done:
		default:
			return
		}
		next := el.Next()
		r.order.Remove(el)
		delete(r.byKey, e.key)
		el = next
	}
}

// wait returns e's outcome for a repeated request, once it is settled.
func (e *syncEntry) wait(ctx context.Context) (SyncResponse, error) {
	select {
	case <-e.done:
	case <-ctx.Done():
		return SyncResponse{}, ctx.Err()
	}
	if e.err != nil {
		return SyncResponse{}, e.err
	}
	resp := e.resp
	resp.Replayed = true
	return resp, nil
}

// SyncMetrics are the synchronous channels' Prometheus metrics.
type SyncMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewSyncMetrics registers the synchronous channels' metrics with reg.
func NewSyncMetrics(reg prometheus.Registerer) (*SyncMetrics, error) {
	m := &SyncMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "triage_sync_requests_total",
			Help: "Synchronous decision requests, by channel and result: the decision's path, replayed (a retry answered with the first decision), invalid, refused (tenant, reused event id), busy (too many in flight) or error.",
		}, []string{"channel", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "triage_sync_request_seconds",
			Help:    "From a synchronous request's arrival to its decision being acknowledged, by channel and path.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"channel", "path"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("pipeline: sync metrics: %w", err)
		}
	}
	return m, nil
}

func (m *SyncMetrics) observe(channel string, resp SyncResponse, err error, took time.Duration) {
	if m == nil {
		return
	}
	var de *DecodeError
	result := resp.Decision.Path
	switch {
	case errors.As(err, &de):
		result = "invalid"
	case errors.Is(err, ErrTenantNotAllowed), errors.Is(err, ErrEventIDReused):
		result = "refused"
	case errors.Is(err, ErrSyncBusy):
		result = "busy"
	case err != nil:
		result = "error"
	case resp.Replayed:
		result = "replayed"
	default:
		m.latency.WithLabelValues(channel, result).Observe(took.Seconds())
	}
	m.requests.WithLabelValues(channel, result).Inc()
}
