package pipeline

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/internal/kafka"
	"github.com/triage-dev/triage/rules"
)

// Config configures a Pipeline. The zero value of every optional field means
// the default written in its comment.
type Config struct {
	// Brokers are the Kafka seed brokers. Required.
	Brokers []string
	// Group is the consumer group id. Default "triage".
	Group string
	// Topics are the event topics to consume. Default events.transactions
	// and events.documents.
	Topics []string
	// TopicTypes lists the event types each topic may carry; an event of
	// another type on a listed topic is dead-lettered as wrong_topic. A
	// topic not listed accepts every type the rules define. Every type
	// named must be one the rules define.
	TopicTypes map[string][]string
	// DecisionsTopic, AuditTopic and DLQTopic default to "decisions",
	// "audit" and "events.dlq".
	DecisionsTopic, AuditTopic, DLQTopic string

	// Stage is what the member does with ambiguous events: StageInline
	// (the default), StageRules or StageSampling.
	Stage string
	// SamplingTopic is where the rule stage hands ambiguous events off
	// and what the sampling stage consumes (Topics is then this topic
	// only, and TopicTypes is ignored). Required with StageRules and
	// StageSampling.
	SamplingTopic string

	// Rules is the live rules set; required.
	Rules *rules.Live
	// Decider decides ambiguous events. Nil means no sampler: every ambiguous
	// event gets its type's fallback outcome with reason "no_sampler".
	Decider Decider
	// Workers bounds how many ambiguous events are with the Decider at once.
	// Default 64.
	Workers int
	// QueueSize bounds how many ambiguous events wait for a worker. When the
	// queue is full, fetching pauses for the partition whose event does not
	// fit (the others go on) and resumes once the queue has room: nothing is
	// buffered without bound and nothing is dropped. Default 4 × Workers.
	QueueSize int
	// MaxPollRecords bounds one poll. Default 1000.
	MaxPollRecords int

	// DrainTimeout bounds graceful shutdown: in-flight events that are not
	// decided and acknowledged by then are handed back uncommitted, to be
	// processed again by the next owner of their partition. Default 30 s.
	DrainTimeout time.Duration
	// RevokeTimeout bounds how long a rebalance waits for the in-flight
	// events of revoked partitions before committing what is done. It must
	// stay well under the group's rebalance timeout. Default 20 s.
	RevokeTimeout time.Duration

	// Instance names this consumer in audit records. Default host-pid.
	Instance string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics, when not nil, receives the pipeline's Prometheus metrics.
	Metrics *Metrics
	// Observe, when not nil, sees every valid event, with its type, before
	// the rules' decision is emitted: the hook that feeds a history of
	// recent events (sampling.History, which the LLM's tools read). It runs
	// on the goroutine taking the event's partition, in the partition's
	// order, and several partitions' at once: it must be safe for
	// concurrent use, quick, must not block, and must treat the event's
	// Fields as read-only. Records a previous owner
	// of the partition already decided are not decoded again and not
	// observed: after a restart or a rebalance, what Observe feeds starts
	// over from the events read since.
	Observe func(*rules.Type, Event)
	// AllLLM sends every valid event to the Decider as if the rules had
	// found it ambiguous (rule id AllLLMRuleID), the rules' verdict
	// ignored: the baseline of the decision economy, which measures what
	// the rules save. Never for production.
	AllLLM bool
	// OnResult, when not nil, is called once per consumed record after all
	// of its outputs are acknowledged (a handoff's Result has HandedOff:
	// the event's decision comes from the sampling stage). It must not
	// block for long.
	OnResult func(Result)
	// Delivery is DeliveryExactlyOnce (the default) or DeliveryAtLeastOnce.
	Delivery string
	// TransactionalID identifies this member's transactional producer
	// (exactly-once). Two live members must never share one: the newer
	// fences the older. Default: group, Instance and a random suffix. A
	// stable id (a StatefulSet pod's name) lets a restarted member abort
	// its predecessor's open transaction at once instead of after
	// TransactionTimeout, which otherwise holds back read_committed
	// readers of the outputs and the partitions' next owners.
	TransactionalID string
	// CommitInterval is how often completed work is committed: with
	// exactly-once, decisions become visible to read_committed readers
	// when their transaction commits. Default 100 ms (exactly-once), 1 s
	// (at-least-once).
	CommitInterval time.Duration
	// TransactionTimeout is how long the broker lets a transaction stay
	// open before aborting it. A transaction holds only completed
	// events, never one waiting for a sampler, so it need not cover a
	// sampling timeout. Default 10 s.
	TransactionTimeout time.Duration
	// Signer, when not nil, signs a checkpoint that closes each audit
	// chain at every commit (see audit.KindCheckpoint).
	Signer *audit.Signer
	// GroupProtocol is the consumer group protocol: "consumer" (KIP-848
	// where the broker offers it, the default) or "classic"; see
	// internal/kafka's Protocol constants for when to choose classic.
	GroupProtocol string
	// ClientOpts are appended to the franz-go client options (TLS, SASL,
	// tuning). They must not change the group or commit settings.
	ClientOpts []kgo.Opt
	// TracerProvider, when not nil, traces events (see SpanEvent for the
	// span tree) and gives the Decider a context carrying the event's
	// trace. Which events are traced is the provider's sampler's choice;
	// an event it does not sample costs one unrecorded span. Nil, the
	// default, traces nothing and costs nothing.
	TracerProvider trace.TracerProvider
}

func (c *Config) setDefaults() {
	if c.Group == "" {
		c.Group = "triage"
	}
	if c.Stage == "" {
		c.Stage = StageInline
	}
	if c.Stage == StageSampling {
		c.Topics, c.TopicTypes = []string{c.SamplingTopic}, nil
	}
	if len(c.Topics) == 0 {
		c.Topics = []string{"events.transactions", "events.documents"}
	}
	if c.DecisionsTopic == "" {
		c.DecisionsTopic = "decisions"
	}
	if c.AuditTopic == "" {
		c.AuditTopic = "audit"
	}
	if c.DLQTopic == "" {
		c.DLQTopic = "events.dlq"
	}
	if c.Workers <= 0 {
		c.Workers = 64
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 4 * c.Workers
	}
	if c.MaxPollRecords <= 0 {
		c.MaxPollRecords = 1000
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.RevokeTimeout <= 0 {
		c.RevokeTimeout = 20 * time.Second
	}
	if c.Instance == "" {
		c.Instance = defaultInstance()
	}
	if c.Delivery == "" {
		c.Delivery = DeliveryExactlyOnce
	}
	if c.CommitInterval <= 0 {
		c.CommitInterval = time.Second
		if c.Delivery == DeliveryExactlyOnce {
			c.CommitInterval = 100 * time.Millisecond
		}
	}
	if c.TransactionTimeout <= 0 {
		c.TransactionTimeout = 10 * time.Second
	}
	if c.TransactionalID == "" {
		c.TransactionalID = fmt.Sprintf("%s-%s-%s", c.Group, c.Instance, rand.Text()[:8])
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// defaultInstance names this process: host-pid.
func defaultInstance() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// Pipeline is one member of the consumer group running the decision loop.
type Pipeline struct {
	cfg Config
	log *slog.Logger
	cl  atomic.Pointer[kgo.Client] // see client
	txn *txn                       // nil with at-least-once delivery
	// connect opens a new transactional session (exactly-once only).
	connect func() (*kgo.GroupTransactSession, error)
	// gate is held shared while an event's outputs are linked and
	// produced, and exclusively while a transaction ends or partitions
	// are dropped: each event's outputs fall wholly in one transaction,
	// and none is produced for a partition this member gave up.
	gate     sync.RWMutex
	topicIDs map[string][16]byte // the event topics' ids, for offset commits
	offsets  *Offsets
	chains   *audit.Chains
	queue    chan work
	space    chan struct{} // a worker took an item off the queue
	stalled  stalledParts  // partitions paused because the queue was full
	lag      *lagTracker   // fetch lag of the owned partitions (lag.go)
	trace    *tracer       // nil: no tracing (trace.go)
	ready    chan struct{}

	// workCtx outlives the run context by up to DrainTimeout, so that
	// in-flight decisions and produces can finish during shutdown.
	workCtx    context.Context
	cancelWork context.CancelFunc

	failOnce sync.Once
	failErr  error
	failed   chan struct{}
}

type work struct {
	item   Item
	ticket *Ticket
}

// New validates cfg and creates the Kafka client; Run starts consuming.
func New(cfg Config) (*Pipeline, error) {
	cfg.setDefaults()
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("pipeline: no brokers configured")
	}
	if cfg.Rules == nil {
		return nil, errors.New("pipeline: no rules configured")
	}
	for topic, types := range cfg.TopicTypes {
		for _, name := range types {
			if _, ok := cfg.Rules.Current().Type(name); !ok {
				return nil, fmt.Errorf("pipeline: topic %s: event type %q is not defined by the rules", topic, name)
			}
		}
	}
	switch {
	case cfg.Stage != StageInline && cfg.Stage != StageRules && cfg.Stage != StageSampling:
		return nil, fmt.Errorf("pipeline: stage %q: want %s, %s or %s", cfg.Stage, StageInline, StageRules, StageSampling)
	case cfg.Stage != StageInline && cfg.SamplingTopic == "":
		return nil, fmt.Errorf("pipeline: the %s stage needs a sampling topic", cfg.Stage)
	}
	if cfg.Delivery != DeliveryExactlyOnce && cfg.Delivery != DeliveryAtLeastOnce {
		return nil, fmt.Errorf("pipeline: delivery %q: want %s or %s", cfg.Delivery, DeliveryExactlyOnce, DeliveryAtLeastOnce)
	}
	p := &Pipeline{
		cfg:     cfg,
		log:     cfg.Logger,
		offsets: NewOffsets(),
		chains:  audit.NewSignedChains(cfg.Signer),
		queue:   make(chan work, cfg.QueueSize),
		space:   make(chan struct{}, 1),
		lag:     newLagTracker(),
		trace:   newTracer(cfg.TracerProvider, cfg.Stage),
		stalled: stalledParts{parts: map[TopicPartition]*stall{}},
		ready:   make(chan struct{}),
		failed:  make(chan struct{}),
	}
	member := kafka.Member{
		Brokers: cfg.Brokers, Group: cfg.Group, Topics: cfg.Topics,
		OnRevoked: p.onRevoked, OnLost: p.onLost, Logger: cfg.Logger, Protocol: cfg.GroupProtocol,
		DeadLetterTopics: []string{cfg.DLQTopic},
	}
	opts := []kgo.Opt{
		// Commit only what is done: offsets are marked by the completion
		// watermark, never by what was polled.
		kgo.AutoCommitMarks(),
		// A partition resumed after backpressure joins the next fetch only
		// when the one in flight returns; an idle fetch waits FetchMaxWait
		// (5 s by default), which would stall the resumed partition.
		kgo.FetchMaxWait(250 * time.Millisecond),
	}
	if cfg.Delivery == DeliveryAtLeastOnce {
		opts = append(opts, kgo.AutoCommitInterval(cfg.CommitInterval))
		cl, err := kafka.NewClient(member, append(opts, cfg.ClientOpts...)...)
		if err != nil {
			return nil, fmt.Errorf("pipeline: %w", err)
		}
		p.cl.Store(cl)
		return p, nil
	}
	opts = append(opts, kgo.TransactionalID(cfg.TransactionalID), kgo.TransactionTimeout(cfg.TransactionTimeout))
	p.connect = func() (*kgo.GroupTransactSession, error) {
		sess, err := kafka.NewTransactSession(member, append(opts, cfg.ClientOpts...)...)
		if err != nil {
			return nil, fmt.Errorf("pipeline: %w", err)
		}
		return sess, nil
	}
	sess, err := p.connect()
	if err != nil {
		return nil, err
	}
	p.cl.Store(sess.Client())
	p.txn = &txn{sess: sess}
	return p, nil
}

// workers is how many workers the member runs: none in the rule stage,
// which decides no ambiguous event itself.
func (p *Pipeline) workers() int {
	if p.cfg.Stage == StageRules {
		return 0
	}
	return p.cfg.Workers
}

// client is the member's Kafka client: one for the pipeline's life, but
// for a restarted transactional session (see restartSession).
func (p *Pipeline) client() *kgo.Client { return p.cl.Load() }

// drainTxn commits on the commit interval until every in-flight event is
// done or drainCtx ends, then ends the last transaction and closes the
// gate, so that nothing decided later is emitted.
func (p *Pipeline) drainTxn(drainCtx context.Context) error {
	drained := make(chan error, 1)
	go func() { drained <- p.offsets.Wait(drainCtx, nil) }()
	tick := time.NewTicker(p.cfg.CommitInterval)
	defer tick.Stop()
	for {
		select {
		case err := <-drained:
			if err != nil {
				p.log.Warn("shutdown: in-flight events not finished in time; they stay uncommitted",
					"in_flight", p.offsets.InFlight(nil), "timeout", p.cfg.DrainTimeout)
			}
			return p.commitTxn(drainCtx, true)
		case <-tick.C:
			if err := p.commitTxn(drainCtx, false); err != nil {
				p.gate.Lock()
				p.offsets.DropAll()
				p.gate.Unlock()
				return err
			}
		}
	}
}

// Ready is closed once the pipeline is polling.
func (p *Pipeline) Ready() <-chan struct{} { return p.ready }

// Run consumes until ctx ends or a fatal error occurs, then shuts down in
// stages: stop fetching, drain the workers, wait for outstanding produces,
// commit what is done, leave the group. It returns nil after a clean
// shutdown caused by ctx.
func (p *Pipeline) Run(ctx context.Context) error {
	defer func() { p.client().Close() }()
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	p.workCtx, p.cancelWork = context.WithCancel(context.WithoutCancel(ctx))
	defer p.cancelWork()
	go func() {
		select {
		case <-p.failed:
			cancelRun()
		case <-runCtx.Done():
		}
	}()

	var workers errgroup.Group
	for range p.workers() {
		workers.Go(func() error {
			for w := range p.queue {
				select {
				case p.space <- struct{}{}:
				default:
				}
				p.decide(w)
			}
			return nil
		})
	}

	if p.txn != nil {
		if err := p.txn.sess.Begin(); err != nil {
			return fmt.Errorf("pipeline: begin transaction: %w", err)
		}
		p.txn.next = time.Now().Add(p.cfg.CommitInterval)
	}
	p.poll(runCtx)
	p.cfg.Metrics.pausedDelta(-p.stalled.abandonAll())

	// Shutdown: no more records enter; everything already taken finishes
	// within DrainTimeout or is handed back uncommitted.
	p.log.Info("shutdown: draining in-flight events", "in_flight", p.offsets.InFlight(nil), "timeout", p.cfg.DrainTimeout)
	close(p.queue)
	drainCtx, cancelDrain := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.DrainTimeout)
	defer cancelDrain()
	var commitErr error
	if p.txn != nil {
		commitErr = p.drainTxn(drainCtx)
		// The last commit closed the gate: deciders still out may stop,
		// their events stay with the next owner.
		p.cancelWork()
		_ = workers.Wait()
	} else {
		stop := context.AfterFunc(drainCtx, p.cancelWork)
		defer stop()
		_ = workers.Wait()
		if err := p.offsets.Wait(drainCtx, nil); err != nil {
			p.log.Warn("shutdown: in-flight events not finished in time; they stay uncommitted",
				"in_flight", p.offsets.InFlight(nil), "timeout", p.cfg.DrainTimeout)
		}
		// Close the chains this member wrote, as a transaction's end does.
		p.gate.RLock()
		p.checkpoint()
		p.gate.RUnlock()
		if err := p.client().Flush(drainCtx); err != nil {
			p.log.Warn("shutdown: last checkpoints not acknowledged", "err", err)
		}
		commitErr = p.commit(context.WithoutCancel(ctx))
	}
	p.leave(context.WithoutCancel(ctx))
	select {
	case <-p.failed:
		return p.failErr // written before failed was closed
	default:
	}
	if commitErr != nil {
		return commitErr
	}
	return nil
}
