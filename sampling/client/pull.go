package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/sampling/work"
)

// pull calls triage_next on cs until ctx ends or the session is lost. A
// failed call that leaves the session usable backs this loop off; a lost
// session is returned, which ends the session's other loops and makes the
// supervisor reconnect. ok is set once a call succeeds.
//
// The server's long poll paces idle calls; an "idle" that comes back
// faster than BackoffMin (a server ignoring wait_ms, or a tiny WaitMS) is
// backed off too, so that an idle server is not called in a busy loop.
//
// A run of failures logs its first failure as a warning and the rest at
// debug level, then how many there were when a call succeeds again: a
// server that is down for a while does not flood the log.
func (s *Sampler) pull(ctx context.Context, server string, cs *mcp.ClientSession, ok *atomic.Bool) error {
	bo := s.backoff()
	failures := 0
	for ctx.Err() == nil {
		began := time.Now()
		status, err := s.next(ctx, server, cs)
		if err == nil {
			ok.Store(true)
			if failures > 0 {
				s.log.Info("sampler: calls succeed again", "server", server, "failed_calls", failures)
				failures = 0
			}
			if status != work.StatusIdle || time.Since(began) >= s.cfg.BackoffMin {
				bo.Reset()
				continue
			}
		} else {
			switch {
			case ctx.Err() != nil:
				return nil
			case sessionLost(err):
				return err
			}
			s.stats.add(func(st *Stats) { st.Errors++ })
			level := slog.LevelDebug
			if failures == 0 {
				level = slog.LevelWarn
			}
			failures++
			s.log.Log(ctx, level, "sampler: call failed", "server", server, "failed_calls", failures, "err", err)
		}
		if !pause(ctx, bo.NextBackOff()) {
			return nil
		}
	}
	return nil
}

// next makes one triage_next call, counts its result and returns its status.
func (s *Sampler) next(ctx context.Context, server string, cs *mcp.ClientSession) (work.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: work.ToolName, Arguments: s.args})
	if err != nil {
		s.stats.add(func(st *Stats) { st.Calls++ })
		return "", fmt.Errorf("sampler: %s on %s: %w", work.ToolName, server, err)
	}
	r, err := resultOf(res)
	items := r.Items
	if len(items) == 0 {
		items = []work.ItemResult{r.Item()}
	}
	s.stats.add(func(st *Stats) {
		st.Calls++
		for _, it := range items {
			switch it.Status {
			case work.StatusIdle:
				st.Idle++
			case work.StatusDecided:
				st.Decided++
			case work.StatusFallback:
				st.Fallback++
			case work.StatusExpired:
				st.Expired++
			}
		}
	})
	if err != nil {
		return "", fmt.Errorf("sampler: %s on %s: %w", work.ToolName, server, err)
	}
	if r.Status != work.StatusIdle {
		s.log.Debug("sampler: item done", "server", server, "status", r.Status, "event_id", r.EventID, "outcome", r.Outcome)
	}
	return r.Status, nil
}

// resultOf reads a final triage_next result: its structured content, or
// the JSON text content servers also send for older clients.
func resultOf(res *mcp.CallToolResult) (work.Result, error) {
	var r work.Result
	if res.IsError {
		return r, fmt.Errorf("tool error: %s", textOf(res))
	}
	var raw []byte
	if res.StructuredContent != nil {
		var err error
		if raw, err = json.Marshal(res.StructuredContent); err != nil {
			return r, fmt.Errorf("structured content: %w", err)
		}
	} else {
		raw = []byte(textOf(res))
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, fmt.Errorf("result is not a work result: %w", err)
	}
	switch r.Status {
	case work.StatusIdle, work.StatusDecided, work.StatusFallback, work.StatusExpired:
		return r, nil
	case "":
		return r, errors.New("result has no status")
	}
	return r, fmt.Errorf("result has unknown status %q", r.Status)
}

func textOf(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

// sessionLost reports errors after which the session cannot carry another
// call. Other failures (JSON-RPC errors, tool errors, a refused connection
// on a stateless server, a provider failure) leave it usable.
func sessionLost(err error) bool {
	return errors.Is(err, mcp.ErrConnectionClosed) || errors.Is(err, mcp.ErrSessionMissing)
}
