package pipeline

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/triage-dev/triage/rules"
)

// Metrics are the pipeline's Prometheus metrics. A nil *Metrics records
// nothing, so tests and embedded uses need not register any.
type Metrics struct {
	consumedTotal *prometheus.CounterVec
	decisions     *prometheus.CounterVec
	dlq           *prometheus.CounterVec
	handoffs      prometheus.Counter
	ruleHits      *prometheus.CounterVec
	queueFulls    prometheus.Counter
	paused        prometheus.Gauge
	latency       *prometheus.HistogramVec
	transactions  *prometheus.CounterVec
	// sessionRestarts counts transactional sessions replaced after their
	// producer failed (see Pipeline.restartSession).
	sessionRestarts prometheus.Counter
	txnSeconds      prometheus.Histogram
	skipped         *prometheus.CounterVec
	lag             prometheus.Gauge
}

// NewMetrics creates the pipeline's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		consumedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "triage_records_consumed_total", Help: "Records read from the event topics.",
		}, []string{"topic"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "triage_decisions_total", Help: "Decisions acknowledged by the broker, by event type, path and outcome.",
		}, []string{"type", "path", "outcome"}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "triage_dlq_records_total", Help: "Records dead-lettered, by reason.",
		}, []string{"reason"}),
		ruleHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "triage_rule_hits_total", Help: "Rule evaluations that decided an event or sent it to sampling, by type and rule.",
		}, []string{"type", "rule"}),
		queueFulls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "triage_sampling_queue_full_total", Help: "Times the poll loop waited because the sampling queue was full.",
		}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "triage_paused_partitions", Help: "Partitions whose fetching is paused because the sampling queue is full.",
		}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "triage_decision_latency_seconds",
			Help:    "From the event's produce timestamp to its decision being acknowledged, by path.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"path"}),
		handoffs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "triage_handoffs_total", Help: "Ambiguous events the rule stage handed off to the sampling topic (their decisions are counted by the sampling stage).",
		}),
		sessionRestarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "triage_consumer_session_restarts_total", Help: "Transactional sessions replaced in-process after their producer failed (a transaction the broker aborted on its timeout); each drops the member's uncommitted work, which is processed again.",
		}),
		transactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "triage_transactions_total", Help: "Transactions ended (exactly-once delivery), by result: committed or aborted.",
		}, []string{"result"}),
		txnSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "triage_transaction_end_seconds",
			Help:    "Time to end a transaction: flush, offset commit and end.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "triage_records_already_decided_total",
			Help: "Records read again after a crash or rebalance that an earlier committed transaction had already decided, so skipped.",
		}, []string{"topic"}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "triage_consumer_fetch_lag_records",
			Help: "Records behind the high watermark of this member's partitions as of their last fetch (not refreshed while a partition is paused).",
		}),
	}
	for _, c := range []prometheus.Collector{m.consumedTotal, m.decisions, m.dlq, m.ruleHits, m.queueFulls, m.paused, m.latency,
		m.transactions, m.handoffs, m.sessionRestarts, m.txnSeconds, m.skipped, m.lag} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) consumed(topic string) {
	if m != nil {
		m.consumedTotal.WithLabelValues(topic).Inc()
	}
}

func (m *Metrics) ruleHit(r rules.Result) {
	if m != nil {
		m.ruleHits.WithLabelValues(r.Type, r.RuleID).Inc()
	}
}

func (m *Metrics) queueFull() {
	if m != nil {
		m.queueFulls.Inc()
	}
}

func (m *Metrics) setLag(n int64) {
	if m != nil {
		m.lag.Set(float64(n))
	}
}

func (m *Metrics) pausedDelta(d int) {
	if m != nil {
		m.paused.Add(float64(d))
	}
}

func (m *Metrics) observe(r Result) {
	if m == nil {
		return
	}
	switch {
	case r.HandedOff:
		m.handoffs.Inc()
		return
	case r.Decision == nil:
		m.dlq.WithLabelValues(r.DLQReason).Inc()
		return
	}
	m.decisions.WithLabelValues(r.Decision.Type, r.Decision.Path, r.Decision.Outcome).Inc()
	m.latency.WithLabelValues(r.Decision.Path).Observe(r.Latency.Seconds())
}

func (m *Metrics) sessionRestart() {
	if m == nil {
		return
	}
	m.sessionRestarts.Inc()
}

func (m *Metrics) transaction(committed bool, d time.Duration) {
	if m == nil {
		return
	}
	result := "aborted"
	if committed {
		result = "committed"
	}
	m.transactions.WithLabelValues(result).Inc()
	m.txnSeconds.Observe(d.Seconds())
}

func (m *Metrics) alreadyDecided(topic string) {
	if m != nil {
		m.skipped.WithLabelValues(topic).Inc()
	}
}
