package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/rules"
)

// stall is a partition whose fetching is paused because its next ambiguous
// event found the sampling queue full. head is that event, already tracked
// (so nothing after it can be committed); rest are the records polled after
// it, not yet looked at.
type stall struct {
	head work
	rest []*kgo.Record
}

// stalledParts are the paused partitions. The poll loop and the rebalance
// callbacks share them.
type stalledParts struct {
	mu    sync.Mutex
	parts map[TopicPartition]*stall
}

func (s *stalledParts) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.parts)
}

// drop forgets stalled partitions that moved to another member: their
// tracked heads are abandoned so that the revoke does not wait for events
// that will never be decided here. It returns how many were stalled.
func (s *stalledParts) drop(tps []TopicPartition) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, tp := range tps {
		if st := s.parts[tp]; st != nil {
			st.head.ticket.Abandon()
			delete(s.parts, tp)
			n++
		}
	}
	return n
}

func (s *stalledParts) abandonAll() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.parts)
	for tp, st := range s.parts {
		st.head.ticket.Abandon()
		delete(s.parts, tp)
	}
	return n
}

// poll is the consume loop. Each pass first retries the stalled partitions
// (their records are older than anything just fetched), then takes the new
// records partition by partition, and only then allows a rebalance, so that
// every record handed out is tracked before its partition can move.
func (p *Pipeline) poll(ctx context.Context) {
	readyOnce := sync.OnceFunc(func() { close(p.ready) })
	lastCheckpoint := time.Now()
	for {
		readyOnce()
		pollCtx, stopWake := p.wakeOnSpace(ctx)
		if due := p.txn.due(); !due.IsZero() {
			var cancel context.CancelFunc
			pollCtx, cancel = context.WithDeadline(pollCtx, due)
			stopWake = func(stop func()) func() { return func() { cancel(); stop() } }(stopWake)
		}
		fetches := p.client().PollRecords(pollCtx, p.cfg.MaxPollRecords)
		stopWake()
		if fetches.IsClientClosed() || ctx.Err() != nil {
			p.client().AllowRebalance()
			return
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				p.log.Warn("fetch error", "topic", topic, "partition", partition, "err", err)
			}
		})
		endFetch := p.trace.fetch(fetches)
		if err := p.load(ctx, p.unknown(fetches)); err != nil {
			p.client().AllowRebalance()
			if ctx.Err() == nil {
				p.fail(err)
			}
			return
		}
		p.retryStalled()
		var parts []kgo.FetchTopicPartition
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			p.cfg.Metrics.setLag(p.lag.fetched(fp))
			if len(fp.Records) > 0 {
				parts = append(parts, fp)
			}
		})
		p.takeAll(parts)
		endFetch()
		p.client().AllowRebalance()
		if p.txn == nil && time.Since(lastCheckpoint) >= p.cfg.CommitInterval {
			p.gate.RLock()
			p.checkpoint()
			p.gate.RUnlock()
			lastCheckpoint = time.Now()
		}
		if due := p.txn.due(); !due.IsZero() && !time.Now().Before(due) {
			err := p.commitTxn(ctx, false)
			if errors.Is(err, errSession) {
				err = p.restartSession(err)
			}
			if err != nil {
				p.fail(err)
				return
			}
		}
	}
}

// unknown returns the partitions of fetches that have records but no
// bookkeeping yet: newly assigned, or rewound by an aborted transaction.
func (p *Pipeline) unknown(fetches kgo.Fetches) []TopicPartition {
	var tps []TopicPartition
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		tp := TopicPartition{fp.Topic, fp.Partition}
		if len(fp.Records) > 0 && !p.offsets.Known(tp) {
			tps = append(tps, tp)
		}
	})
	return tps
}

// wakeOnSpace returns a poll context that also ends when a worker frees a
// queue slot, so that stalled partitions are retried without waiting for
// new records from the partitions still fetching.
//
// stop ends the wake goroutine and waits for it. The join is what keeps the
// wake-up from being lost: a goroutine that outlived its poll could take a
// signal sent after that poll's retryStalled had looked at the queue, and
// the next poll, whose goroutine never sees that signal, would wait for
// records that may never come (the stalled partition itself is paused).
// Joined, a signal the goroutine took was sent before stop returned, so
// the retryStalled that follows sees the slot; a later signal stays in
// p.space for the next poll.
func (p *Pipeline) wakeOnSpace(ctx context.Context) (pollCtx context.Context, stop func()) {
	if p.stalled.len() == 0 {
		return ctx, func() {}
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-p.space:
			cancel()
		case <-pctx.Done():
		}
	}()
	return pctx, func() {
		cancel()
		<-done
	}
}

// takeAll takes the polled partitions, each on one goroutine in offset
// order, several partitions at once: a partition's records, its offsets and
// its audit chain are in order, and nothing orders two partitions. The
// partitions are handed out one at a time, so that a large one does not
// hold back a goroutine's share of small ones.
func (p *Pipeline) takeAll(parts []kgo.FetchTopicPartition) {
	takeOne := func(fp kgo.FetchTopicPartition) {
		p.take(TopicPartition{fp.Topic, fp.Partition}, fp.Records)
	}
	workers := min(runtime.GOMAXPROCS(0), len(parts))
	if workers <= 1 {
		for _, fp := range parts {
			takeOne(fp)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(parts)); i = next.Add(1) - 1 {
				takeOne(parts[i])
			}
		})
	}
	wg.Wait()
}

// take handles a partition's polled records in order, stalling the
// partition at the first ambiguous event that does not fit in the queue.
func (p *Pipeline) take(tp TopicPartition, recs []*kgo.Record) {
	p.stalled.mu.Lock()
	if st := p.stalled.parts[tp]; st != nil {
		// Records fetched before the pause took effect queue up behind the
		// stalled event; they are bounded by what one fetch returns.
		st.rest = append(st.rest, recs...)
		p.stalled.mu.Unlock()
		return
	}
	p.stalled.mu.Unlock()
	// Other partitions' takes run meanwhile; the rebalance callbacks,
	// which also change the stalls, wait for the poll loop.
	if st := p.takeFrom(tp, recs); st != nil {
		p.stalled.mu.Lock()
		p.stalled.parts[tp] = st
		p.stalled.mu.Unlock()
	}
}

// takeFrom handles recs in order until an ambiguous event does not fit in
// the queue: it then pauses the partition and returns the stall for the
// caller to keep.
func (p *Pipeline) takeFrom(tp TopicPartition, recs []*kgo.Record) *stall {
	for i, r := range recs {
		w, ok := p.handle(r)
		if !ok || p.enqueue(w) {
			continue
		}
		p.client().PauseFetchPartitions(map[string][]int32{tp.Topic: {tp.Partition}})
		p.cfg.Metrics.queueFull()
		p.cfg.Metrics.pausedDelta(1)
		return &stall{head: w, rest: recs[i+1:]}
	}
	return nil
}

// retryStalled moves stalled events into the queue while it has room and
// resumes the partitions that are no longer stalled.
func (p *Pipeline) retryStalled() {
	p.stalled.mu.Lock()
	defer p.stalled.mu.Unlock()
	for tp, st := range p.stalled.parts {
		if !p.enqueue(st.head) {
			continue
		}
		delete(p.stalled.parts, tp)
		if next := p.takeFrom(tp, st.rest); next != nil {
			p.stalled.parts[tp] = next
		} else {
			p.client().ResumeFetchPartitions(map[string][]int32{tp.Topic: {tp.Partition}})
		}
		p.cfg.Metrics.pausedDelta(-1) // takeFrom counted a new stall, if any
	}
}

func (p *Pipeline) enqueue(w work) bool {
	select {
	case p.queue <- w:
		return true
	default:
		return false
	}
}

// handle takes one record through decode and rules. Decided and invalid
// records are emitted at once; for an ambiguous event it returns the tracked
// work to enqueue, and ok.
func (p *Pipeline) handle(r *kgo.Record) (w work, ok bool) {
	p.cfg.Metrics.consumed(r.Topic)
	tp := TopicPartition{r.Topic, r.Partition}
	inherited, below := p.offsets.Decided(tp, r.Offset)
	if below {
		p.cfg.Metrics.alreadyDecided(r.Topic)
		return work{}, false
	}
	if inherited {
		// Decided and committed before this ownership began (see the
		// package doc): done here without a second decision.
		t := p.offsets.Track(tp, r.Offset, r.LeaderEpoch)
		p.txn.touch()
		if t.Done() {
			p.markPartition(tp)
		}
		p.cfg.Metrics.alreadyDecided(r.Topic)
		return work{}, false
	}
	if p.cfg.Stage == StageSampling {
		return p.handleHandoff(r, tp)
	}
	set := p.cfg.Rules.Current()
	start := p.trace.clock()
	fields, typ, err := Decode(set, r.Value)
	if allowed := p.cfg.TopicTypes[r.Topic]; err == nil && len(allowed) > 0 && !slices.Contains(allowed, typ.Name) {
		err = &DecodeError{ReasonWrongTopic, fmt.Sprintf("type %q is not one the topic carries (%s)", typ.Name, strings.Join(allowed, ", "))}
	}
	if err != nil {
		t := p.offsets.Track(tp, r.Offset, r.LeaderEpoch)
		t.trace = p.trace.deadLetter(r, err.(*DecodeError), start)
		p.emitDLQ(r, err.(*DecodeError), t)
		return work{}, false
	}
	decoded := p.trace.clock()
	ev := newEvent(typ, fields, r.Timestamp)
	ev.Topic, ev.Partition, ev.Offset = r.Topic, r.Partition, r.Offset
	if p.cfg.Observe != nil {
		p.cfg.Observe(typ, ev)
	}
	res := evaluate(set, typ, ev, p.log)
	if p.cfg.AllLLM {
		res = rules.Result{Type: typ.Name, RuleID: AllLLMRuleID, Action: rules.ActionSample, Reason: "every event to the LLM (--all-llm)"}
	}
	p.cfg.Metrics.ruleHit(res)
	t := p.offsets.Track(tp, r.Offset, r.LeaderEpoch)
	t.trace = p.trace.event(r, &ev, res, start, decoded)
	if res.Action != rules.ActionSample {
		p.emitDecision(ev, ruleDecision(res), Verdict{}, t, 0)
		return work{}, false
	}
	if p.cfg.Stage == StageRules {
		p.emitHandoff(r, ev, res, t)
		return work{}, false
	}
	return work{item: Item{Event: ev, Type: typ, Rule: res}, ticket: t}, true
}

// Paused returns the partitions whose fetching is paused because the
// sampling queue was full.
func (p *Pipeline) Paused() map[string][]int32 {
	return p.client().PauseFetchPartitions(nil)
}
