// Package chaos owns triage's fault harness: it runs the project's real
// binaries (a producer, two or more consumers of one group and a sampler)
// as processes against a broker that outlives them, SIGKILLs consumers and
// the sampler at random times and restarts them, injects one-off faults
// (a broker restart, a ClickHouse outage) through callbacks, and at the end
// accounts for every produced record with loadgen.Verify, the check that
// "producer verify" runs.
//
// The harness only drives processes and reads topics: what a fault does to
// the pipeline is the pipeline's business, and every finding is in the
// Report and in the per-process log files of the run directory. cmd/chaos
// is its command line.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/rules"
)

// Topics are the topics and the consumer group of one run. Give every run
// its own (NewTopics), so that a verification counts this run's records
// only.
type Topics struct {
	// Transactions and Documents are the event topics the producer writes
	// and the consumers read.
	Transactions, Documents string
	// Decisions, Audit, DLQ and SinkDLQ are the consumers' output topics
	// (--decisions-topic, --audit-topic, --dlq-topic, --sink-dlq-topic).
	Decisions, Audit, DLQ, SinkDLQ string
	// Sampling is the topic between the consumers' rule and sampling
	// stages (--sampling-topic).
	Sampling string
	// Group is the consumers' group.
	Group string
}

// SamplingGroup is the group of the consumers' sampling stage.
func (t Topics) SamplingGroup() string { return t.Group + ".sampling" }

// SinkGroup is the group of the audit sink that a consumer given
// --clickhouse runs in-process.
func (t Topics) SinkGroup() string { return audit.SinkGroup(t.Group) }

// NewTopics names a run's topics and group after prefix: prefix +
// ".events.transactions", prefix + ".decisions", …, prefix + ".group".
func NewTopics(prefix string) Topics {
	return Topics{
		Transactions: prefix + ".events.transactions",
		Documents:    prefix + ".events.documents",
		Decisions:    prefix + ".decisions",
		Audit:        prefix + ".audit",
		DLQ:          prefix + ".events.dlq",
		SinkDLQ:      prefix + ".audit.dlq",
		Sampling:     prefix + ".sampling.requests",
		Group:        prefix + ".group",
	}
}

// All lists every topic of the run (not the group).
func (t Topics) All() []string {
	return []string{t.Transactions, t.Documents, t.Decisions, t.Audit, t.DLQ, t.SinkDLQ, t.Sampling}
}

func (t Topics) sources() []string { return []string{t.Transactions, t.Documents} }

// Fault is a fault injected once during a run, besides the kills: a broker
// restart, a ClickHouse outage.
type Fault struct {
	// Name names the fault in logs and in the report, e.g. "broker restart".
	Name string
	// At is when the fault starts, counted from the producer's start.
	At time.Duration
	// Inject injects the fault and returns once it is over (the broker
	// answers again, ClickHouse is back). It must return when ctx ends. An
	// error is a failure of the harness, not a finding: Run returns it.
	Inject func(ctx context.Context) error
}

// Config configures Run. The zero value of every optional field means the
// default written in its comment.
type Config struct {
	// Consumer and Producer are the paths of the consumer and producer
	// binaries. Required.
	Consumer, Producer string
	// Sampler is the path of the sampler binary. Empty means no sampler
	// process: the consumers run their builtin sampler (--sampler builtin,
	// the offline scorer with SamplerLatency) instead, so a sampler kill
	// cannot happen.
	Sampler string

	// Brokers are the seed brokers of the broker the run uses. Required.
	Brokers []string
	// Topics are the run's topics and group. Required.
	Topics Topics
	// Partitions, when positive, makes Run create the run's topics with this
	// many partitions (replication factor: the broker's default) before any
	// process starts. Zero means the caller created them.
	Partitions int32

	// Dir is the run directory: one log file per process slot
	// (consumer-1.log, sampler.log, producer.log; a restarted process
	// appends to its slot's file). Required; it is created if missing.
	Dir string

	// Events is how many events the producer produces. Required.
	Events int
	// Rate is the producer's events per second. Zero means as fast as it
	// can, which leaves the kills little to hit.
	Rate float64
	// Bad is the share of malformed records, which end in the DLQ. Default 0.
	Bad float64
	// ProducerSeed is the producer's --seed. Default 1.
	ProducerSeed int64

	// Consumers is how many consumer processes share the group. Default 2.
	Consumers int
	// GroupProtocol is the consumers' --group-protocol. Default "classic":
	// a killed member's partitions then move after SessionTimeout. With
	// "consumer" (KIP-848) the broker's group.consumer.session.timeout.ms
	// decides that instead, 45 s by default, so every kill stalls its
	// partitions that long.
	GroupProtocol string
	// SessionTimeout is the consumers' --session-timeout. Default 6 s, the
	// least Apache Kafka accepts by default (group.min.session.timeout.ms).
	SessionTimeout time.Duration
	// DrainTimeout is the consumers' --drain-timeout. Default 20 s.
	DrainTimeout time.Duration
	// StableTransactionalIDs gives each consumer slot a --transactional-id
	// of its own that its restarts keep (the group's name and the slot's),
	// as a StatefulSet's pod names would: a restarted member fences its
	// killed predecessor's open transaction at once. Without it every
	// process draws a new id (the consumer's default), and a killed
	// member's transaction, with the group offsets it holds pending, waits
	// for the broker to abort it on its timeout. One CI run with new ids,
	// a member killed as the broker went down, saw the group commit
	// nothing more for its last 80 s (cause not confirmed: the run's
	// diagnosis now logs the open transactions and the stable offset
	// fetch of a group that does not settle).
	StableTransactionalIDs bool
	// ConsumerArgs are passed to every consumer after the harness's own
	// flags, so they win (--rules, --workers …).
	ConsumerArgs []string

	// ClickHouse is the DSN passed to every consumer as --clickhouse: each
	// then runs the audit sink in-process (group Topics.SinkGroup()). Run
	// then also waits for the sink to store every output and verifies the
	// audit table: its hash chains (VerifyTable) and, against the group's
	// committed offsets, one terminal record per source offset
	// (Reconcile). The whole table is verified: give the run a database of
	// its own, or the figures count earlier runs too (and their
	// checkpoints, signed with another key, are breaks). Empty means no
	// sink and no ClickHouse verification.
	ClickHouse string
	// AuditKeyFile is passed to every consumer as --audit-key-file: each
	// commit then closes the chains it wrote with a checkpoint signed with
	// the file's key (at least 32 bytes), and the ClickHouse verification
	// checks every signature. Empty means no checkpoints, and a chain
	// rewritten from an edited row on would verify.
	AuditKeyFile string

	// SamplerLatency is the offline scorer's latency per answer
	// (--offline-latency), in the sampler process or the builtin sampler.
	// Default 0.
	SamplerLatency time.Duration
	// SamplerArgs are passed to the sampler after the harness's own flags.
	SamplerArgs []string

	// Kills is how many times a random consumer is SIGKILLed. Zero means
	// none.
	Kills int
	// KillMin and KillMax bound the wait before each kill, drawn uniformly,
	// counted from the previous kill (the first from the producer's start).
	// Default 8 s and 15 s.
	KillMin, KillMax time.Duration
	// SamplerKillChance is the probability, at each kill, that the sampler
	// process is SIGKILLed too. Default 0.
	SamplerKillChance float64
	// RestartDelay is how long a killed process stays down before it is
	// started again. Default 1 s.
	RestartDelay time.Duration
	// Seed seeds the kill schedule and the choice of victims. Zero means a
	// seed from the clock; the report says which.
	Seed int64

	// Faults are injected once each at their time, concurrently with the
	// kills.
	Faults []Fault

	// SettleTimeout bounds each wait once the producer, the kills and the
	// faults are done: for the group to commit the end of the event topics,
	// for the ClickHouse sink to store every output (with ClickHouse), and
	// for the outputs' open transactions to end. Default 2 min.
	SettleTimeout time.Duration
	// VerifyTimeout bounds the verification's reading of the topics and,
	// separately, of ClickHouse. Default 2 min.
	VerifyTimeout time.Duration
	// Rules gives each type's outcomes to the verification: the rules the
	// consumers run. Nil means the built-in rules.
	Rules *rules.Set

	// Logger receives the harness's progress. Nil means slog.Default().
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultConsumers      = 2
	DefaultGroupProtocol  = "classic"
	DefaultSessionTimeout = 6 * time.Second
	DefaultDrainTimeout   = 20 * time.Second
	DefaultKillMin        = 8 * time.Second
	DefaultKillMax        = 15 * time.Second
	DefaultRestartDelay   = time.Second
	DefaultSettleTimeout  = 2 * time.Minute
	DefaultVerifyTimeout  = 2 * time.Minute
)

func (c Config) withDefaults() (Config, error) {
	if c.Consumers == 0 {
		c.Consumers = DefaultConsumers
	}
	if c.GroupProtocol == "" {
		c.GroupProtocol = DefaultGroupProtocol
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.KillMin == 0 && c.KillMax == 0 {
		c.KillMin, c.KillMax = DefaultKillMin, DefaultKillMax
	}
	if c.RestartDelay == 0 {
		c.RestartDelay = DefaultRestartDelay
	}
	if c.SettleTimeout == 0 {
		c.SettleTimeout = DefaultSettleTimeout
	}
	if c.VerifyTimeout == 0 {
		c.VerifyTimeout = DefaultVerifyTimeout
	}
	if c.ProducerSeed == 0 {
		c.ProducerSeed = 1
	}
	if c.Seed == 0 {
		c.Seed = time.Now().UnixNano()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	var errs []error
	if c.Consumer == "" || c.Producer == "" {
		errs = append(errs, errors.New("the consumer and producer binaries are required"))
	}
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	for _, t := range append(c.Topics.All(), c.Topics.Group) {
		if t == "" {
			errs = append(errs, fmt.Errorf("a topic or the group is unnamed: %+v", c.Topics))
			break
		}
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("no run directory"))
	}
	if c.Events <= 0 {
		errs = append(errs, fmt.Errorf("events %d: must be positive", c.Events))
	}
	if c.Consumers < 1 {
		errs = append(errs, fmt.Errorf("consumers %d: must be positive", c.Consumers))
	}
	if c.Kills < 0 || c.KillMin < 0 || c.KillMax < c.KillMin {
		errs = append(errs, fmt.Errorf("kills %d every %s-%s: want kills >= 0 and 0 <= min <= max", c.Kills, c.KillMin, c.KillMax))
	}
	if c.SamplerKillChance < 0 || c.SamplerKillChance > 1 {
		errs = append(errs, fmt.Errorf("sampler kill chance %g: want 0..1", c.SamplerKillChance))
	}
	for _, f := range c.Faults {
		if f.Name == "" || f.Inject == nil || f.At < 0 {
			errs = append(errs, fmt.Errorf("fault %q: wants a name, an Inject function and At >= 0", f.Name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("chaos: config: %w", err)
	}
	return c, nil
}
