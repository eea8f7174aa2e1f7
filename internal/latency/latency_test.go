package latency_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/triage-dev/triage/internal/latency"
)

// within says whether got is what the histogram's precision allows for want.
func within(got, want time.Duration) bool {
	tol := want/1000 + latency.Resolution
	return got >= want-tol && got <= want+tol
}

func TestQuantilesAreWithinPrecision(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h latency.Histogram
	var all []time.Duration
	for range 20000 {
		// Log-uniform from 10 µs to 100 s, the span a decision latency has.
		d := time.Duration(float64(10*time.Microsecond) * math.Pow(10, 7*r.Float64()))
		h.Record(d)
		all = append(all, d)
	}
	slices.Sort(all)
	for _, q := range []float64{0, 0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		i := min(max(int(q*float64(len(all))+0.5)-1, 0), len(all)-1)
		if got := h.Quantile(q); !within(got, all[i]) {
			t.Errorf("Quantile(%v) = %v, want %v within 0.1 %%", q, got, all[i])
		}
	}
	if h.Count() != int64(len(all)) || h.Max() != all[len(all)-1] || h.Clamped() != 0 {
		t.Errorf("count %d, max %v, clamped %d; want %d, %v, 0", h.Count(), h.Max(), h.Clamped(), len(all), all[len(all)-1])
	}
}

func TestEmptyAndNilReadAsEmpty(t *testing.T) {
	var zero latency.Histogram
	var none *latency.Histogram
	for name, h := range map[string]*latency.Histogram{"zero": &zero, "nil": none} {
		if h.Quantile(0.5) != 0 || h.Count() != 0 || h.Max() != 0 || h.Clamped() != 0 {
			t.Errorf("%s histogram is not empty", name)
		}
	}
	zero.Merge(nil)
	zero.Merge(&latency.Histogram{})
	if zero.Count() != 0 {
		t.Errorf("merging empty histograms recorded %d", zero.Count())
	}
}

func TestOutOfRangeIsClampedAndCounted(t *testing.T) {
	var h latency.Histogram
	h.Record(-time.Second) // clock skew between producer and consumer
	h.Record(2 * latency.Highest)
	h.Record(5 * time.Millisecond)
	h.Record(0)
	if h.Count() != 4 || h.Clamped() != 2 {
		t.Fatalf("count %d, clamped %d; want 4, 2", h.Count(), h.Clamped())
	}
	if h.Quantile(0) != 0 || h.Max() != latency.Highest || !within(h.Quantile(1), latency.Highest) {
		t.Errorf("min %v, max %v, q1 %v; want 0, %v, %[2]v", h.Quantile(0), h.Max(), h.Quantile(1), latency.Highest)
	}
}

func TestMerge(t *testing.T) {
	var a, b latency.Histogram
	for i := 1; i <= 100; i++ {
		a.Record(time.Duration(i) * time.Millisecond)
		b.Record(time.Duration(100+i) * time.Millisecond)
	}
	b.Record(-1)
	a.Merge(&b)
	if a.Count() != 201 || a.Clamped() != 1 || a.Max() != 200*time.Millisecond {
		t.Fatalf("merged count %d, clamped %d, max %v; want 201, 1, 200ms", a.Count(), a.Clamped(), a.Max())
	}
	if got := a.Quantile(0.5); !within(got, 100*time.Millisecond) {
		t.Errorf("merged median %v, want 100ms", got)
	}
	if b.Count() != 101 {
		t.Errorf("Merge changed its source: count %d", b.Count())
	}
	a.Merge(&a)
	if a.Count() != 402 {
		t.Errorf("self-merge count %d, want 402", a.Count())
	}
}

// TestConcurrentUse records, reads and merges from several goroutines; run
// with -race.
func TestConcurrentUse(t *testing.T) {
	var h, other latency.Histogram
	other.Record(time.Millisecond)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				h.Record(time.Duration(g*1000+i) * time.Microsecond)
				if i%100 == 0 {
					_ = h.Quantile(0.99)
					other.Merge(&h)
					h.Merge(&other)
				}
			}
		})
	}
	wg.Wait()
	if h.Count() < 8000 {
		t.Fatalf("count %d, want at least 8000", h.Count())
	}
}

func ExampleHistogram() {
	var h latency.Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	fmt.Println(h.Count(), h.Quantile(0.5), h.Quantile(0.99), h.Max())
	// Output: 1000 500.223ms 990.207ms 1s
}
