package main

import (
	"log/slog"
	"net/http"

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
// the live readings of p and the LLM stage; every other path goes to ops.
func statusHandler(ops http.Handler, agg *status.Aggregator, p *pipeline.Pipeline, stage *llmStage, log *slog.Logger) http.Handler {
	src := status.Sources{Decider: stage.label, Lag: p.Lag, Paused: p.Paused, Logger: log,
		// Direct mode holds no items between the pipeline and the provider.
		SamplingItems: func() (int64, bool) { return 0, true }}
	if pool := stage.pool; pool != nil {
		src.Samplers = pool.Samplers
		src.SamplingItems = func() (int64, bool) { return int64(pool.Items()), true }
	}
	page := status.Handler(agg, src)
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", page)
	mux.Handle("GET /status.json", page)
	mux.Handle("/", ops)
	return mux
}
