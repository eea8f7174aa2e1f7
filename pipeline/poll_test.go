package pipeline

import (
	"testing"
	"time"
)

// TestWakeOnSpaceAfterAnEndedPoll: a worker that frees a queue slot after a
// poll has ended, and so after that poll's retryStalled looked at the queue,
// must wake the next poll. The wake goroutine of the ended poll must not
// take the signal meant for the next one: with a queue of one and no other
// records arriving, a lost signal leaves the stalled partition paused for
// good.
func TestWakeOnSpaceAfterAnEndedPoll(t *testing.T) {
	const bound = 10 * time.Second // a hang guard; a wake takes microseconds
	p := &Pipeline{
		space:   make(chan struct{}, 1),
		stalled: stalledParts{parts: map[TopicPartition]*stall{{"events", 0}: {}}},
	}
	for i := range 1000 {
		_, stop := p.wakeOnSpace(t.Context())
		stop()                // the poll returned with records, not for space
		p.space <- struct{}{} // a worker frees a slot; retryStalled has run
		next, stopNext := p.wakeOnSpace(t.Context())
		select {
		case <-next.Done():
		case <-time.After(bound):
			t.Fatalf("iteration %d: the next poll was not woken within %s after a worker freed a slot", i, bound)
		}
		stopNext()
	}
}
