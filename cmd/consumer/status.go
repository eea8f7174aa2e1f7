package main

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/triage-dev/triage/internal/status"
	"github.com/triage-dev/triage/pipeline"
)

// onResults calls each of fs with every result, in order: the status
// page's aggregator and the demo summary both follow the pipeline.
func onResults(fs ...func(pipeline.Result)) func(pipeline.Result) {
	if len(fs) == 1 {
		return fs[0]
	}
	return func(r pipeline.Result) {
		for _, f := range fs {
			f(r)
		}
	}
}

// statusHandler serves the status page (/ and /status.json) from agg, with
// the live readings of p, the LLM stage and reg; every other path goes to
// ops.
func statusHandler(ops http.Handler, agg *status.Aggregator, p *pipeline.Pipeline, stage *llmStage, reg prometheus.Gatherer, log *slog.Logger) http.Handler {
	src := status.Sources{
		Decider: stage.label, Lag: p.Lag, Paused: p.Paused, Logger: log,
		SamplingItems: gaugeValue(reg, "triage_sampling_items"),
	}
	if stage.pool != nil {
		src.Samplers = stage.pool.Samplers
	}
	page := status.Handler(agg, src)
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", page)
	mux.Handle("GET /status.json", page)
	mux.Handle("/", ops)
	return mux
}

// gaugeValue reads the gauge name (one without labels) from g. The
// sampling stage keeps its item count only as this gauge; gathering the
// registry once per page refresh costs well under a millisecond.
func gaugeValue(g prometheus.Gatherer, name string) func() (int64, bool) {
	return func() (int64, bool) {
		// Gather returns what it could beside an error: use that.
		mfs, _ := g.Gather()
		for _, mf := range mfs {
			if mf.GetName() == name && len(mf.GetMetric()) == 1 && mf.GetMetric()[0].GetGauge() != nil {
				return int64(mf.GetMetric()[0].GetGauge().GetValue()), true
			}
		}
		return 0, false
	}
}
