package audit

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SinkMetrics are the sink's Prometheus metrics. A nil *SinkMetrics records
// nothing.
type SinkMetrics struct {
	consumedTotal *prometheus.CounterVec
	badTotal      *prometheus.CounterVec
	deadTotal     *prometheus.CounterVec
	rowsTotal     *prometheus.CounterVec
	insertErrors  *prometheus.CounterVec
	commitErrors  prometheus.Counter
	insertSeconds *prometheus.HistogramVec
	pending       prometheus.Gauge
	paused        prometheus.Gauge
}

// NewSinkMetrics creates the sink's metrics and registers them with reg.
func NewSinkMetrics(reg prometheus.Registerer) (*SinkMetrics, error) {
	m := &SinkMetrics{
		consumedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "triage_sink_records_consumed_total", Help: "Records the ClickHouse sink read, by topic.",
		}, []string{"topic"}),
		badTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "triage_sink_bad_records_total", Help: "Records the ClickHouse sink cannot store (not valid JSON of their topic) and dead-letters, by topic.",
		}, []string{"topic"}),
		deadTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "triage_sink_dead_letters_total", Help: "Dead letters the ClickHouse sink wrote to its DLQ topic and the broker acknowledged, by reason (replays included).",
		}, []string{"reason"}),
		rowsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "triage_sink_rows_inserted_total", Help: "Rows inserted into ClickHouse, by table (replays included).",
		}, []string{"table"}),
		insertErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "triage_sink_insert_errors_total", Help: "Failed insert attempts, by table; each is retried.",
		}, []string{"table"}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "triage_sink_commit_errors_total", Help: "Failed offset commits after a successful insert; each is retried.",
		}),
		insertSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "triage_sink_insert_seconds", Help: "Duration of successful inserts, by table.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"table"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "triage_sink_pending_records", Help: "Records polled and not yet committed (the batch being inserted and the one filling meanwhile; bounded by twice the batch size).",
		}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "triage_sink_paused", Help: "1 while fetching is paused because inserts fail.",
		}),
	}
	for _, c := range []prometheus.Collector{m.consumedTotal, m.badTotal, m.deadTotal, m.rowsTotal, m.insertErrors, m.commitErrors, m.insertSeconds, m.pending, m.paused} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *SinkMetrics) consumed(topic string) {
	if m != nil {
		m.consumedTotal.WithLabelValues(topic).Inc()
	}
}

func (m *SinkMetrics) bad(topic string) {
	if m != nil {
		m.badTotal.WithLabelValues(topic).Inc()
	}
}

func (m *SinkMetrics) deadLettered(reason string) {
	if m != nil {
		m.deadTotal.WithLabelValues(reason).Inc()
	}
}

func (m *SinkMetrics) inserted(table string, rows int, d time.Duration) {
	if m != nil {
		m.rowsTotal.WithLabelValues(table).Add(float64(rows))
		m.insertSeconds.WithLabelValues(table).Observe(d.Seconds())
	}
}

func (m *SinkMetrics) insertFailed(table string) {
	if m != nil {
		m.insertErrors.WithLabelValues(table).Inc()
	}
}

func (m *SinkMetrics) commitFailed() {
	if m != nil {
		m.commitErrors.Inc()
	}
}

func (m *SinkMetrics) setPending(n int) {
	if m != nil {
		m.pending.Set(float64(n))
	}
}

func (m *SinkMetrics) setPaused(p bool) {
	if m != nil {
		v := 0.0
		if p {
			v = 1
		}
		m.paused.Set(v)
	}
}
