package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/rules"
)

// Stages: what one Pipeline does with the events its rules leave
// ambiguous (Config.Stage).
const (
	// StageInline decides ambiguous events in the same member, through
	// the in-memory queue and the workers: when they do not fit, the
	// partition pauses, and the clear events behind them wait too. The
	// default, for tests, embedded use and at-least-once setups.
	StageInline = "inline"
	// StageRules is the rule stage of a two-stage deployment: an
	// ambiguous event is handed off to Config.SamplingTopic in the same
	// transaction as its input offset, and the member moves on. A slow
	// LLM never holds the rules back; its backlog is that topic's lag.
	StageRules = "rules"
	// StageSampling is the sampling stage: it consumes Config.SamplingTopic
	// (as its own consumer group) and decides the handed-off events at the
	// samplers' pace, emitting decisions and audit records in its own
	// transactions. An event that waited longer than its type's MaxAge
	// gets the fallback with reason FallbackStale.
	StageSampling = "sampling"
)

// FallbackStale: the event waited for the LLM longer than its type's
// max_age (rules.Type.MaxAge), from its produce time.
const FallbackStale = "stale"

// ReasonInvalidHandoff: a record of the sampling topic that is not a
// handoff this version writes (another producer's, or corrupted). Its
// dead letter keeps the bytes.
const ReasonInvalidHandoff = "invalid_handoff"

// handoffVersion is the format of the sampling topic's records.
const handoffVersion = 1

// handoff is a record of the sampling topic: an ambiguous event as the
// rule stage read it, what the rules said, and where it came from. The
// event's bytes travel as they were consumed, so that the sampling stage
// decodes and masks them under its own rules (a reload between the stages
// applies) and the LLM's tools see the same fields as in one stage. The
// sampling topic therefore holds what the input topics hold: give it their
// ACLs and retention.
type handoff struct {
	Version    int             `json:"v"`
	RuleID     string          `json:"rule_id"`
	Reason     string          `json:"reason,omitempty"`
	Topic      string          `json:"topic"`
	Partition  int32           `json:"partition"`
	Offset     int64           `json:"offset"`
	ProducedMS int64           `json:"produced_ms"`
	Event      json.RawMessage `json:"event"`
}

func decodeHandoff(value []byte) (handoff, error) {
	var h handoff
	if err := json.Unmarshal(value, &h); err != nil {
		return h, fmt.Errorf("not a handoff record: %w", err)
	}
	switch {
	case h.Version != handoffVersion:
		return h, fmt.Errorf("handoff version %d, want %d", h.Version, handoffVersion)
	case h.Topic == "" || len(h.Event) == 0:
		return h, errors.New("handoff record without its source topic or event")
	}
	return h, nil
}

// emitHandoff hands an ambiguous event off to the sampling topic (rule
// stage): the handoff record, keyed by the entity, and its audit record on
// the source partition's chain, the terminal record of that source offset
// (audit.KindHandoff), produced together like a decision's. The event's
// decision comes from the sampling stage.
func (p *Pipeline) emitHandoff(r *kgo.Record, ev Event, res rules.Result, t *Ticket) {
	value, err := json.Marshal(handoff{
		Version: handoffVersion, RuleID: res.RuleID, Reason: res.Reason,
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, ProducedMS: r.Timestamp.UnixMilli(),
		Event: r.Value,
	})
	if err != nil {
		t.Abandon()
		p.fail(fmt.Errorf("pipeline: encode handoff of %s: %w", ev.ID, err))
		return
	}
	user, _ := ev.Fields["user_id"].(string)
	now := time.Now()
	rec := &audit.Record{
		AuditID: audit.ID(ev.TenantID, ev.ID, audit.KindHandoff, 0), Kind: audit.KindHandoff,
		RuleID: res.RuleID, Reason: res.Reason, Status: audit.StatusOK,
		LatencyMS: millis(now.Sub(ev.Produced)), At: now.UTC(),
	}
	p.fillAudit(rec, ev, user, t)
	chain := audit.ChainName(r.Topic, r.Partition)
	p.trace.emitting(t, nil, 2)
	p.emit(t, chain, []*audit.Record{rec}, func() {
		out := &kgo.Record{Topic: p.cfg.SamplingTopic, Key: []byte(ev.Key), Value: value}
		t.trace.inject(&out.Headers)
		p.produce([]*kgo.Record{out, p.auditRecord(chain, rec)}, t, func(latency time.Duration) Result {
			return Result{Topic: ev.Topic, Partition: ev.Partition, Offset: ev.Offset, HandedOff: true,
				AuditRecords: 1, Trail: []*audit.Record{rec}, Latency: latency}
		}, ev.Produced, nil)
	})
}

// handleHandoff takes one record of the sampling topic (sampling stage):
// a valid handoff becomes work for the Decider, or the fallback when it
// is already stale; anything else is dead-lettered.
func (p *Pipeline) handleHandoff(r *kgo.Record, tp TopicPartition) (work, bool) {
	start := p.trace.clock()
	t := p.offsets.Track(tp, r.Offset, r.LeaderEpoch)
	h, err := decodeHandoff(r.Value)
	var fields map[string]any
	var typ *rules.Type
	if err == nil {
		var derr error
		if fields, typ, derr = Decode(p.cfg.Rules.Current(), h.Event); derr != nil {
			err = fmt.Errorf("the handed-off event no longer decodes under the rules: %w", derr)
		}
	}
	if err != nil {
		derr := &DecodeError{ReasonInvalidHandoff, err.Error()}
		t.trace = p.trace.deadLetter(r, derr, start)
		p.emitDLQ(r, derr, t)
		return work{}, false
	}
	decoded := p.trace.clock()
	ev := Event{
		ID: str(fields["event_id"]), Type: typ.Name, TenantID: str(fields["tenant_id"]), Key: typ.KeyOf(fields),
		Fields: fields, Topic: h.Topic, Partition: h.Partition, Offset: h.Offset, Produced: time.UnixMilli(h.ProducedMS),
	}
	res := rules.Result{Type: typ.Name, RuleID: h.RuleID, Action: rules.ActionSample, Reason: h.Reason}
	t.trace = p.trace.event(r, &ev, res, start, decoded)
	it := Item{Event: ev, Type: typ, Rule: res}
	if p.stale(it) {
		p.emitDecision(ev, fallback(it, FallbackStale), Verdict{}, t, 0)
		return work{}, false
	}
	return work{item: it, ticket: t}, true
}

// stale reports whether the item waited longer than its type allows.
func (p *Pipeline) stale(it Item) bool {
	return it.Type.MaxAge > 0 && time.Since(it.Event.Produced) > it.Type.MaxAge
}
