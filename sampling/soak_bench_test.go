package sampling_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/triage-dev/triage/sampling"
)

// BenchmarkPoolSoak asks whether sampled throughput decays within a run:
// the pull pool runs for $TRIAGE_SOAK (default 2m) with
// $TRIAGE_SOAK_WORKERS items in flight and as many pulls (default 64),
// over $TRIAGE_SOAK_TRANSPORT (memory, the default, or http: Streamable
// HTTP on loopback), with a sampler that takes $TRIAGE_SOAK_LATENCY per
// answer (default 0, instant). Every 10 s it prints decisions/s, their
// ratio to workers ÷ latency (Little's law: what the workers can answer
// at most, with a latency), the live heap (after a forced collection:
// what the run keeps, not its garbage) and the goroutines; it reports the
// first, last and slowest window's rate, the last over the first, the
// slowest and the mean over workers ÷ latency, and the live heap's growth.
// Run it with -benchtime 1x (scripts/bench soak).
func BenchmarkPoolSoak(b *testing.B) {
	const window = 10 * time.Second
	dur := soakEnv(b, "TRIAGE_SOAK", 2*time.Minute, time.ParseDuration)
	latency := soakEnv(b, "TRIAGE_SOAK_LATENCY", 0, time.ParseDuration)
	inFlight := soakEnv(b, "TRIAGE_SOAK_WORKERS", 64, strconv.Atoi)
	transport := soakEnv(b, "TRIAGE_SOAK_TRANSPORT", "memory", func(s string) (string, error) {
		if s != "memory" && s != "http" {
			return "", fmt.Errorf("%q is neither memory nor http", s)
		}
		return s, nil
	})
	typ := paymentType(b)
	pool := sampling.NewPool(sampling.Options{PushInFlight: inFlight, PushGrace: time.Millisecond, Logger: testLogger()})
	defer pool.Close()
	answer := slowAnswer(outcomeAnswer("allow"), latency)
	var c *client
	if transport == "http" {
		c = connectHTTP(b, pool, "", "", answer)
	} else {
		c = connectMemory(b, pool, "", answer)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.pull(ctx, b, inFlight)

	var done, failed atomic.Int64
	end := time.Now().Add(dur)
	var wg sync.WaitGroup
	for w := range inFlight {
		wg.Go(func() {
			for i := w; time.Now().Before(end); i += inFlight {
				if _, err := pool.Decide(ctx, item(b, typ, i)); err != nil {
					failed.Add(1)
					continue
				}
				done.Add(1)
			}
		})
	}
	// ideal is workers ÷ latency: 0 (no bound) with an instant sampler.
	ideal := 0.0
	if latency > 0 {
		ideal = float64(inFlight) / latency.Seconds()
	}
	ofIdeal := func(rate float64) string {
		if ideal == 0 {
			return "-"
		}
		return fmt.Sprintf("%.3f", rate/ideal)
	}
	fmt.Printf("| t s | decisions/s | ÷ workers/latency | live heap MB | goroutines |\n|---:|---:|---:|---:|---:|\n")
	var rates, heaps []float64
	prev := int64(0)
	for t := window; t <= dur; t += window {
		time.Sleep(time.Until(end.Add(-dur + t)))
		n := done.Load()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		rate := float64(n-prev) / window.Seconds()
		rates, heaps = append(rates, rate), append(heaps, float64(ms.HeapAlloc)/(1<<20))
		fmt.Printf("| %.0f | %.0f | %s | %.1f | %d |\n", t.Seconds(), rate, ofIdeal(rate), heaps[len(heaps)-1], runtime.NumGoroutine())
		prev = n
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d decisions failed", n)
	}
	if len(rates) < 2 {
		b.Fatalf("a soak of %s has fewer than two %s windows", dur, window)
	}
	slowest, mean := rates[0], 0.0
	for _, r := range rates {
		slowest, mean = min(slowest, r), mean+r/float64(len(rates))
	}
	b.ReportMetric(rates[0], "first_decisions/s")
	b.ReportMetric(rates[len(rates)-1], "last_decisions/s")
	b.ReportMetric(slowest, "min_decisions/s")
	b.ReportMetric(rates[len(rates)-1]/rates[0], "last/first")
	if ideal > 0 {
		b.ReportMetric(ideal, "ideal_decisions/s")
		b.ReportMetric(slowest/ideal, "min/ideal")
		b.ReportMetric(mean/ideal, "mean/ideal")
	}
	b.ReportMetric(heaps[0], "first_live_heap_MB")
	b.ReportMetric(heaps[len(heaps)-1], "last_live_heap_MB")
	b.ReportMetric(0, "ns/op")
}

// soakEnv is the environment variable name parsed, or def when it is unset.
func soakEnv[T any](b *testing.B, name string, def T, parse func(string) (T, error)) T {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	x, err := parse(v)
	if err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	return x
}
