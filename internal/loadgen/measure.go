package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/internal/latency"
)

// MeasureOptions controls Measure. The zero value reads the default topics
// with a 30s grace and has nothing to account for.
type MeasureOptions struct {
	// DecisionsTopic and DLQTopic default to DefaultDecisionsTopic and
	// DefaultDLQTopic.
	DecisionsTopic, DLQTopic string
	// Sent lists the events to account for, usually Report.Produced of a
	// tracked Produce run.
	Sent []Sent
	// Grace is how long Measure keeps reading without accounting for any
	// new event before it declares the rest missing; 0 means 30s.
	Grace time.Duration
	// Since skips records timestamped before it: runs with the same seed
	// reuse event ids, so an earlier run's decisions would otherwise match.
	// The zero value skips nothing.
	Since time.Time
}

// MaxMissingIDs bounds Measurement.MissingIDs and Measurement.Mismatches.
const MaxMissingIDs = 20

// Measurement is what Measure found for the tracked events.
type Measurement struct {
	// Tracked is len(MeasureOptions.Sent); every tracked event ends up
	// Decided, in the DLQ, or Missing.
	Tracked, Decided, DLQ, Missing int
	// MissingIDs holds the event ids of the first MaxMissingIDs missing
	// events, in the order of MeasureOptions.Sent.
	MissingIDs []string
	// Duplicates counts decision or DLQ records for an event already
	// accounted for: zero under exactly-once delivery.
	Duplicates int
	// Mismatched counts events that ended up where their intent says they
	// should not: a malformed event decided, a valid event in the DLQ, or a
	// DLQ reason other than Sent.Bad. Mismatches describes the first few.
	Mismatched int
	Mismatches []string
	// Misrouted counts decided events whose path disagrees with how they
	// were crafted: an ambiguous event decided by "rule", or a clear one by
	// anything else. It is zero when the consumer runs the default policy;
	// under another policy it is information, not a failure.
	Misrouted int
	// Latency is the distribution over decided events of the decision
	// record's timestamp minus Sent.ProducedAt, so of millisecond
	// resolution; a decision timestamped before its event (clock skew) counts
	// as 0 and in Latency.Clamped. Never nil in a Measurement that Measure
	// returns.
	Latency *latency.Histogram
	// ByPath and ByOutcome count decisions; ByReason counts DLQ records by
	// their triage.dlq.reason header.
	ByPath, ByOutcome, ByReason map[string]int
	// Elapsed is how long Measure read.
	Elapsed time.Duration
}

const defaultGrace = 30 * time.Second

func (o MeasureOptions) withDefaults() MeasureOptions {
	if o.DecisionsTopic == "" {
		o.DecisionsTopic = DefaultDecisionsTopic
	}
	if o.DLQTopic == "" {
		o.DLQTopic = DefaultDLQTopic
	}
	if o.Grace <= 0 {
		o.Grace = defaultGrace
	}
	return o
}

// MeasureClientOpts returns the kgo options for the client passed to
// Measure: a direct (group-less) consumer of the decisions and DLQ topics,
// starting at o.Since, or at the start of the topics when it is zero. Topics
// are not auto-created: the consumer creates them with its own settings.
func MeasureClientOpts(o MeasureOptions) []kgo.Opt {
	o = o.withDefaults()
	start := kgo.NewOffset().AtStart()
	if !o.Since.IsZero() {
		start = kgo.NewOffset().AfterMilli(o.Since.UnixMilli())
	}
	return []kgo.Opt{kgo.ConsumeTopics(o.DecisionsTopic, o.DLQTopic), kgo.ConsumeResetOffset(start)}
}

// decision is the part of a decision record (contract: decisions topic)
// Measure reads.
type decision struct {
	EventID string `json:"event_id"`
	Outcome string `json:"outcome"`
	Path    string `json:"path"`
}

// Header names of a DLQ record (contract: events.dlq).
const (
	headerDLQReason    = "triage.dlq.reason"
	headerDLQTopic     = "triage.dlq.topic"
	headerDLQPartition = "triage.dlq.partition"
	headerDLQOffset    = "triage.dlq.offset"
)

// settled says how a tracked event was accounted for.
type settled uint8

const (
	unsettled settled = iota
	settledDecided
	settledDLQ
)

type position struct {
	topic     string
	partition int32
	offset    int64
}

// measurer matches records against the tracked events; one goroutine only.
type measurer struct {
	o       MeasureOptions
	byID    map[string]int
	byPos   map[position]int
	state   []settled
	pending int
	m       Measurement
}

// Measure reads the decisions and DLQ topics with cl until every event in
// o.Sent is accounted for, or o.Grace passes without progress. Decisions
// match by event_id; DLQ records match by their source topic, partition and
// offset headers. Records for other events are ignored. When events are
// missing and fetching failed along the way, the last fetch error is
// returned with the measurement.
//
// cl must be a fresh client built with MeasureClientOpts(o): a direct
// consumer, since a group would share the topics with other members and
// commit offsets nobody needs. Measure adds the two topics to what cl
// consumes, so extra kgo.ConsumeTopics are harmless. On ctx's end it returns
// what it measured so far with the context's error.
func Measure(ctx context.Context, cl *kgo.Client, o MeasureOptions) (Measurement, error) {
	if cl == nil {
		return Measurement{}, errors.New("loadgen: measure: nil client")
	}
	if group, _ := cl.OptValue(kgo.ConsumerGroup).(string); group != "" {
		return Measurement{}, fmt.Errorf("loadgen: measure: client consumes in group %q; build it with MeasureClientOpts", group)
	}
	if topics, _ := cl.OptValue(kgo.ConsumeTopics).([]string); len(topics) == 0 {
		return Measurement{}, errors.New("loadgen: measure: client consumes no topics; build it with MeasureClientOpts")
	}
	ms := newMeasurer(o.withDefaults())
	cl.AddConsumeTopics(ms.o.DecisionsTopic, ms.o.DLQTopic)
	start := time.Now()
	lastProgress := start
	var fetchErr error // the last one; kgo retries what can be retried
	for ms.pending > 0 {
		pctx, cancel := context.WithDeadline(ctx, lastProgress.Add(ms.o.Grace))
		fs := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return ms.finish(time.Since(start)), fmt.Errorf("loadgen: measure: %w", err)
		}
		if fs.IsClientClosed() {
			return ms.finish(time.Since(start)), fmt.Errorf("loadgen: measure: %w", kgo.ErrClientClosed)
		}
		fs.EachError(func(topic string, partition int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				fetchErr = fmt.Errorf("loadgen: measure: fetch %s[%d]: %w", topic, partition, err)
			}
		})
		before := ms.pending
		fs.EachRecord(ms.record)
		if ms.pending < before {
			lastProgress = time.Now()
		} else if !time.Now().Before(lastProgress.Add(ms.o.Grace)) {
			break
		}
	}
	m := ms.finish(time.Since(start))
	if m.Missing > 0 && fetchErr != nil {
		// The likely reason events are missing: say so rather than blame the consumer.
		return m, fetchErr
	}
	return m, nil
}

func newMeasurer(o MeasureOptions) *measurer {
	ms := &measurer{
		o: o, byID: make(map[string]int, len(o.Sent)), byPos: make(map[position]int, len(o.Sent)),
		state: make([]settled, len(o.Sent)), pending: len(o.Sent),
		m: Measurement{
			Tracked: len(o.Sent), Latency: &latency.Histogram{},
			ByPath: map[string]int{}, ByOutcome: map[string]int{}, ByReason: map[string]int{},
		},
	}
	for i, s := range o.Sent {
		ms.byID[s.EventID] = i
		ms.byPos[position{s.Topic, s.Partition, s.Offset}] = i
	}
	return ms
}

func (ms *measurer) record(r *kgo.Record) {
	if r.Timestamp.Before(ms.o.Since) {
		return
	}
	switch r.Topic {
	case ms.o.DecisionsTopic:
		ms.decision(r)
	case ms.o.DLQTopic:
		ms.dlq(r)
	}
}

func (ms *measurer) decision(r *kgo.Record) {
	var d decision
	if json.Unmarshal(r.Value, &d) != nil {
		return // not a decision record this run produced; the consumer owns its format
	}
	i, ok := ms.byID[d.EventID]
	if !ok || !ms.account(i, settledDecided) {
		return
	}
	s := ms.o.Sent[i]
	ms.m.Decided++
	ms.m.ByPath[d.Path]++
	ms.m.ByOutcome[d.Outcome]++
	ms.m.Latency.Record(r.Timestamp.Sub(s.ProducedAt))
	if s.Bad != "" {
		ms.mismatch(fmt.Sprintf("%s: malformed (%s) but decided %q by %s", s.EventID, s.Bad, d.Outcome, d.Path))
	}
	if s.Ambiguous == (d.Path == "rule") {
		ms.m.Misrouted++
	}
}

func (ms *measurer) dlq(r *kgo.Record) {
	var pos position
	var reason string
	var perr, oerr error
	for _, h := range r.Headers {
		switch h.Key {
		case headerDLQTopic:
			pos.topic = string(h.Value)
		case headerDLQPartition:
			var p int64
			p, perr = strconv.ParseInt(string(h.Value), 10, 32)
			pos.partition = int32(p)
		case headerDLQOffset:
			pos.offset, oerr = strconv.ParseInt(string(h.Value), 10, 64)
		case headerDLQReason:
			reason = string(h.Value)
		}
	}
	if perr != nil || oerr != nil {
		return
	}
	i, ok := ms.byPos[pos]
	if !ok || !ms.account(i, settledDLQ) {
		return
	}
	s := ms.o.Sent[i]
	ms.m.DLQ++
	ms.m.ByReason[reason]++
	switch {
	case s.Bad == "":
		ms.mismatch(fmt.Sprintf("%s: valid %s sent to the DLQ as %s", s.EventID, s.Type, reason))
	case s.Bad != reason:
		ms.mismatch(fmt.Sprintf("%s: malformed (%s) sent to the DLQ as %s", s.EventID, s.Bad, reason))
	}
}

// account marks event i as settled in the given state, or counts a duplicate.
func (ms *measurer) account(i int, state settled) bool {
	if ms.state[i] != unsettled {
		ms.m.Duplicates++
		return false
	}
	ms.state[i] = state
	ms.pending--
	return true
}

func (ms *measurer) mismatch(desc string) {
	ms.m.Mismatched++
	if len(ms.m.Mismatches) < MaxMissingIDs {
		ms.m.Mismatches = append(ms.m.Mismatches, desc)
	}
}

func (ms *measurer) finish(elapsed time.Duration) Measurement {
	m := ms.m
	m.Elapsed = elapsed
	m.Missing = ms.pending
	for i, st := range ms.state {
		if st == unsettled && len(m.MissingIDs) < MaxMissingIDs {
			m.MissingIDs = append(m.MissingIDs, ms.o.Sent[i].EventID)
		}
	}
	return m
}
