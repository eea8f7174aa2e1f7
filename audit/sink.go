package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/cenkalti/backoff/v5"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/triage-dev/triage/internal/deadletter"
	"github.com/triage-dev/triage/internal/kafka"
	"github.com/triage-dev/triage/internal/retry"
)

// SinkOptions configure a Sink. The zero value of every optional field
// means the default written in its comment.
type SinkOptions struct {
	// Brokers are the Kafka seed brokers. Required.
	Brokers []string
	// Group is the sink's consumer group, separate from the pipeline's.
	// Default "triage-clickhouse".
	Group string
	// AuditTopic and DecisionsTopic default to "audit" and "decisions".
	AuditTopic, DecisionsTopic string
	// DLQTopic receives the records of either topic that cannot be stored
	// (not valid JSON of their topic): each with its original key, bytes
	// and headers, and the headers triage.dlq.{reason,error,topic,
	// partition,offset} (see internal/deadletter). A record's offset is
	// committed only once the broker has acknowledged its dead letter; a
	// rebalance or crash in between may write a dead letter twice. Default
	// "audit.dlq".
	DLQTopic string

	// BatchSize is how many records are buffered before they are inserted.
	// The next batch fills while one is inserted, so the sink holds up to
	// twice as many. Default 5000.
	BatchSize int
	// FlushInterval bounds how long a buffered record waits for its batch
	// to fill: the batch is inserted when it is this old even if small
	// (once the batch before it is stored). Default 1 s.
	FlushInterval time.Duration
	// InsertTimeout bounds one insert attempt (and one commit). A rebalance
	// waits for an attempt in progress, so it must stay well under the
	// group's rebalance timeout (60 s by default). Default 30 s.
	InsertTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between failed inserts: it
	// starts at MinBackoff and doubles after each failure up to
	// MaxBackoff, and each wait is jittered (internal/retry) so that sinks that
	// failed together do not retry in step. While inserts fail, fetching
	// is paused and the batch is kept: nothing is dropped and nothing is
	// committed, however long ClickHouse is away. Defaults 200 ms and 10 s.
	MinBackoff, MaxBackoff time.Duration
	// ShutdownTimeout bounds the final insert and commit when Run's context
	// ends; records not inserted by then stay uncommitted and are read
	// again by the next run. Default 30 s.
	ShutdownTimeout time.Duration

	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics, when not nil, receives the sink's Prometheus metrics.
	Metrics *SinkMetrics
	// GroupProtocol is the consumer group protocol: "consumer" (KIP-848
	// where the broker offers it, the default) or "classic"; see
	// internal/kafka's Protocol constants for when to choose classic.
	GroupProtocol string
	// ClientOpts are appended to the franz-go client options (TLS, SASL,
	// tuning). They must not change the group or commit settings.
	ClientOpts []kgo.Opt
}

func (o *SinkOptions) setDefaults() {
	if o.Group == "" {
		o.Group = SinkGroup("triage")
	}
	if o.AuditTopic == "" {
		o.AuditTopic = "audit"
	}
	if o.DecisionsTopic == "" {
		o.DecisionsTopic = "decisions"
	}
	if o.DLQTopic == "" {
		o.DLQTopic = "audit.dlq"
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 5000
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.InsertTimeout <= 0 {
		o.InsertTimeout = 30 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 200 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Sink copies the audit and decisions topics into ClickHouse. It is its own
// consumer group, at least once: offsets are committed only after the
// records below them are inserted, and the tables are built so that a record
// stored twice never counts twice (see the migrations and the dashboard
// queries). Records that are not valid JSON of their topic cannot be stored;
// they are logged, counted and dead-lettered to DLQTopic, never dropped.
type Sink struct {
	opts  SinkOptions
	conn  driver.Conn
	log   *slog.Logger
	cl    *kgo.Client
	ready chan struct{}

	// The sink holds two batches: pending, which the poll loop fills, and
	// inflight, which a goroutine of Run inserts and commits meanwhile, so
	// that fetching and decoding overlap with ClickHouse's work on the
	// batch before. A batch becomes inflight only once the one before it
	// is committed, so commits keep offset order, and the poll loop waits
	// when pending is due and inflight is not done: two batches are the
	// most the sink holds.
	//
	// flushMu guards inflight and is held for one insert-and-commit
	// attempt; mu guards pending and is held to add records. Whoever needs
	// both (the hand-over, the rebalance callbacks, which settle the
	// partitions they take away in both batches) takes flushMu first.
	flushMu  sync.Mutex
	inflight *batch
	mu       sync.Mutex
	pending  *batch
	closing  bool // the final flush is done: rebalances only drop records; guarded by both
	// held counts the records of both batches for the pending gauge: the
	// one holding a batch's lock updates its half.
	held [2]atomic.Int64

	commitMu  sync.Mutex
	committed chan struct{} // closed and replaced after each commit
}

// NewSink validates opts and creates the Kafka client; Run starts
// consuming. conn must reach a database migrated with Migrate.
func NewSink(conn driver.Conn, opts SinkOptions) (*Sink, error) {
	opts.setDefaults()
	if conn == nil {
		return nil, errors.New("audit: sink: no ClickHouse connection")
	}
	if len(opts.Brokers) == 0 {
		return nil, errors.New("audit: sink: no brokers configured")
	}
	s := &Sink{
		opts:      opts,
		conn:      conn,
		log:       opts.Logger,
		ready:     make(chan struct{}),
		committed: make(chan struct{}),
	}
	s.inflight, s.pending = newBatch(), newBatch()
	member := kafka.Member{
		Brokers: opts.Brokers, Group: opts.Group, Topics: []string{opts.AuditTopic, opts.DecisionsTopic},
		OnRevoked: s.onRevoked, OnLost: s.onLost, Logger: opts.Logger, LogPrefix: "sink: kafka: ",
		Protocol: opts.GroupProtocol, DeadLetterTopics: []string{opts.DLQTopic},
	}
	// Every member reads read_committed (internal/kafka): outputs of
	// aborted pipeline transactions are not decisions.
	kopts := []kgo.Opt{
		// Commits follow inserts, never polls.
		kgo.DisableAutoCommit(),
		// Transaction markers are committed past like records, so that
		// the group's offsets reach the partitions' ends.
		kgo.KeepControlRecords(),
	}
	cl, err := kafka.NewClient(member, append(kopts, opts.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("audit: sink: %w", err)
	}
	s.cl = cl
	return s, nil
}

// Ready is closed once the sink is polling.
func (s *Sink) Ready() <-chan struct{} { return s.ready }

// Run consumes until ctx ends, then inserts and commits what it holds
// (bounded by ShutdownTimeout) and leaves the group. While ClickHouse is
// down it keeps the batch, pauses fetching and retries with backoff. It
// returns nil after a clean shutdown, or an error if the final insert or
// commit did not succeed (those records are read again next time).
func (s *Sink) Run(ctx context.Context) error {
	defer s.cl.Close()
	close(s.ready)
	var flushed chan error // the inflight batch's flush, while it runs
	for ctx.Err() == nil {
		s.mu.Lock()
		n, first := s.pending.records, s.pending.first
		s.mu.Unlock()
		if n >= s.opts.BatchSize || n > 0 && time.Since(first) >= s.opts.FlushInterval {
			if flushed != nil {
				select {
				case <-flushed: // fails only when ctx ends
					flushed = nil
				case <-ctx.Done():
				}
				continue
			}
			s.handOver()
			flushed = make(chan error, 1)
			go func(done chan<- error) { done <- s.flush(ctx) }(flushed)
			continue
		}
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if n > 0 {
			pollCtx, cancel = context.WithDeadline(ctx, first.Add(s.opts.FlushInterval))
		}
		fetches := s.cl.PollRecords(pollCtx, s.opts.BatchSize-n)
		cancel()
		if fetches.IsClientClosed() {
			s.cl.AllowRebalance()
			break
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				s.log.Warn("sink: fetch error", "topic", topic, "partition", partition, "err", err)
			}
		})
		s.mu.Lock()
		fetches.EachRecord(s.add)
		s.count(pendingHalf, s.pending)
		s.mu.Unlock()
		// The records are in the batch: from here a revoke settles them
		// (flush or drop), so a rebalance may run, also while a batch is
		// being inserted. Holding rebalances through an insert would get
		// the member thrown out of the group during a ClickHouse outage.
		s.cl.AllowRebalance()
	}

	// Shutdown: what was polled is inserted and committed on a context of
	// its own, then the group learns at once that this member is gone. The
	// flush in progress, if any, ended with ctx; what it left is retried
	// before the pending batch, whose offsets come after.
	if flushed != nil {
		<-flushed
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	defer cancel()
	err := s.flush(sctx)
	if err == nil {
		s.handOver()
		err = s.flush(sctx)
	}
	s.flushMu.Lock()
	s.mu.Lock()
	s.closing = true
	left := s.inflight.records + s.pending.records
	s.mu.Unlock()
	s.flushMu.Unlock()
	if err != nil {
		err = fmt.Errorf("audit: sink: shutdown: %d records not stored; they stay uncommitted: %w", left, err)
	}
	lctx, lcancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.InsertTimeout)
	defer lcancel()
	if lerr := s.cl.LeaveGroupContext(lctx); lerr != nil {
		s.log.Warn("sink: leave group", "err", lerr)
	}
	return err
}

// handOver makes the pending batch the one to insert, and the inflight
// one, empty since its commit, the one to fill.
func (s *Sink) handOver() {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight, s.pending = s.pending, s.inflight
	s.count(inflightHalf, s.inflight)
	s.count(pendingHalf, s.pending)
}

// The halves of Sink.held.
const (
	inflightHalf = iota
	pendingHalf
)

// count publishes that batch b, the given half of the sink's, now holds
// b.records; the caller holds that batch's lock.
func (s *Sink) count(half int, b *batch) {
	s.held[half].Store(int64(b.records))
	s.opts.Metrics.setPending(int(s.held[inflightHalf].Load() + s.held[pendingHalf].Load()))
}

// add decodes one polled record into the pending batch; a record that
// cannot be stored is logged and counted, and its dead letter joins the
// batch, to be acknowledged before the batch's offsets are committed. s.mu
// is held.
func (s *Sink) add(r *kgo.Record) {
	b := s.pending
	if b.records == 0 {
		b.first = time.Now()
	}
	b.records++
	b.advance(r)
	if r.Attrs.IsControl() {
		return // a transaction marker: nothing to store
	}
	s.opts.Metrics.consumed(r.Topic)
	var err error
	switch r.Topic {
	case s.opts.AuditTopic:
		// Decoded in place, into the slot the batch's slice has for it
		// (reused batch after batch), and taken back if the record is bad.
		b.rows.audit = append(b.rows.audit, Record{})
		if err = decodeAudit(r.Value, &b.rows.audit[len(b.rows.audit)-1]); err == nil {
			b.auditFrom = append(b.auditFrom, partitionOf(r))
		} else {
			b.rows.audit = b.rows.audit[:len(b.rows.audit)-1]
		}
	case s.opts.DecisionsTopic:
		b.rows.decisions = append(b.rows.decisions, Decision{})
		if err = decodeDecision(r.Value, &b.rows.decisions[len(b.rows.decisions)-1]); err == nil {
			b.decisionsFrom = append(b.decisionsFrom, partitionOf(r))
		} else {
			b.rows.decisions = b.rows.decisions[:len(b.rows.decisions)-1]
		}
	default:
		err = &badRecordError{reasonUnexpectedTopic, "the sink reads " + s.opts.AuditTopic + " and " + s.opts.DecisionsTopic}
	}
	var bad *badRecordError
	if errors.As(err, &bad) {
		s.opts.Metrics.bad(r.Topic)
		s.log.Warn("sink: a record that cannot be stored goes to the DLQ", "dlq", s.opts.DLQTopic,
			"topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
		b.dead = append(b.dead, deadLetter{deadletter.New(s.opts.DLQTopic, r, bad.reason, bad.detail), bad.reason})
		b.deadFrom = append(b.deadFrom, partitionOf(r))
	}
}

// flush inserts and commits the inflight batch, retrying with backoff
// until it succeeds or ctx ends. Fetching is paused from the first failure
// until the batch is stored, so the backlog waits in Kafka, not in memory.
// When ctx ends first, flush returns the last attempt's error.
func (s *Sink) flush(ctx context.Context) error {
	paused := false
	defer func() {
		if paused {
			s.cl.ResumeFetchTopics(s.opts.AuditTopic, s.opts.DecisionsTopic)
			s.opts.Metrics.setPaused(false)
		}
	}()
	attempts := 0
	var last error
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		attempts++
		s.flushMu.Lock()
		last = s.flushBatch(ctx, s.inflight)
		s.count(inflightHalf, s.inflight)
		s.flushMu.Unlock()
		return struct{}{}, last
	},
		backoff.WithBackOff(retry.NewBackOff(s.opts.MinBackoff, s.opts.MaxBackoff)),
		backoff.WithMaxElapsedTime(0), // ClickHouse may be away for long: nothing is dropped
		backoff.WithNotify(func(err error, wait time.Duration) {
			if !paused {
				s.cl.PauseFetchTopics(s.opts.AuditTopic, s.opts.DecisionsTopic)
				s.opts.Metrics.setPaused(true)
				paused = true
			}
			s.log.Warn("sink: insert failed; fetching paused, retrying", "attempt", attempts, "backoff", wait, "err", err)
		}),
	)
	if err != nil {
		return last // Retry answers ctx's error once ctx ends; the attempt's says why
	}
	if paused {
		s.log.Info("sink: insert succeeded again; fetching resumes", "attempts", attempts)
	}
	return nil
}

// flushBatch makes one attempt to insert what b has not inserted yet, to
// write its dead letters and to commit its offsets; the caller holds b's
// lock. A table once inserted, or a dead letter once acknowledged, is not
// written again when another step or the commit fails.
func (s *Sink) flushBatch(ctx context.Context, b *batch) error {
	if b.records == 0 {
		return nil
	}
	if !b.auditDone {
		if err := s.insert(ctx, "audit", len(b.rows.audit), func(ctx context.Context) error {
			return insertAudit(ctx, s.conn, b.rows.audit)
		}); err != nil {
			return err
		}
		b.auditDone = true
	}
	if !b.decisionsDone {
		if err := s.insert(ctx, "decisions", len(b.rows.decisions), func(ctx context.Context) error {
			return insertDecisions(ctx, s.conn, b.rows.decisions)
		}); err != nil {
			return err
		}
		b.decisionsDone = true
	}
	if err := s.deadLetter(ctx, b); err != nil {
		return err
	}
	if err := s.commit(ctx, b.offsets); err != nil {
		s.opts.Metrics.commitFailed()
		return err
	}
	b.reset()
	s.commitMu.Lock()
	close(s.committed)
	s.committed = make(chan struct{})
	s.commitMu.Unlock()
	return nil
}

func (s *Sink) insert(ctx context.Context, table string, n int, do func(context.Context) error) error {
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.InsertTimeout)
	defer cancel()
	start := time.Now()
	if err := do(ctx); err != nil {
		s.opts.Metrics.insertFailed(table)
		return err
	}
	s.opts.Metrics.inserted(table, n, time.Since(start))
	return nil
}

// deadLetter writes the batch's dead letters and waits for the broker: the
// acknowledged ones leave the batch, so a retry sends only the rest. A dead
// letter the DLQ topic refuses as too large is sent once more, truncated.
// s.mu is held.
func (s *Sink) deadLetter(ctx context.Context, b *batch) error {
	if len(b.dead) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.InsertTimeout)
	defer cancel()
	recs := make([]*kgo.Record, len(b.dead))
	index := make(map[*kgo.Record]int, len(b.dead))
	for i, d := range b.dead {
		recs[i], index[d.rec] = d.rec, i
	}
	failed := map[int]bool{}
	var first error
	for _, res := range s.cl.ProduceSync(ctx, recs...) {
		i, err := index[res.Record], res.Err
		if short := deadletter.Truncated(res.Record, err); short != nil {
			s.log.Warn("sink: the DLQ refused a dead letter as too large; sending it truncated",
				"dlq", s.opts.DLQTopic, "bytes", len(res.Record.Value), "err", err)
			err = s.cl.ProduceSync(ctx, short).FirstErr()
		}
		if err != nil {
			failed[i] = true
			first = cmp.Or(first, err)
			continue
		}
		s.opts.Metrics.deadLettered(b.dead[i].reason)
	}
	b.dead, b.deadFrom = keep(b.dead, b.deadFrom, func(i int) bool { return failed[i] })
	if first != nil {
		return fmt.Errorf("audit: sink: dead letters to %s: %d of %d not written: %w", s.opts.DLQTopic, len(b.dead), len(recs), first)
	}
	return nil
}

// commit synchronously commits offsets, returning the first error of the
// request or of any partition.
func (s *Sink) commit(ctx context.Context, offsets map[string]map[int32]kgo.EpochOffset) error {
	if len(offsets) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.InsertTimeout)
	defer cancel()
	var cerr error
	s.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && cerr == nil {
					cerr = fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, err)
				}
			}
		}
	})
	if cerr != nil {
		return fmt.Errorf("audit: sink: commit offsets: %w", cerr)
	}
	return nil
}

// onRevoked runs when partitions move to another member, only between
// polls (BlockRebalanceOnPoll): every record polled from them is in a
// batch by then. It waits for an insert attempt in progress, then gives
// both batches, in offset order, one bounded attempt, so that a rebalance
// in good weather replays nothing; if ClickHouse is down, the revoked
// partitions' records leave the batches uncommitted and their new owner
// reads them again. Either way no record of theirs stays behind to be
// committed once they are gone. Setting this callback turns off franz-go's
// own commit on revoke.
func (s *Sink) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight.records == 0 && s.pending.records == 0 {
		return
	}
	if !s.closing {
		err := s.flushBatch(ctx, s.inflight)
		if err == nil {
			err = s.flushBatch(ctx, s.pending)
		}
		if err != nil {
			s.log.Warn("sink: partitions revoked before their records were stored; the next owner reads them again",
				"partitions", revoked, "err", err)
		}
	}
	s.inflight.drop(revoked)
	s.pending.drop(revoked)
	s.count(inflightHalf, s.inflight)
	s.count(pendingHalf, s.pending)
}

// onLost forgets the records of partitions taken away without a chance to
// commit (session expired, fenced): their new owner reads them again.
func (s *Sink) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight.drop(lost)
	s.pending.drop(lost)
	s.count(inflightHalf, s.inflight)
	s.count(pendingHalf, s.pending)
	s.log.Warn("sink: partitions lost", "partitions", lost)
}

// SinkGroup is the consumer group of the sink that a consumer of the
// pipeline group runs in-process (consumer --clickhouse).
func SinkGroup(pipelineGroup string) string { return pipelineGroup + "-clickhouse" }
