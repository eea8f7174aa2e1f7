package sampling_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
	"github.com/triage-dev/triage/sampling"
	sampler "github.com/triage-dev/triage/sampling/client"
	"github.com/triage-dev/triage/sampling/work"
)

// TestQuarantine: beside a healthy sampler, a sampler whose every lease
// fails (its model errs at once, or hangs until the lease expires) is
// quarantined after QuarantineAfter failures: it gets no lease for
// QuarantineFor, then one probe (half-open), which fails and quarantines
// it again; the healthy sampler samples every item. Pull on both protocol
// generations, and push to a legacy host that does not pull. The run lasts
// until the pool has let the bad sampler probe twice.
func TestQuarantine(t *testing.T) {
	const (
		after    = 3
		open     = time.Second
		probes   = 2
		badSlots = 4
		// slack absorbs the audit record's clock (wall time at µs
		// precision) against the breaker's (monotonic).
		slack = 10 * time.Millisecond
	)
	offline := offlineProvider(t)
	// The healthy sampler takes 20 ms an item, so that the run lasts
	// without deciding thousands of items.
	healthy := offlineProvider(t, llm.Options{Latency: 20 * time.Millisecond})
	for _, bad := range []struct {
		name     string
		provider llm.Provider
	}{
		{"fails", failing{offline}},
		{"hangs", &hangEvery{n: 1, Provider: offline}},
	} {
		for _, mode := range []struct {
			name, version string
			push          bool
		}{
			{"pull/" + work.ProtocolMRTR, "", false},
			{"pull/" + work.ProtocolLegacy, work.ProtocolLegacy, false},
			{"push/" + work.ProtocolLegacy, work.ProtocolLegacy, true},
		} {
			t.Run(bad.name+"/"+mode.name, func(t *testing.T) {
				t.Parallel()
				typ := paymentType(t)
				pool, reg := metricPool(t, sampling.Options{
					QuarantineAfter: after, QuarantineFor: open,
					// Enough that the bad sampler cannot use up an item
					// before its quarantine, even when the healthy one
					// is too slow to take a re-queued item first.
					Requeues: 2 * after,
					// Long enough for the pullers' first call: the pool
					// pushes only to the push-only sampler.
					PushGrace: 300 * time.Millisecond, PushInFlight: badSlots,
				})
				// The healthy sampler first, and pulling (it decides an
				// item), so that it stands by when the bad one comes.
				runSampler(t, pool, sampler.Config{Name: "healthy", Provider: healthy, Concurrency: 8, ProtocolVersion: mode.version})
				if _, err := pool.Decide(context.Background(), item(t, typ, 0)); err != nil {
					t.Fatalf("the healthy sampler alone: %v", err)
				}
				runSampler(t, pool, sampler.Config{Name: "bad", Provider: bad.provider, Concurrency: badSlots,
					ProtocolVersion: mode.version, PushOnly: mode.push, AnswerAttempts: 1})

				vs, errs := decideUntil(t, pool, typ, 4, func() bool { return transitions(reg, "half-open") >= probes })
				leases := map[string]int{}            // by sampler
				failed := map[string][]audit.Record{} // the bad sampler's leases, by session
				for i, v := range vs {
					if errs[i] != nil {
						t.Errorf("item %d fell back: %v", i, errs[i])
						continue
					}
					if last := v.Attempts[len(v.Attempts)-1]; last.Status != audit.StatusOK || samplerOf(last) != "healthy" {
						t.Errorf("item %d: decided by %s (%s), want the healthy sampler", i, last.SamplerSession, last.Status)
					}
					for _, a := range v.Attempts {
						leases[samplerOf(a)]++
						if samplerOf(a) == "bad" {
							failed[a.SamplerSession] = append(failed[a.SamplerSession], a)
						}
					}
				}
				if len(failed) != 1 {
					t.Errorf("the bad sampler took work as %d sessions, want 1", len(failed))
				}
				for session, ls := range failed {
					before, after, early := quarantined(t, ls, after, open, slack)
					t.Logf("%d items; leases: %v; the bad sampler's (session %s): %d before its quarantine, %d after (%d inside a quarantine)",
						len(vs), leases, session, before, after, early)
					if early > 0 {
						t.Errorf("the bad sampler got %d leases while quarantined", early)
					}
					if after < probes {
						t.Errorf("the bad sampler got %d leases after its quarantine began, want the %d probes", after, probes)
					}
				}
			})
		}
	}
}

// samplerOf is the name a sampler gave itself, from an attempt's session.
func samplerOf(a audit.Record) string {
	name, _, _ := strings.Cut(a.SamplerSession, "/")
	return name
}

// quarantined reads the leases of a session that fails every one: the
// quarantine begins when the after-th fails; each lease that starts later
// is a probe, which fails and quarantines the session again from its end.
// It counts the leases before the first quarantine, the probes, and the
// probes that started inside a quarantine (give or take slack).
func quarantined(t *testing.T, leases []audit.Record, after int, open, slack time.Duration) (before, probes, early int) {
	t.Helper()
	if len(leases) < after {
		t.Fatalf("the session got %d leases, fewer than the %d that quarantine it", len(leases), after)
	}
	slices.SortFunc(leases, func(a, b audit.Record) int { return a.At.Compare(b.At) })
	trip := leases[after-1].At
	slices.SortFunc(leases, func(a, b audit.Record) int { return leaseStart(a).Compare(leaseStart(b)) })
	until := trip.Add(open)
	for _, a := range leases {
		start := leaseStart(a)
		switch {
		case !start.After(trip.Add(slack)):
			before++
			continue
		case start.Before(until.Add(-slack)):
			early++
			t.Logf("lease %v into a quarantine that ends %v later", start.Sub(trip), until.Sub(start))
		}
		probes++
		until = a.At.Add(open)
	}
	return before, probes, early
}

// leaseStart is when the lease an attempt record tells of began.
func leaseStart(a audit.Record) time.Time {
	return a.At.Add(-time.Duration(a.LatencyMS * float64(time.Millisecond)))
}

// decideUntil decides new items with workers deciders in a loop, as the
// pipeline's workers do, until done holds (or waitTimeout, a hang guard,
// has passed), and returns what each got.
func decideUntil(t *testing.T, dec pipeline.Decider, typ *rules.Type, workers int, done func() bool) ([]pipeline.Verdict, []error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var (
		mu   sync.Mutex
		vs   []pipeline.Verdict
		errs []error
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil && !done() {
				v, err := dec.Decide(ctx, item(t, typ, int(next.Add(1))))
				mu.Lock()
				vs, errs = append(vs, v), append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if !done() {
		t.Fatalf("waited %v in vain", waitTimeout)
	}
	return vs, errs
}
