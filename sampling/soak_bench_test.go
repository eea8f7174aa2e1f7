package sampling_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/triage-dev/triage/sampling"
)

// BenchmarkPoolSoak asks whether sampled throughput decays within a run:
// the pull pool (in-memory, an instant sampler, 64 items in flight) runs
// for $TRIAGE_SOAK (default 2m), and every 10 s it prints decisions/s,
// the live heap (after a forced collection: what the run keeps, not its
// garbage) and the goroutines; it reports the last window's rate over the
// first's, and the live heap's growth. Run it with -benchtime 1x (scripts/bench soak).
func BenchmarkPoolSoak(b *testing.B) {
	const inFlight = 64
	const window = 10 * time.Second
	dur := 2 * time.Minute
	if v := os.Getenv("TRIAGE_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("TRIAGE_SOAK: %v", err)
		}
		dur = d
	}
	typ := paymentType(b)
	pool := sampling.NewPool(sampling.Options{PushInFlight: inFlight, PushGrace: time.Millisecond, Logger: testLogger()})
	defer pool.Close()
	c := connectMemory(b, pool, "", outcomeAnswer("allow"))
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
	fmt.Printf("| t s | decisions/s | live heap MB | goroutines |\n|---:|---:|---:|---:|\n")
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
		fmt.Printf("| %.0f | %.0f | %.1f | %d |\n", t.Seconds(), rate, heaps[len(heaps)-1], runtime.NumGoroutine())
		prev = n
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d decisions failed", n)
	}
	if len(rates) < 2 {
		b.Fatalf("a soak of %s has fewer than two %s windows", dur, window)
	}
	b.ReportMetric(rates[0], "first_decisions/s")
	b.ReportMetric(rates[len(rates)-1], "last_decisions/s")
	b.ReportMetric(rates[len(rates)-1]/rates[0], "last/first")
	b.ReportMetric(heaps[0], "first_live_heap_MB")
	b.ReportMetric(heaps[len(heaps)-1], "last_live_heap_MB")
	b.ReportMetric(0, "ns/op")
}
