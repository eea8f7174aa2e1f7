package sampling

import (
	"fmt"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sony/gobreaker/v2"
)

// TestQuarantineTrips: which runs of lease outcomes quarantine a session,
// told to its breaker one after the other (A answered, F failed, D dropped).
func TestQuarantineTrips(t *testing.T) {
	for _, c := range []struct {
		name     string
		outcomes string
		alone    bool // no other session stands by
		want     gobreaker.State
	}{
		{"fails every lease", "FFF", false, gobreaker.StateOpen},
		{"two in a row are not enough", "FF", false, gobreaker.StateClosed},
		{"an answer breaks the run", "FFAFF", false, gobreaker.StateClosed},
		{"mostly failing", "AFFF", false, gobreaker.StateOpen},
		{"dropped leases do not count", "FFDDF", false, gobreaker.StateOpen},
		// An 8-slot sampler whose model hangs on a request in five: its
		// slots fill with hangs, which expire one after the other.
		{"runs of hangs among answers", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAFFFFFFFF", false, gobreaker.StateClosed},
		{"alone", "FFFFFFFFFF", true, gobreaker.StateClosed},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := NewPool(Options{QuarantineAfter: 3, QuarantineFor: time.Hour, Logger: slog.New(slog.DiscardHandler)})
			defer p.Close()
			p.mu.Lock()
			defer p.mu.Unlock()
			if !c.alone {
				p.activeLocked("other", 1)
			}
			for i, o := range c.outcomes {
				done, _, ok := p.allowLocked("s")
				if !ok {
					t.Fatalf("outcome %d: quarantined before it", i)
				}
				done(map[rune]leaseEnd{'A': leaseAnswered, 'F': leaseFailed, 'D': leaseDropped}[o])
			}
			if got := p.breakers["s"].state; got != c.want {
				t.Fatalf("breaker %s, want %s", got, c.want)
			}
		})
	}
}

// TestQuarantineHoldsBack: a quarantined session is told to wait out its
// quarantine, then gets one lease (half-open), whose usable answer ends
// the quarantine; and it gets work, uncounted, while no other session
// stands by. In a synctest bubble, so that waiting out a quarantine takes
// no time.
func TestQuarantineHoldsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const open = 5 * time.Second
		p := NewPool(Options{QuarantineAfter: 1, QuarantineFor: open, Logger: slog.New(slog.DiscardHandler)})
		defer p.Close()
		lock := func(f func()) {
			p.mu.Lock()
			defer p.mu.Unlock()
			f()
		}
		var (
			done func(leaseEnd)
			wait time.Duration
			ok   bool
		)
		lock(func() {
			p.activeLocked("other", 1)
			done, _, _ = p.allowLocked("s")
			done(leaseFailed)
			if _, wait, ok = p.allowLocked("s"); ok || wait != open {
				t.Fatalf("quarantined: ok %v, wait %v; want to wait %v", ok, wait, open)
			}
		})
		// As take does: wait, and ask again. gobreaker ends a quarantine
		// only after its time, so the first ask at its end waits 1 ms more.
		start := time.Now()
		for !ok {
			time.Sleep(wait)
			lock(func() { done, wait, ok = p.allowLocked("s") })
		}
		if waited := time.Since(start); waited > open+time.Millisecond {
			t.Fatalf("waited %v for a quarantine of %v", waited, open)
		}
		lock(func() {
			if p.breakers["s"].state != gobreaker.StateHalfOpen {
				t.Fatalf("after the quarantine: breaker %s; want a probe", p.breakers["s"].state)
			}
			if _, wait, ok = p.allowLocked("s"); ok || wait != 0 {
				t.Fatalf("while the probe is out: ok %v, wait %v; want to wait for it", ok, wait)
			}
			done(leaseAnswered)
			if _, _, ok = p.allowLocked("s"); !ok || p.breakers["s"].state != gobreaker.StateClosed {
				t.Fatalf("after a usable probe: ok %v, breaker %s; want it closed", ok, p.breakers["s"].state)
			}
		})
		lock(func() {
			done, _, _ = p.allowLocked("s")
			done(leaseFailed)
			p.activeLocked("other", -1)
			if _, _, ok = p.allowLocked("s"); !ok {
				t.Fatal("quarantined with no other session to take the work")
			}
		})
	})
}

// TestBreakersBounded: breakers of sessions that went quiet are forgotten,
// and there are never more than maxBreakers.
func TestBreakersBounded(t *testing.T) {
	p := NewPool(Options{Logger: slog.New(slog.DiscardHandler)})
	defer p.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range maxBreakers + 10 {
		p.breakerLocked(fmt.Sprintf("sampler-%d", i))
	}
	if n := len(p.breakers); n != maxBreakers {
		t.Fatalf("%d breakers, want %d", n, maxBreakers)
	}
	for _, b := range p.breakers {
		b.used = b.used.Add(-breakerIdle)
	}
	p.swept = p.swept.Add(-breakerSweep)
	p.breakerLocked("new")
	if n := len(p.breakers); n != 1 {
		t.Fatalf("%d breakers after the idle ones were swept, want 1", n)
	}
}
