package main

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/triage-dev/triage/internal/config"
	"github.com/triage-dev/triage/internal/httpapi"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/sampling"
)

// syncAPI is the synchronous decisions: POST /v1/decide on the ops
// listener and the decide tool on the MCP server, both on one
// pipeline.Sync. Its zero value (neither offered) does nothing.
type syncAPI struct {
	sync *pipeline.Sync
	http http.Handler // nil: no API tokens, the endpoint is off
}

// newSyncAPI creates the synchronous decisions the configuration asks for:
// the HTTP endpoint with API tokens, the decide tool with an MCP endpoint.
func newSyncAPI(cfg config.Config, base pipeline.Config, stage *llmStage, reg prometheus.Registerer, log *slog.Logger) (*syncAPI, error) {
	tokens, err := apiTokens(cfg)
	if err != nil {
		return nil, err
	}
	tool := stage.pool != nil && cfg.MCPListen != ""
	if len(tokens) == 0 && !tool {
		log.Info("synchronous decisions off: no --api-token and no MCP endpoint")
		return &syncAPI{}, nil
	}
	m, err := pipeline.NewSyncMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	s, err := pipeline.NewSync(pipeline.SyncConfig{
		Brokers: base.Brokers, DecisionsTopic: base.DecisionsTopic, AuditTopic: base.AuditTopic,
		Rules: base.Rules, Decider: stage.decider, Observe: base.Observe, Instance: base.Instance, Signer: base.Signer,
		Window: cfg.DecideWindow, ClientOpts: base.ClientOpts, Logger: log, Metrics: m,
	})
	if err != nil {
		return nil, err
	}
	a := &syncAPI{sync: s}
	if tool {
		if err := stage.pool.AddDecideTool(s, base.Rules, sampling.DecideOptions{PoolOnly: cfg.DecideSampling == "pool"}); err != nil {
			s.Close()
			return nil, err
		}
	}
	if len(tokens) > 0 {
		a.http = httpapi.Handler(s, httpapi.Options{Tokens: tokens, MaxBatch: cfg.DecideBatch, Rules: base.Rules, Logger: log})
	} else {
		log.Info("POST " + httpapi.DecidePath + " off: no --api-token or --api-tokens-file")
	}
	return a, nil
}

// apiTokens are the bearer tokens of POST /v1/decide: --api-token (caller
// "api") and those of --api-tokens-file.
func apiTokens(cfg config.Config) ([]httpapi.Token, error) {
	var out []httpapi.Token
	if cfg.APIToken != "" {
		out = append(out, httpapi.Token{Name: "api", Secret: cfg.APIToken})
	}
	if cfg.APITokensFile != "" {
		more, err := httpapi.LoadTokens(cfg.APITokensFile)
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	return out, nil
}

// routes serves the API's paths beside ops.
func (a *syncAPI) routes(ops http.Handler) http.Handler {
	if a.http == nil {
		return ops
	}
	mux := http.NewServeMux()
	mux.Handle(httpapi.DecidePath, a.http)
	mux.Handle(httpapi.OpenAPIPath, a.http)
	mux.Handle("/", ops)
	return mux
}

// close waits for the synchronous decisions in flight and closes their
// producer.
func (a *syncAPI) close() {
	if a.sync != nil {
		a.sync.Close()
	}
}
