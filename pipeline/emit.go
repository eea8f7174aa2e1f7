package pipeline

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/internal/deadletter"
	"github.com/triage-dev/triage/rules"
)

// DLQ record headers (see internal/deadletter). The value is the original
// record's bytes and the key its original key, so a DLQ record can be fixed
// and replayed as it was.
const (
	HeaderDLQReason    = deadletter.HeaderReason
	HeaderDLQError     = deadletter.HeaderError
	HeaderDLQTopic     = deadletter.HeaderTopic
	HeaderDLQPartition = deadletter.HeaderPartition
	HeaderDLQOffset    = deadletter.HeaderOffset
	// HeaderDLQTruncated and HeaderDLQSHA256 are set only on a dead letter
	// that its topic refused as too large and that was sent truncated: the
	// original size in bytes and the SHA-256 of the original value.
	HeaderDLQTruncated = deadletter.HeaderTruncated
	HeaderDLQSHA256    = deadletter.HeaderSHA256
)

// Result describes one consumed record once all its outputs are durable.
type Result struct {
	Topic     string
	Partition int32
	Offset    int64
	// Decision is set for a valid event; DLQReason for a dead-lettered
	// record; HandedOff for an ambiguous event the rule stage handed off
	// to the sampling stage: not the event's last result, since the
	// sampling stage's carries its decision (count events by the others).
	Decision  *Decision
	DLQReason string
	HandedOff bool
	// AuditRecords is how many audit records were written for the record:
	// one for the decision plus SamplingAttempts, or one for a dead letter.
	AuditRecords int
	// SamplingAttempts is how many audit records of sampling attempts and
	// tool calls the decision took.
	SamplingAttempts int
	// DecideTime is how long the Decider took over an ambiguous event
	// (sampling, or the guards' answer: a cache hit, a refusal); 0 for a
	// rule's decision and a dead letter.
	DecideTime time.Duration
	// SharedCache marks a cache decision that waited for an identical
	// request in flight (Verdict.Shared).
	SharedCache bool
	// Trail is the record's audit records as written (the sampling
	// attempts' and tool calls', then the decision's or the dead letter's):
	// what a status page shows of a sampled decision. Treat it as
	// read-only.
	Trail []*audit.Record
	// Latency runs from the record's produce timestamp to the moment its
	// last output was acknowledged by the broker.
	Latency time.Duration
}

// decide runs on a worker: it asks the Decider and emits the verdict, or
// the fallback when the Decider fails.
func (p *Pipeline) decide(w work) {
	it := w.item
	if !w.ticket.Live() {
		p.trace.abandoned(w.ticket, "the partition moved before a worker took the event")
		return // its partition moved on while it waited: not ours to decide
	}
	if p.stale(it) {
		// It waited its type's max_age out in the queue.
		p.emitDecision(it.Event, fallback(it, FallbackStale), Verdict{}, w.ticket, 0)
		return
	}
	if p.cfg.Decider == nil {
		p.emitDecision(it.Event, fallback(it, FallbackNoSampler), Verdict{}, w.ticket, 0)
		return
	}
	ctx, span := p.trace.deciding(p.workCtx, w.ticket)
	started := time.Now()
	v, err := p.cfg.Decider.Decide(ctx, it)
	took := time.Since(started)
	p.trace.decided(span, v, err)
	if err != nil && p.workCtx.Err() != nil {
		// Shutdown ran out of time: hand the event back instead of
		// recording a fallback nobody chose.
		w.ticket.Abandon()
		p.trace.abandoned(w.ticket, "shutdown: handed back undecided")
		return
	}
	d, v := settle(it, v, err)
	if d.Path == PathFallback {
		p.log.Debug("fallback", "event_id", it.Event.ID, "reason", d.Reason, "err", err)
	}
	p.emitDecision(it.Event, d, v, w.ticket, took)
}

// ruleDecision is the decision of an event the rules decided.
func ruleDecision(res rules.Result) Decision {
	return Decision{Outcome: res.Action, Path: PathRule, RuleID: res.RuleID, Reason: res.Reason}
}

// settle turns a Decider's answer for it into its decision: the verdict's,
// or the type's fallback when the Decider failed or answered an outcome
// the type does not have. The verdict returned is what the decision's
// audit trail records: on a fallback, only the attempts made.
func settle(it Item, v Verdict, err error) (Decision, Verdict) {
	if err == nil && !slices.Contains(it.Type.Outcomes, v.Outcome) {
		err = fmt.Errorf("pipeline: decider answered outcome %q, not one of %v: %w", v.Outcome, it.Type.Outcomes, errInvalidOutcome)
	}
	if err != nil {
		d := fallback(it, FallbackReason(err))
		d.Tier = v.Tier
		return d, Verdict{Attempts: v.Attempts}
	}
	path := v.Path
	if path == "" {
		path = PathSampled
	}
	return Decision{Outcome: v.Outcome, Path: path, RuleID: it.Rule.RuleID, Reason: v.Reason, Model: v.Model, Tier: v.Tier, Score: v.Score}, v
}

var errInvalidOutcome = &reasonError{FallbackInvalid}

type reasonError struct{ reason string }

func (e *reasonError) Error() string          { return e.reason }
func (e *reasonError) FallbackReason() string { return e.reason }

func fallback(it Item, reason string) Decision {
	return Decision{Outcome: it.Type.Fallback, Path: PathFallback, RuleID: it.Rule.RuleID, Reason: reason}
}

// emitDecision completes d from ev, then writes the decision, the audit
// records of v's sampling attempts and tool calls, and the decision's own
// audit record (with v's cache key and source); the ticket is done when the
// broker has acknowledged all of them. took is the Decider's time.
func (p *Pipeline) emitDecision(ev Event, d Decision, v Verdict, t *Ticket, took time.Duration) {
	value, trail := decisionOutputs(ev, &d, v, time.Now(), func(a *audit.Record) { p.fillPosition(a, t) })
	attempts := v.Attempts
	p.trace.emitting(t, &d, 1+len(trail))

	// The audit records join the hash chain of the partition the member
	// read the event from (the source partition; the sampling topic's in
	// the sampling stage) and are produced in chain order, keyed by the
	// chain, so that a chain sits in order in one audit partition.
	chain := audit.ChainName(t.tp.Topic, t.tp.Partition)
	p.emit(t, chain, trail, func() {
		recs := make([]*kgo.Record, 0, 1+len(trail))
		recs = append(recs, &kgo.Record{Topic: p.cfg.DecisionsTopic, Key: []byte(ev.Key), Value: value})
		for _, a := range trail {
			recs = append(recs, p.auditRecord(chain, a))
		}
		p.produce(recs, t, func(latency time.Duration) Result {
			return Result{Topic: ev.Topic, Partition: ev.Partition, Offset: ev.Offset, Decision: &d, AuditRecords: len(trail), SamplingAttempts: len(attempts), DecideTime: took, SharedCache: v.Shared, Trail: trail, Latency: latency}
		}, ev.Produced, nil)
	})
}

// decisionOutputs completes d from ev, decided at now, and builds what an
// event's decision leaves: the decision record's value and the audit
// trail, the records of v's sampling attempts and tool calls then the
// decision's own (with v's cache key and source), each with ev's fields;
// fill sets where each was read from. Streamed and synchronous decisions
// share it, so that both leave the same records.
func decisionOutputs(ev Event, d *Decision, v Verdict, now time.Time, fill func(*audit.Record)) ([]byte, []*audit.Record) {
	user, _ := ev.Fields["user_id"].(string)
	d.EventID, d.Type, d.TenantID, d.Key = ev.ID, ev.Type, ev.TenantID, ev.Key
	d.DecidedAt = now.UTC()
	d.LatencyMS = millis(now.Sub(ev.Produced))
	value := d.AppendJSON(make([]byte, 0, 384))
	trail := make([]*audit.Record, 0, len(v.Attempts)+1)
	for i := range v.Attempts {
		a := v.Attempts[i]
		a.AuditID = audit.ID(ev.TenantID, ev.ID, a.Kind, i)
		fillEvent(&a, ev, user)
		fill(&a)
		trail = append(trail, &a)
	}
	dec := &audit.Record{
		AuditID: audit.ID(ev.TenantID, ev.ID, audit.KindDecision, 0), Kind: audit.KindDecision,
		Path: d.Path, RuleID: d.RuleID, Outcome: d.Outcome, Reason: d.Reason, Status: decisionStatus(*d),
		ModelAnswered: d.Model, LatencyMS: d.LatencyMS, At: d.DecidedAt, Tier: d.Tier,
		CacheKey: v.CacheKey, SourceAuditID: v.SourceAuditID,
	}
	fillEvent(dec, ev, user)
	fill(dec)
	return value, append(trail, dec)
}

// decisionStatus is the status of a decision's audit record: ok for a
// rule, sampled or cached decision; for a fallback, why sampling did not
// decide, from the fallback reason.
func decisionStatus(d Decision) audit.Status {
	if d.Path != PathFallback {
		return audit.StatusOK
	}
	switch d.Reason {
	case FallbackTimeout, FallbackLeaseExpired, FallbackStale:
		return audit.StatusTimeout
	case FallbackInvalid:
		return audit.StatusInvalidAnswer
	case string(audit.StatusRateLimited), string(audit.StatusBudgetExceeded), string(audit.StatusDenied):
		// A guard refused the request; the reason is the status.
		return audit.Status(d.Reason)
	case FallbackPolicy:
		return audit.StatusDenied
	default: // no_sampler, error and a Decider's other reasons
		return audit.StatusError
	}
}

// fillAudit fills a's event fields from ev and its position from the
// ticket: the record the member read, whose chain a joins (in the sampling
// stage, the handoff's offset in the sampling topic, which the handoff
// record on the source's chain links to the source by event id).
func (p *Pipeline) fillAudit(a *audit.Record, ev Event, user string, t *Ticket) {
	fillEvent(a, ev, user)
	p.fillPosition(a, t)
}

// fillEvent fills a's fields of the event it is about.
func fillEvent(a *audit.Record, ev Event, user string) {
	a.EventID, a.Type, a.TenantID, a.Key, a.UserID = ev.ID, ev.Type, ev.TenantID, ev.Key, user
}

// fillPosition fills a's position: see fillAudit.
func (p *Pipeline) fillPosition(a *audit.Record, t *Ticket) {
	a.Topic, a.Partition, a.Offset, a.Consumer = t.tp.Topic, t.tp.Partition, t.offset, p.cfg.Instance
}

// emitDLQ dead-letters a record that is not a valid event, with its
// dead_letter audit record on the source partition's chain: the dead letter
// and the audit record are produced together, in chain order, and the
// ticket is done when the broker has acknowledged both, as for a decision.
func (p *Pipeline) emitDLQ(r *kgo.Record, derr *DecodeError, t *Ticket) {
	p.log.Debug("dead-lettered", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "reason", derr.Reason, "detail", derr.Detail)
	rec := deadletter.New(p.cfg.DLQTopic, r, derr.Reason, derr.Detail)
	chain := audit.ChainName(r.Topic, r.Partition)
	// The record has no tenant and event id to derive the audit id from;
	// its source position is as stable across reprocessing.
	pos := fmt.Sprintf("%s@%d", chain, r.Offset)
	now := time.Now()
	dead := &audit.Record{
		AuditID: audit.ID("", pos, audit.KindDeadLetter, 0), Kind: audit.KindDeadLetter,
		Key: auditKey(r.Key), Reason: derr.Reason, Status: audit.StatusError,
		LatencyMS: millis(now.Sub(r.Timestamp)), At: now.UTC(),
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Consumer: p.cfg.Instance,
	}
	result := func(latency time.Duration) Result {
		return Result{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, DLQReason: derr.Reason, AuditRecords: 1,
			Trail: []*audit.Record{dead}, Latency: latency}
	}
	p.trace.emitting(t, nil, 2)
	p.emit(t, chain, []*audit.Record{dead}, func() {
		p.produce([]*kgo.Record{rec, p.auditRecord(chain, dead)}, t, result, r.Timestamp, func(sent *kgo.Record, err error) *kgo.Record {
			if sent != rec {
				return nil
			}
			return deadletter.Truncated(rec, err)
		})
	})
}

// emit links trail into the chain and calls send to produce the event's
// outputs, all under the gate: not at all when the ticket is no longer
// live (its partition was revoked, lost or rewound), and otherwise wholly
// inside the open transaction.
func (p *Pipeline) emit(t *Ticket, chain string, trail []*audit.Record, send func()) {
	p.gate.RLock()
	defer p.gate.RUnlock()
	if !t.Live() {
		p.trace.abandoned(t, "the partition moved before the outputs were produced")
		return
	}
	p.txn.touch()
	p.chains.Link(chain, trail, send)
}

// produce writes recs and completes t once the broker acknowledged all of
// them. A produce error is fatal to the pipeline: the record stays
// uncommitted and is processed again after restart, rather than being
// skipped; unless replace, when not nil, returns a record to send once
// instead of the failed one.
func (p *Pipeline) produce(recs []*kgo.Record, t *Ticket, result func(time.Duration) Result, produced time.Time, replace func(*kgo.Record, error) *kgo.Record) {
	var pending atomic.Int32
	pending.Store(int32(len(recs)))
	for _, rec := range recs {
		var instead func(error) *kgo.Record
		if replace != nil {
			instead = func(err error) *kgo.Record { return replace(rec, err) }
		}
		p.client().Produce(p.workCtx, rec, p.ack(&pending, t, result, produced, instead))
	}
}

// auditRecord encodes a as a record of the audit topic keyed by its chain,
// so that a chain sits in order in one audit partition. The buffer is
// sized for the record in one allocation.
func (p *Pipeline) auditRecord(chain string, a *audit.Record) *kgo.Record {
	return auditRecord(p.cfg.AuditTopic, chain, a)
}

func auditRecord(topic, chain string, a *audit.Record) *kgo.Record {
	v := a.AppendJSON(make([]byte, 0, 768+len(a.RequestSummary)+len(a.ResponseSummary)))
	return &kgo.Record{Topic: topic, Key: []byte(chain), Value: v}
}

// ack is the promise of one produced record: the last acknowledgement of
// an event completes its ticket and reports its result.
func (p *Pipeline) ack(pending *atomic.Int32, t *Ticket, result func(time.Duration) Result, produced time.Time, replace func(error) *kgo.Record) func(*kgo.Record, error) {
	return func(rec *kgo.Record, err error) {
		if err != nil {
			if replace != nil {
				if alt := replace(err); alt != nil {
					p.log.Warn("produce refused; sending a replacement", "topic", rec.Topic, "err", err)
					p.client().Produce(p.workCtx, alt, p.ack(pending, t, result, produced, nil))
					return
				}
			}
			switch {
			case errors.Is(err, p.workCtx.Err()):
				t.Abandon()
			case !t.Live():
				// Its partition was dropped (revoked, rewound, or its
				// session restarted): the output is moot, and the
				// event is processed again from the committed state.
				t.Abandon()
			case p.txn != nil && txnDooming(err):
				// The transaction aborts; its events, this one
				// included, are processed again.
				t.Abandon()
				p.txn.doom(err)
			default:
				p.fail(fmt.Errorf("pipeline: produce to %s: %w", rec.Topic, err))
			}
			p.trace.abandoned(t, "produce failed: "+err.Error())
			return
		}
		if pending.Add(-1) != 0 {
			return
		}
		if t.Done() {
			p.markPartition(t.Partition())
		}
		p.trace.acked(t, p.txn == nil)
		if p.txn != nil {
			// Visible, and so done, when its transaction commits.
			p.txn.hold(pendingResult{result, produced, t.trace})
			return
		}
		p.report(result(time.Since(produced)))
	}
}

// report counts a record's result and passes it to OnResult.
func (p *Pipeline) report(res Result) {
	p.cfg.Metrics.observe(res)
	if p.cfg.OnResult != nil {
		p.cfg.OnResult(res)
	}
}

// auditKey is a dead letter's record key as its audit record carries it:
// a key that is not UTF-8 would not survive JSON unchanged, and the hash
// covers it, so it is left out.
func auditKey(k []byte) string {
	if !utf8.Valid(k) {
		return ""
	}
	return string(k)
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
