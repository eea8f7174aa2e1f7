package sampling_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/triage-dev/triage/sampling"
	"github.com/triage-dev/triage/sampling/work"
)

// BenchmarkPoolSoak asks whether sampled throughput decays within a run,
// and how near it comes to what the workers allow: the pull pool runs for
// $TRIAGE_SOAK (default 2m) with $TRIAGE_SOAK_WORKERS items in flight and
// as many pulls (default 64), over $TRIAGE_SOAK_TRANSPORT (memory, the
// default, or http: Streamable HTTP on loopback), with a sampler that
// takes $TRIAGE_SOAK_LATENCY per answer (default 0, instant) and a lease
// of $TRIAGE_SOAK_TIMEOUT (the attempt timeout; default the test policy's
// 300 ms); with $TRIAGE_SOAK_ITEMS (default 1) items a call (work.Args
// Items), in $TRIAGE_SOAK_PULLS concurrent calls (default: as many as
// carry the workers' items), and calls of up to $TRIAGE_SOAK_ROUNDS input
// rounds (work.Args Rounds; default 0, none added). Every 10 s it prints decisions/s, their ratio to workers ÷
// latency (Little's law: the most the workers can answer with that
// latency), the decisions that failed (not in the rates; their errors are
// printed at the end), the CPU the process used (cores, and per decision:
// the pool and the sampler are both in it), the live heap (after a forced
// collection: what the run keeps, not its garbage) and the goroutines. It
// reports the first, last and slowest window's rate, the last over the
// first, the slowest and the mean over workers ÷ latency, the failed
// decisions, the CPU per decision and the live heap's growth. Run it with
// -benchtime 1x (scripts/bench soak).
func BenchmarkPoolSoak(b *testing.B) {
	const window = 10 * time.Second
	dur := soakEnv(b, "TRIAGE_SOAK", 2*time.Minute, time.ParseDuration)
	latency := soakEnv(b, "TRIAGE_SOAK_LATENCY", 0, time.ParseDuration)
	inFlight := soakEnv(b, "TRIAGE_SOAK_WORKERS", 64, strconv.Atoi)
	items := soakEnv(b, "TRIAGE_SOAK_ITEMS", 1, strconv.Atoi)
	rounds := soakEnv(b, "TRIAGE_SOAK_ROUNDS", 0, strconv.Atoi)
	pulls := soakEnv(b, "TRIAGE_SOAK_PULLS", 0, strconv.Atoi)
	transport := soakEnv(b, "TRIAGE_SOAK_TRANSPORT", "memory", func(s string) (string, error) {
		if s != "memory" && s != "http" {
			return "", fmt.Errorf("%q is neither memory nor http", s)
		}
		return s, nil
	})
	typ := paymentType(b)
	if timeout := os.Getenv("TRIAGE_SOAK_TIMEOUT"); timeout != "" {
		typ = paymentTypeTimeout(b, timeout)
	}
	pool := sampling.NewPool(sampling.Options{PushInFlight: inFlight, PushGrace: time.Millisecond, Logger: testLogger()})
	defer pool.Close()
	answer := slowAnswer(outcomeAnswer("allow"), latency)
	c := connect(b, pool, transport == "http", "", answer)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	items = min(max(items, 1), work.MaxItems)
	if pulls <= 0 {
		pulls = (inFlight + items - 1) / items
	}
	c.pullArgs(ctx, b, pulls, map[string]any{"wait_ms": work.DefaultWaitMS, "items": items, "rounds": rounds})

	var done, failed atomic.Int64
	var errMu sync.Mutex
	errs := map[string]int{} // failed decisions by error
	end := time.Now().Add(dur)
	var wg sync.WaitGroup
	for w := range inFlight {
		wg.Go(func() {
			for i := w; time.Now().Before(end); i += inFlight {
				if _, err := pool.Decide(ctx, item(b, typ, i)); err != nil {
					failed.Add(1)
					errMu.Lock()
					errs[err.Error()]++
					errMu.Unlock()
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
	fmt.Printf("| t s | decisions/s | ÷ workers/latency | failed | CPU cores | CPU µs/decision | live heap MB | goroutines |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	var rates, heaps []float64
	prev, prevFailed := int64(0), int64(0)
	cpu0 := processCPU(b)
	prevCPU := cpu0
	for t := window; t <= dur; t += window {
		time.Sleep(time.Until(end.Add(-dur + t)))
		n, f, cpu := done.Load(), failed.Load(), processCPU(b)
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		rate := float64(n-prev) / window.Seconds()
		rates, heaps = append(rates, rate), append(heaps, float64(ms.HeapAlloc)/(1<<20))
		used := cpu - prevCPU
		fmt.Printf("| %.0f | %.0f | %s | %d | %.2f | %.0f | %.1f | %d |\n", t.Seconds(), rate, ofIdeal(rate), f-prevFailed,
			used.Seconds()/window.Seconds(), float64(used.Microseconds())/max(float64(n-prev), 1), heaps[len(heaps)-1], runtime.NumGoroutine())
		prev, prevFailed, prevCPU = n, f, cpu
	}
	wg.Wait()
	// A failed decision is not a sampled one: the rates leave it out, and
	// the run reports how many failed, and why, rather than none of it.
	for err, n := range errs {
		fmt.Printf("failed: %d × %s\n", n, err)
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
	b.ReportMetric(float64(failed.Load()), "failed")
	b.ReportMetric(float64((prevCPU-cpu0).Microseconds())/max(float64(prev), 1), "cpu_us/decision")
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

// processCPU is the CPU time (user and system) this process has used so
// far: the pool's side and the sampler's, which are both in it.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
