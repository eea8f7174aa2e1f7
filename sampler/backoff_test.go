package sampler

import (
	"context"
	"testing"
	"time"
)

func TestBackoffGrowsWithJitterWithinBounds(t *testing.T) {
	cases := []struct {
		name     string
		min, max time.Duration
	}{
		{"defaults", DefaultBackoffMin, DefaultBackoffMax},
		{"equal", time.Second, time.Second},
		{"tiny", time.Nanosecond, 3 * time.Nanosecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := backoff{min: c.min, max: c.max}
			for n := range 100 { // far past the cap, and past 2^62
				ceil := c.min
				for range n {
					ceil = min(2*ceil, c.max)
				}
				d := b.next()
				if d < c.min || d > ceil || d < ceil/2 {
					t.Fatalf("wait %d = %v, want within [max(%v, %v), %v]", n, d, c.min, ceil/2, ceil)
				}
			}
			b.reset()
			if d := b.next(); d > c.min {
				t.Fatalf("after reset %v, want %v", d, c.min)
			}
		})
	}
}

func TestBackoffWaitEndsWithContext(t *testing.T) {
	b := backoff{min: time.Hour, max: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if b.wait(ctx) {
		t.Fatal("wait ran to the end despite a cancelled context")
	}
}
