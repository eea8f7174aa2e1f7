// Package kafka is triage's one franz-go client setup: the options every
// consumer-group member of triage shares (the pipeline and the audit sink)
// and the adapter that sends franz-go's log lines to slog. Components add
// their own commit mode and tuning; a user's options (TLS, SASL) come last.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
)

// MaxBatchBytes bounds a produced batch of a dead-letter topic
// (Member.DeadLetterTopics). A dead letter carries its original's bytes,
// which may be as large as the biggest record a source topic accepted, so
// it may need more than the broker's default message size: a dead-letter
// topic gets a larger max.message.bytes, and a dead letter its topic still
// refuses is sent truncated (see internal/deadletter).
const MaxBatchBytes = 16 << 20

// DefaultBatchBytes bounds a produced batch of every other topic:
// franz-go's default, which fits the brokers' default message size (1 MiB).
// One limit for every topic let a backlog of small audit records, piled up
// while the broker stalled, form a batch of 1.15 MB compressed that the
// audit topic refused (MESSAGE_TOO_LARGE), which ended the pipeline.
const DefaultBatchBytes = 1_000_012

// Member describes one member of a consumer group.
type Member struct {
	// Brokers are the seed brokers. Required.
	Brokers []string
	// Group is the consumer group. Required.
	Group string
	// Topics are consumed from their start when the group has no commit.
	// Required.
	Topics []string
	// OnRevoked and OnLost settle the records of partitions that leave
	// this member. Required: setting OnRevoked turns off franz-go's own
	// commit on revoke, so the member commits what it finished there.
	OnRevoked, OnLost func(context.Context, *kgo.Client, map[string][]int32)
	// Logger receives franz-go's warnings and errors. Default slog.Default().
	Logger *slog.Logger
	// LogPrefix is put before each franz-go message, e.g. "sink: kafka: ".
	// Default none.
	LogPrefix string
	// Protocol is the group protocol: ProtocolConsumer (the default) or
	// ProtocolClassic.
	Protocol string
	// DeadLetterTopics are the topics the member writes dead letters to:
	// their batches may reach MaxBatchBytes, every other topic's
	// DefaultBatchBytes.
	DeadLetterTopics []string
}

// Group protocols. Both assign partitions cooperatively and stickily: a
// rebalance moves only the partitions that must move, and the others keep
// being consumed through it.
const (
	// ProtocolConsumer is KIP-848's protocol where the broker offers it
	// (Apache Kafka 4.0 and later): the group coordinator assigns
	// partitions (its "uniform" assignor) and members reconcile through
	// heartbeats, with no group-wide join barrier. On a broker without it
	// the client uses the classic protocol by itself. Kafka 4.0 to 4.2
	// can answer an offset commit with STALE_MEMBER_EPOCH during normal
	// reconciliation, which franz-go cannot handle itself: use
	// ProtocolClassic with those versions.
	ProtocolConsumer = "consumer"
	// ProtocolClassic is the client-driven protocol (JoinGroup/SyncGroup)
	// with the cooperative-sticky balancer.
	ProtocolClassic = "classic"
)

// NewClient creates the member's client. Every member blocks rebalances
// while it holds polled records (kgo.BlockRebalanceOnPoll): it must call
// AllowRebalance after every poll, once the records are handed on, and the
// revoke and lost callbacks only ever run between polls, so that no record
// polled before a rebalance is committed for a partition the member no
// longer owns. opts follow the shared options: the member's commit mode
// and tuning, then the user's.
func NewClient(m Member, opts ...kgo.Opt) (*kgo.Client, error) {
	base, err := memberOpts(m)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: client for group %s: %w", m.Group, err)
	}
	return cl, nil
}

// NewTransactSession is NewClient for a member that writes its outputs
// and offsets in transactions: opts must include kgo.TransactionalID. The
// session aborts a transaction that a rebalance overlapped, and
// AutoCommitMarks lets the member mark the offsets the transaction
// commits.
func NewTransactSession(m Member, opts ...kgo.Opt) (*kgo.GroupTransactSession, error) {
	base, err := memberOpts(m)
	if err != nil {
		return nil, err
	}
	s, err := kgo.NewGroupTransactSession(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: transactional client for group %s: %w", m.Group, err)
	}
	return s, nil
}

func memberOpts(m Member) ([]kgo.Opt, error) {
	switch {
	case len(m.Brokers) == 0:
		return nil, errors.New("kafka: no brokers configured")
	case m.Group == "":
		return nil, errors.New("kafka: no consumer group")
	case len(m.Topics) == 0:
		return nil, errors.New("kafka: no topics to consume")
	case m.OnRevoked == nil || m.OnLost == nil:
		return nil, errors.New("kafka: a group member must settle revoked and lost partitions")
	case m.Protocol != "" && m.Protocol != ProtocolConsumer && m.Protocol != ProtocolClassic:
		return nil, fmt.Errorf("kafka: group protocol %q: want %s or %s", m.Protocol, ProtocolConsumer, ProtocolClassic)
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(m.Brokers...),
		kgo.ConsumerGroup(m.Group),
		kgo.ConsumeTopics(m.Topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Records of an upstream transaction that aborted are not
		// events; those of an open one wait for it to end.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(m.OnRevoked),
		kgo.OnPartitionsLost(m.OnLost),
		kgo.AllowAutoTopicCreation(),
		kgo.ProducerBatchMaxBytesFn(batchMaxBytes(m.DeadLetterTopics)),
		kgo.WithLogger(Logger(m.Logger, m.LogPrefix)),
	}
	if m.Protocol != ProtocolClassic {
		// With the sticky balancer first, franz-go asks for the broker's
		// "uniform" assignor; without KIP-848 support it stays classic.
		base = append(base, kgo.ServerSideBalancer())
	}
	return base, nil
}

// batchMaxBytes is the per-topic batch limit: MaxBatchBytes for the
// dead-letter topics, DefaultBatchBytes for the others.
func batchMaxBytes(deadLetters []string) func(topic string) int32 {
	return func(topic string) int32 {
		if slices.Contains(deadLetters, topic) {
			return MaxBatchBytes
		}
		return DefaultBatchBytes
	}
}

// Logger adapts log to franz-go: warnings and errors go to slog at the same
// level with prefix before the message; franz-go's info and debug lines are
// not asked for. A nil log means slog.Default().
func Logger(log *slog.Logger, prefix string) kgo.Logger {
	if log == nil {
		log = slog.Default()
	}
	return logger{log, prefix}
}

type logger struct {
	log    *slog.Logger
	prefix string
}

func (l logger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l logger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	switch level {
	case kgo.LogLevelError:
		l.log.Error(l.prefix+msg, keyvals...)
	case kgo.LogLevelWarn:
		l.log.Warn(l.prefix+msg, keyvals...)
	case kgo.LogLevelInfo:
		l.log.Info(l.prefix+msg, keyvals...)
	default:
		l.log.Debug(l.prefix+msg, keyvals...)
	}
}
