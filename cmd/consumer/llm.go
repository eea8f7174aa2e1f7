package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/triage-dev/triage/internal/config"
	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/sampling"
	"github.com/triage-dev/triage/sampling/client"
)

// llmStage is the decider for ambiguous events and what it needs running:
// the MCP pool with its HTTP endpoint and builtin sampler, or a direct
// provider.
type llmStage struct {
	decider pipeline.Decider
	label   string           // what decides ambiguous events, for the demo summary
	pool    *sampling.Pool   // nil in direct mode
	tokens  []sampling.Token // what samplers authenticate with on /mcp
	builtin *client.Sampler  // nil unless --sampler builtin
	// history is the recent events per entity that the transaction_history
	// tool reads; the pipeline feeds it (pipeline.Config.Observe).
	history *sampling.History
}

func newLLMStage(cfg config.Config, log *slog.Logger, reg prometheus.Registerer, tp trace.TracerProvider) (*llmStage, error) {
	metrics, err := sampling.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	// The rules file's guards (cache, limits, budgets, tenant policy)
	// stand in front of whatever decides: they are the rules' to set,
	// and a file without them guards nothing.
	guard := func(d pipeline.Decider) pipeline.Decider {
		return sampling.NewGuard(d, sampling.GuardOptions{Logger: log, Metrics: metrics})
	}
	samplerMode := cfg.Sampler
	if samplerMode == "" {
		samplerMode = "none"
		if cfg.Embedded {
			samplerMode = "builtin"
		}
	}
	// Only types whose sampling block offers transaction_history are kept,
	// within the history's default bounds (20 events per entity, 100,000
	// in all).
	history := sampling.NewHistory(sampling.HistoryOptions{})
	if cfg.LLM == "direct" {
		prov, err := newProvider(cfg)
		if err != nil {
			return nil, err
		}
		return &llmStage{
			decider: guard(sampling.NewDirect(prov, sampling.DirectOptions{Region: cfg.Region, Logger: log, Metrics: metrics, History: history, TracerProvider: tp})),
			label:   "direct provider call: " + prov.Name(),
			history: history,
		}, nil
	}
	pool := sampling.NewPool(sampling.Options{QueueWait: cfg.QueueWait, Region: cfg.Region,
		QuarantineAfter: cfg.QuarantineAfter, QuarantineFor: cfg.QuarantineFor, Logger: log, Metrics: metrics, History: history,
		TracerProvider: tp})
	if err := reg.Register(pool.SamplersGauge()); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	// Read before anything starts: a tokens file that cannot be used
	// stops the consumer at once, not after its pipeline began.
	tokens, err := samplerTokens(cfg)
	if err != nil {
		return nil, err
	}
	st := &llmStage{decider: guard(pool), pool: pool, label: "remote MCP samplers on " + cfg.MCPListen, history: history, tokens: tokens}
	if cfg.MCPListen == "" {
		st.label = "nobody (no sampler and no MCP endpoint): the fallback"
	}
	if samplerMode == "builtin" {
		prov, err := newProvider(cfg)
		if err != nil {
			return nil, err
		}
		calls := cfg.SamplerCalls
		if calls <= 0 {
			calls = cfg.Workers
		}
		// The builtin sampler is a real go-sdk client on the SDK's
		// in-memory transport, pulling through the work tool, so embedded
		// runs exercise the same MCP round trips as remote samplers.
		st.builtin, err = client.New(client.Config{
			Servers:     []string{"in-memory"},
			Provider:    prov,
			Concurrency: calls,
			// Several items a call when they queue up: the pool's work
			// is bounded by the pipeline's workers whatever the calls
			// take, and one call's round trips then carry several
			// decisions (pull as fast as push, BenchmarkPool).
			Items:  builtinItems,
			Name:   "triage-builtin-sampler",
			Logger: log,
			// The builtin sampler's provider calls join the events' traces
			// through the requests' _meta, as a remote sampler's do.
			TracerProvider: tp,
			Transport: func(string) (mcp.Transport, error) {
				ct, stt := mcp.NewInMemoryTransports()
				if _, err := pool.Server().Connect(context.Background(), stt, nil); err != nil {
					return nil, err
				}
				return ct, nil
			},
		})
		if err != nil {
			return nil, err
		}
		st.label = "builtin MCP sampler (pull, in-memory transport): " + prov.Name()
	}
	return st, nil
}

// builtinItems is how many items a call of the builtin sampler may take.
const builtinItems = 8

// samplerTokens are the tokens samplers may authenticate with on /mcp:
// --mcp-token's, bound to no region, and --mcp-tokens-file's.
func samplerTokens(cfg config.Config) ([]sampling.Token, error) {
	var tokens []sampling.Token
	if cfg.MCPToken != "" {
		tokens = append(tokens, sampling.Token{Secret: cfg.MCPToken})
	}
	if cfg.MCPTokensFile != "" {
		more, err := sampling.LoadTokens(cfg.MCPTokensFile)
		if err != nil {
			return nil, err
		}
		tokens = append(tokens, more...)
	}
	return tokens, nil
}

func newProvider(cfg config.Config) (llm.Provider, error) {
	key := config.APIKey(cfg.Provider, cfg.APIKey, os.Getenv)
	p, err := llm.New(cfg.Provider, llm.Options{APIKey: key, BaseURL: cfg.BaseURL, Model: cfg.Model, Structured: cfg.Structured, Latency: cfg.OfflineLatency})
	if err != nil {
		return nil, fmt.Errorf("provider %s: %w", cfg.Provider, err)
	}
	return p, nil
}
