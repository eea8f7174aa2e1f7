package sampling_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/internal/testrun"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/sampling"
	"github.com/triage-dev/triage/sampling/work"
)

// TestCloseWhileSessionsInitialize: legacy hosts that declare sampling keep
// connecting while the pool closes. No push worker may start once Close
// has begun; run with -race, which flags a push worker started
// concurrently with Close's wait for the workers.
func TestCloseWhileSessionsInitialize(t *testing.T) {
	for range 20 {
		pool := sampling.NewPool(sampling.Options{PushGrace: time.Hour, Logger: testLogger()})
		first := make(chan struct{})
		closed := make(chan struct{})
		go func() {
			<-first
			_ = pool.Close()
			close(closed)
		}()
		for i := range 10 {
			connectMemory(t, pool, legacy, outcomeAnswer("allow"))
			if i == 0 {
				close(first)
			}
		}
		<-closed
	}
}

// TestSessionsForgottenWhenTheyEnd: the pool remembers which sessions pull
// (so that it does not push to them), and keeps their breakers, only while
// they live.
func TestSessionsForgottenWhenTheyEnd(t *testing.T) {
	pool := newPool(t, sampling.Options{})
	ctx := context.Background()
	typ := paymentType(t)
	for i := range 20 {
		c := connectHTTP(t, pool, "", legacy, outcomeAnswer("allow"))
		decided := make(chan error, 1)
		go func() {
			_, err := pool.Decide(ctx, item(t, typ, i))
			decided <- err
		}()
		if _, err := c.cs.CallTool(ctx, &mcp.CallToolParams{Name: work.ToolName, Arguments: map[string]any{"wait_ms": 5000}}); err != nil {
			t.Fatal(err)
		}
		if err := <-decided; err != nil {
			t.Fatal(err)
		}
		if sampling.Sessions(pool) == 0 || sampling.Breakers(pool) == 0 {
			t.Fatal("the pool does not know the session that pulls")
		}
		if err := c.cs.Close(); err != nil {
			t.Fatal(err)
		}
	}
	testrun.Until(t, "the ended sessions to be forgotten", 10*time.Second, 5*time.Millisecond,
		func() bool { return sampling.Sessions(pool) == 0 && sampling.Breakers(pool) == 0 })
}

// TestHungPushEndsByLease: a pushed request that is never answered ends
// when its lease expires, every time: the lease owns the deadline, so the
// audit records and the fallback reason do not depend on which of two
// timers fired first.
func TestHungPushEndsByLease(t *testing.T) {
	const n = 32
	pool := newPool(t, sampling.Options{PushGrace: 10 * time.Millisecond, PushInFlight: n})
	connectMemory(t, pool, legacy, func(ctx context.Context, _ *mcp.CreateMessageParams) (*mcp.CreateMessageResult, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	seen := map[string]int{}
	for range 3 {
		vs, errs := decideAll(t, pool, paymentType(t), n)
		for i, v := range vs {
			outcome := pipeline.FallbackReason(errs[i])
			for _, a := range v.Attempts {
				outcome += fmt.Sprintf(" | %s %s %q", a.Mode, a.Status, a.Reason)
			}
			seen[outcome]++
		}
	}
	want := fmt.Sprintf("lease_expired | push %s %q | push %s %q", audit.StatusTimeout, "lease expired", audit.StatusTimeout, "lease expired")
	if len(seen) != 1 || seen[want] != 3*n {
		t.Fatalf("outcomes (reason | attempts) and their counts: %v\nwant every one %q", seen, want)
	}
}
