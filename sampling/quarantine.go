package sampling

import (
	"errors"
	"time"

	"github.com/sony/gobreaker/v2"
)

// A sampler session that fails lease after lease is quarantined by a
// circuit breaker of its own (gobreaker's two-step breaker): a lease asks it
// when it is handed out and tells it how it ended. The breaker opens when
//   - QuarantineAfter leases in a row failed,
//   - failures are at least half of the leases that ended in the last
//     breakerWindow, and
//   - another sampler, not quarantined, stands by to take the work
//     (othersStandByLocked);
// take then gives the session nothing for QuarantineFor, as if the queue
// were empty, so the healthy samplers take the work. Then the breaker is
// half-open and lets one lease through, whose usable answer closes it and
// whose failure opens it again.
//
// Failures in a row alone quarantine a sampler that is mostly healthy: its
// slots fill with the rare requests that hang while the others are answered
// in a moment, and those hangs expire together, one after the other. An
// 8-slot sampler whose model hangs on one request in five was quarantined
// that way in 4 of 6 runs of TestHangingSamplerCannotStallThePool, where it
// is alone, and in 6 of 6 of TestHangingSamplerBesideAHealthyOne; its
// failures are a fifth of its leases, never half. And quarantine only helps
// when someone else takes the work: a lone sampler that is quarantined
// sends every item to the no_sampler fallback after QueueWait, holding a
// pipeline worker that long for each, where without it the items would be
// re-queued and most of them sampled.
//
// Every breaker is used under Pool.mu, and so are its ReadyToTrip and
// OnStateChange callbacks.

const (
	// breakerIdle is how long a breaker whose session has not asked for a
	// lease is kept: live samplers ask at least every work.MaxWaitMS while
	// there is work. Stateless (2026-07-28) sessions never say they have
	// gone, so their breakers are forgotten this way; legacy sessions'
	// breakers go when the session ends.
	breakerIdle = sessionIdle
	// breakerSweep is how often take looks for idle breakers.
	breakerSweep = time.Minute
	// maxBreakers bounds the breakers kept; beyond it the least recently
	// used one is forgotten, quarantine and all.
	maxBreakers = 4096
	// breakerWindow is how far back a breaker weighs failures against
	// usable answers, in breakerBucket steps: long enough to hold many
	// leases, short enough that a sampler that was healthy for an hour
	// is quarantined soon after it goes bad.
	breakerWindow = 10 * time.Second
	breakerBucket = time.Second
)

// leaseEnd is how a lease ended, as its session's breaker counts it.
type leaseEnd int

const (
	// leaseAnswered: the sampler's answer decided the item.
	leaseAnswered leaseEnd = iota
	// leaseFailed: an error result, no result, an expired lease (a hang),
	// or an answer still invalid after the corrective round. The last is
	// the sampler's too: a model that answers garbage sends each item it
	// takes to the invalid_answer fallback, with no re-queue, so its items
	// are better left to others.
	leaseFailed
	// leaseDropped: the pool or the pipeline ended the lease (the caller
	// went, Decide's context ended, the pool closed); it does not count.
	leaseDropped
)

var (
	errLeaseFailed  = errors.New("sampling: lease failed")
	errLeaseDropped = errors.New("sampling: lease dropped")
)

// breaker is one sampler session's circuit breaker.
type breaker struct {
	session   string
	cb        *gobreaker.TwoStepCircuitBreaker[struct{}]
	state     gobreaker.State // as OnStateChange last said, for the gauge
	openUntil time.Time       // when the current quarantine ends
	used      time.Time       // when the session last asked for a lease
}

// allowLocked asks session's breaker whether the session may take a lease
// now. If ok, done must be called once, when the lease ends. If not, wait
// is how long the quarantine lasts, or 0 while a half-open breaker's one
// lease is out (its end wakes take through Pool.notify).
func (p *Pool) allowLocked(session string) (done func(leaseEnd), wait time.Duration, ok bool) {
	// A session without a name (a 2026-07-28 sampler that does not name
	// itself) cannot be told from others of its kind: no breaker.
	if p.opts.QuarantineAfter <= 0 || session == "" {
		return func(leaseEnd) {}, 0, true
	}
	b := p.breakerLocked(session)
	d, err := b.cb.Allow()
	switch {
	case err == nil:
	case !p.othersStandByLocked(session):
		// The others went since the quarantine began: the session's
		// leases are not counted, but it is the only one left to take
		// the work. Its waiting takes find this out when its quarantine
		// ends, or when an item is queued.
		return func(leaseEnd) {}, 0, true
	case errors.Is(err, gobreaker.ErrOpenState):
		return nil, max(time.Until(b.openUntil), time.Millisecond), false
	default: // gobreaker.ErrTooManyRequests: half-open, its lease is out
		return nil, 0, false
	}
	return func(e leaseEnd) {
		switch e {
		case leaseAnswered:
			d(nil)
		case leaseFailed:
			d(errLeaseFailed)
		default:
			d(errLeaseDropped)
		}
		if b.state != gobreaker.StateClosed {
			// A dropped probe leaves the breaker half-open without a
			// change of state: wake the session's other takes.
			p.wakeLocked()
		}
	}, 0, true
}

// breakerLocked returns session's breaker, creating it on first use.
func (p *Pool) breakerLocked(session string) *breaker {
	now := time.Now()
	if now.Sub(p.swept) >= breakerSweep {
		p.swept = now
		for name, b := range p.breakers {
			if now.Sub(b.used) >= breakerIdle && now.After(b.openUntil) {
				p.forgetBreakerLocked(name)
			}
		}
	}
	if b := p.breakers[session]; b != nil {
		b.used = now
		return b
	}
	if len(p.breakers) >= maxBreakers {
		var oldest *breaker
		for _, b := range p.breakers {
			if oldest == nil || b.used.Before(oldest.used) {
				oldest = b
			}
		}
		p.forgetBreakerLocked(oldest.session)
	}
	b := &breaker{session: session, used: now}
	after := uint32(p.opts.QuarantineAfter)
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         session,
		MaxRequests:  1, // half-open: one lease
		Timeout:      p.opts.QuarantineFor,
		Interval:     breakerWindow,
		BucketPeriod: breakerBucket,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= after && c.TotalFailures >= c.TotalSuccesses && p.othersStandByLocked(session)
		},
		IsExcluded: func(err error) bool { return errors.Is(err, errLeaseDropped) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			p.breakerChangedLocked(b, from, to)
		},
	})
	p.breakers[session] = b
	return b
}

// breakerChangedLocked is every breaker's OnStateChange. It runs inside
// the breaker's own lock, so it must not call the breaker.
func (p *Pool) breakerChangedLocked(b *breaker, from, to gobreaker.State) {
	b.state = to
	if to == gobreaker.StateOpen {
		b.openUntil = time.Now().Add(p.opts.QuarantineFor)
	}
	if p.breakers[b.session] != b { // forgotten while a lease was out
		return
	}
	p.opts.Metrics.breakerChanged(from, to)
	switch to {
	case gobreaker.StateOpen:
		p.log.Warn("sampling: sampler session quarantined: its leases keep failing", "session", b.session,
			"from", from.String(), "for", p.opts.QuarantineFor)
	case gobreaker.StateHalfOpen:
		p.log.Info("sampling: quarantined sampler session may take one lease", "session", b.session)
	default:
		p.log.Info("sampling: sampler session out of quarantine", "session", b.session)
	}
	// Takes held back by the breaker look again.
	p.wakeLocked()
}

// forgetBreakerLocked drops session's breaker; a lease still out on it
// ends on the orphan, which no longer counts.
func (p *Pool) forgetBreakerLocked(session string) {
	b := p.breakers[session]
	if b == nil {
		return
	}
	delete(p.breakers, session)
	if b.state != gobreaker.StateClosed {
		p.opts.Metrics.quarantineForgotten()
	}
}

// activeLocked counts session's takes in progress and leases out, so that a
// session's breaker can tell whether another sampler is there to take the
// work. An entry lives while its count is above zero.
func (p *Pool) activeLocked(session string, delta int) {
	n := p.active[session] + delta
	if n <= 0 {
		delete(p.active, session)
		return
	}
	p.active[session] = n
}

// othersStandByLocked reports whether a session other than session, and
// not quarantined itself, is waiting for work or holds a lease.
func (p *Pool) othersStandByLocked(session string) bool {
	for other := range p.active {
		if other == session {
			continue
		}
		if b := p.breakers[other]; b == nil || b.state == gobreaker.StateClosed {
			return true
		}
	}
	return false
}
