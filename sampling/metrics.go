package sampling

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/triage-dev/triage/audit"
)

// Metrics are the sampling stage's Prometheus metrics. A nil *Metrics
// records nothing.
type Metrics struct {
	waiting  prometheus.Gauge
	attempts *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// quarantined counts sessions whose breaker is open or half-open;
	// breaker counts the breakers' changes of state.
	quarantined prometheus.Gauge
	breaker     *prometheus.CounterVec
	tools       *prometheus.CounterVec
	// The guards' (guard.go): cache lookups, refusals, tokens charged and
	// budget used.
	cache   *prometheus.CounterVec
	refusal *prometheus.CounterVec
	spent   *prometheus.CounterVec
	used    *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "triage_sampling_items", Help: "Ambiguous items in the sampling stage (queued or leased).",
		}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "triage_sampling_attempts_total", Help: "Sampling attempts by mode (pull, push, direct) and status.",
		}, []string{"mode", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "triage_sampling_attempt_seconds", Help: "Duration of a sampling attempt, by mode.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"mode"}),
		quarantined: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "triage_sampling_sessions_quarantined",
			Help: "Sampler sessions quarantined for failing lease after lease (circuit breaker open or half-open).",
		}),
		breaker: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "triage_sampling_session_breaker_transitions_total",
			Help: "Changes of state of the sampler sessions' circuit breakers, by the state entered (open, half-open, closed).",
		}, []string{"to"}),
		tools: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "triage_sampling_tool_calls_total",
			Help: "Tool calls the LLM made inside sampling, by tool and status (ok, denied: outside the event's scope, error).",
		}, []string{"tool", "status"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "triage_guard_cache_total",
			Help: "Result cache lookups of cacheable ambiguous events: hit, miss (sampled), shared (waited for an identical request in flight).",
		}, []string{"result"}),
		refusal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "triage_guard_refused_total",
			Help: "Ambiguous events the guards gave the fallback instead of a sampling request, by reason (policy, rate_limited, budget_exceeded).",
		}, []string{"reason"}),
		spent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "triage_guard_tokens_total",
			Help: "Tokens charged to the budgets (reported by samplers, or estimated), by tenant, model answered and risk tier.",
		}, []string{"tenant", "model", "tier"}),
		used: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "triage_guard_budget_used_ratio",
			Help: "Share of the token budget spent in the current window: scope global (tenant empty), or a tenant's.",
		}, []string{"scope", "tenant"}),
	}
	for _, c := range []prometheus.Collector{m.waiting, m.attempts, m.latency, m.quarantined, m.breaker, m.tools,
		m.cache, m.refusal, m.spent, m.used} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) queued(delta float64) {
	if m != nil {
		m.waiting.Add(delta)
	}
}

func (m *Metrics) attempt(mode string, status audit.Status, d time.Duration) {
	if m != nil {
		m.attempts.WithLabelValues(mode, string(status)).Inc()
		m.latency.WithLabelValues(mode).Observe(d.Seconds())
	}
}

// toolCalls counts the tool_call records among recs (a tool round's
// records also hold the attempt that asked for the tools).
func (m *Metrics) toolCalls(recs []audit.Record) {
	if m == nil {
		return
	}
	for _, r := range recs {
		if r.Kind == audit.KindToolCall {
			m.tools.WithLabelValues(r.Tool, string(r.Status)).Inc()
		}
	}
}

func (m *Metrics) breakerChanged(from, to gobreaker.State) {
	if m == nil {
		return
	}
	m.breaker.WithLabelValues(to.String()).Inc()
	switch {
	case from == gobreaker.StateClosed:
		m.quarantined.Inc()
	case to == gobreaker.StateClosed:
		m.quarantined.Dec()
	}
}

// quarantineForgotten: a quarantined session's breaker was forgotten (its
// session ended or went idle).
func (m *Metrics) quarantineForgotten() {
	if m != nil {
		m.quarantined.Dec()
	}
}
