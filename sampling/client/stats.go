package client

import (
	"context"
	"sync"
)

// Stats is a snapshot of a Sampler's counters since it was created, summed
// over all servers.
type Stats struct {
	// Calls is the number of triage_next calls that returned, with a result
	// or an error.
	Calls int64
	// Idle, Decided, Fallback and Expired count final results by their
	// "status": no work within wait_ms; the answer decided the item; the
	// server fell back (for example after an invalid answer); the lease
	// expired before the answer arrived.
	Idle, Decided, Fallback, Expired int64
	// Answered is the number of sampling requests answered, pulled or pushed.
	Answered int64
	// Errors counts failures: calls that failed or returned a tool error,
	// sampling requests that could not be answered, connection attempts
	// that failed.
	Errors int64
	// Connects is the number of sessions established.
	Connects int64
	// Reconnects is the number of connection attempts after the first one
	// per server (after a failed attempt or a lost session).
	Reconnects int64
}

// counters holds the live Stats. Every change wakes Await's waiters by
// closing and replacing changed.
type counters struct {
	mu      sync.Mutex
	s       Stats
	changed chan struct{}
}

func newCounters() *counters { return &counters{changed: make(chan struct{})} }

func (c *counters) add(f func(*Stats)) {
	c.mu.Lock()
	f(&c.s)
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *counters) snapshot() (Stats, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.s, c.changed
}

// Stats returns a snapshot of the counters.
func (s *Sampler) Stats() Stats {
	st, _ := s.stats.snapshot()
	return st
}

// Await blocks until cond holds for the counters or ctx ends, and returns
// the snapshot that satisfied cond (or ctx's error). It is for readiness
// checks ("connected at least once") and for tests, which must not sleep.
// cond is called with no lock held.
func (s *Sampler) Await(ctx context.Context, cond func(Stats) bool) (Stats, error) {
	for {
		st, changed := s.stats.snapshot()
		if cond(st) {
			return st, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return st, ctx.Err()
		}
	}
}
