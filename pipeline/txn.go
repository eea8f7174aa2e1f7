package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/triage-dev/triage/internal/retry"
)

// Delivery guarantees: what a crash, a kill or a rebalance may do to the
// outputs of one event.
const (
	// DeliveryExactlyOnce writes every event's outputs and its consumed
	// offset in one Kafka transaction: read with read_committed, each
	// event has its outputs exactly once. The default.
	DeliveryExactlyOnce = "exactly-once"
	// DeliveryAtLeastOnce commits offsets after the outputs are
	// acknowledged: nothing is lost, but a crash repeats the outputs of
	// events decided after the last commit. For brokers without
	// transactions.
	DeliveryAtLeastOnce = "at-least-once"
)

// txn is the exactly-once state of a member: the open transaction and what
// waits for it to commit.
type txn struct {
	sess *kgo.GroupTransactSession

	mu      sync.Mutex
	results []pendingResult // outputs complete in the open transaction
	dirty   bool            // the open transaction has outputs or moved offsets
	opened  time.Time       // when dirty was first set
	revoked bool            // partitions left since the transaction began: it must abort
	closed  bool            // the last transaction ended: nothing more is emitted
	next    time.Time       // when the next commit is due
}

type pendingResult struct {
	result   func(time.Duration) Result
	produced time.Time
	trace    *eventTrace // nil unless the event is traced
}

// touch records that the open transaction carries something to commit.
// A nil txn (at-least-once) records nothing.
func (x *txn) touch() {
	if x == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.dirty {
		x.dirty, x.opened = true, time.Now()
	}
}

// hold keeps a completed event's result until its transaction commits.
func (x *txn) hold(r pendingResult) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.results = append(x.results, r)
}

// revoke dooms the open transaction: partitions moved away while it was
// open, and what it holds for them may be redone by their next owner. It
// reports false once the last transaction ended (the member is leaving).
func (x *txn) revoke() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.revoked = true
	return !x.closed
}

// pending reports what the open transaction carries, leaving it as it is.
func (x *txn) pending() (dirty, revoked bool, opened time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.dirty, x.revoked, x.opened
}

// take returns the results the open transaction holds and whether it is
// doomed, and clears its state for the next one.
func (x *txn) take() (results []pendingResult, revoked bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	results, revoked = x.results, x.revoked
	x.results, x.dirty, x.revoked = nil, false, false
	return results, revoked
}

// due reports when the next commit is due (zero when not in a transaction).
func (x *txn) due() time.Time {
	if x == nil {
		return time.Time{}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.next
}

// endTxnGrace is how much longer than the transaction timeout ending one
// may take before the member gives up and stops.
const endTxnGrace = 30 * time.Second

// errProgressTooLarge stops a commit whose done ranges do not fit in the
// offset commit metadata; the transaction stays open until they do.
var errProgressTooLarge = errors.New("pipeline: done ranges exceed the offset commit metadata limit")

// commitTxn ends the open transaction and begins the next. It runs on the
// poll loop's goroutine (franz-go forbids polling concurrently with ending
// a transaction) and holds the emit gate, so that no output is produced
// while the transaction ends: every output belongs wholly to one
// transaction. With final, the member stops emitting: the gate is left
// closed to every partition and no transaction begins.
//
// The commit carries, for every partition with bookkeeping, the watermark
// and, in the offset's metadata, the ranges above it already decided (see
// the package doc). An abort (a rebalance revoked partitions, the group
// fenced this member, the broker refused) rewinds consumption to the
// committed offsets and drops all bookkeeping: everything since the last
// commit is processed again, and nothing of it was visible.
func (p *Pipeline) commitTxn(ctx context.Context, final bool) error {
	x := p.txn
	// Not canceled with the run: franz-go leaves a transaction whose end
	// was canceled in an unknown state. The bound outlasts a broker
	// restart: the flush waits for the broker, then franz-go's requests
	// retry for up to 30 s each.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.TransactionTimeout+endTxnGrace)
	defer cancel()
	p.gate.Lock()
	defer p.gate.Unlock()
	defer func() {
		x.mu.Lock()
		x.next = time.Now().Add(p.cfg.CommitInterval)
		x.mu.Unlock()
	}()
	if final {
		defer func() {
			p.offsets.DropAll()
			x.mu.Lock()
			x.closed = true
			x.mu.Unlock()
		}()
	}
	start := time.Now()
	p.checkpoint()
	// Flush before reading the bookkeeping: the acknowledgements move
	// the watermarks and hold the results. End flushes again, with
	// nothing left to send.
	if err := p.cl.Flush(ctx); err != nil {
		return fmt.Errorf("pipeline: flush transaction: %w", err)
	}
	dirty, revoked, opened := x.pending()
	if !dirty && !revoked {
		return nil
	}
	progress := p.offsets.Progress()
	meta := make(map[TopicPartition]string, len(progress))
	tooLarge := false
	for tp, pr := range progress {
		meta[tp] = encodeProgress(pr.Mark.Offset, pr.Done)
		tooLarge = tooLarge || len(meta[tp]) > MaxProgressBytes
	}
	if tooLarge && !revoked && !final && time.Since(opened) < p.cfg.TransactionTimeout/2 {
		// The watermark moves on as the slow events before the done
		// ones finish, and the ranges shrink; until then the
		// transaction stays open, its state untouched.
		p.log.Debug("commit deferred", "err", errProgressTooLarge)
		return nil
	}
	// A revoke may have come since pending: take's word is final.
	results, revoked := x.take()
	try := kgo.TryCommit
	switch {
	case revoked:
		try = kgo.TryAbort
	case tooLarge:
		p.log.Warn("aborting the transaction: its done ranges do not fit in the offset commit metadata", "err", errProgressTooLarge)
		try = kgo.TryAbort
	}
	fill := func(req *kmsg.TxnOffsetCommitRequest) error {
		p.fillCommit(req, progress, meta)
		return nil
	}
	committed, err := x.sess.End(kgo.PreTxnCommitFnContext(ctx, fill), try)
	if err != nil {
		err = p.abortUnconfirmed(ctx, err)
	}
	p.cfg.Metrics.transaction(committed, time.Since(start))
	p.trace.committed(start, results, committed, err)
	if err != nil || !committed {
		p.aborted(err, revoked)
	} else {
		now := time.Now()
		for _, r := range results {
			res := r.result(now.Sub(r.produced))
			p.cfg.Metrics.observe(res)
			if p.cfg.OnResult != nil {
				p.cfg.OnResult(res)
			}
		}
	}
	if err != nil {
		// franz-go retries what can be retried and turns a commit the
		// group refused into an abort; an error left is a producer in a
		// failed state (fenced by a newer member with its id, or out of
		// retries): stopping is the way to start clean.
		return fmt.Errorf("pipeline: end transaction: %w", err)
	}
	if final {
		return nil
	}
	if err := x.sess.Begin(); err != nil {
		return fmt.Errorf("pipeline: begin transaction: %w", err)
	}
	return nil
}

// abortUnconfirmed settles a transaction whose end failed without a
// verdict (the broker went away mid-request): as franz-go documents, the
// way out is to end it again with an abort, which reloads the producer id
// and so fences whatever is still open broker-side. It retries until the
// broker answers or ctx ends, so a broker restart costs one transaction,
// not the member. Should the failed end have committed after all, the
// bookkeeping reloaded from the group (see load) skips what it holds.
func (p *Pipeline) abortUnconfirmed(ctx context.Context, endErr error) error {
	p.log.Warn("ending the transaction failed; aborting it until the broker answers", "err", endErr)
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		_, err := p.txn.sess.End(ctx, kgo.TryAbort)
		if errors.Is(err, kgo.ErrClientClosed) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(retry.NewBackOff(100*time.Millisecond, 2*time.Second)), backoff.WithMaxElapsedTime(0)) // bounded by ctx
	if err != nil {
		return errors.Join(endErr, err)
	}
	return nil
}

// aborted drops everything the aborted transaction held: franz-go has
// rewound consumption to the committed offsets, so every partition starts
// again from its committed state, loaded afresh on its next record.
func (p *Pipeline) aborted(err error, revoked bool) {
	p.offsets.DropAll()
	p.chains.ResetAll()
	p.cfg.Metrics.pausedDelta(-p.stalled.abandonAll())
	if paused := p.cl.PauseFetchPartitions(nil); len(paused) > 0 {
		p.cl.ResumeFetchPartitions(paused)
	}
	if revoked {
		p.log.Info("transaction aborted after a rebalance; its events are processed again")
		return
	}
	p.log.Warn("transaction aborted; its events are processed again", "err", err)
}

// fillCommit puts every partition's progress into the transaction's offset
// commit: franz-go fills in the partitions whose watermark moved, and the
// others join so that their done ranges are written too and so that the
// group fences the commit even when no watermark moved (a member the group
// no longer counts must not commit outputs).
func (p *Pipeline) fillCommit(req *kmsg.TxnOffsetCommitRequest, progress map[TopicPartition]Progress, meta map[TopicPartition]string) {
	for tp, pr := range progress {
		ti := slices.IndexFunc(req.Topics, func(t kmsg.TxnOffsetCommitRequestTopic) bool { return t.Topic == tp.Topic })
		if ti < 0 {
			t := kmsg.NewTxnOffsetCommitRequestTopic()
			t.Topic, t.TopicID = tp.Topic, p.topicIDs[tp.Topic]
			req.Topics = append(req.Topics, t)
			ti = len(req.Topics) - 1
		}
		t := &req.Topics[ti]
		pi := slices.IndexFunc(t.Partitions, func(p kmsg.TxnOffsetCommitRequestTopicPartition) bool { return p.Partition == tp.Partition })
		if pi < 0 {
			t.Partitions = append(t.Partitions, kmsg.NewTxnOffsetCommitRequestTopicPartition())
			pi = len(t.Partitions) - 1
		}
		m := meta[tp]
		part := &t.Partitions[pi]
		part.Partition, part.Offset, part.LeaderEpoch, part.Metadata = tp.Partition, pr.Mark.Offset, pr.Mark.Epoch, &m
	}
}
