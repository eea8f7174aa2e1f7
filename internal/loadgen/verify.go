package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/internal/deadletter"
	"github.com/triage-dev/triage/internal/kafka"
	"github.com/triage-dev/triage/rules"
)

// DefaultAuditTopic is the audit topic of the contract.
const DefaultAuditTopic = "audit"

// VerifyOptions controls Verify. The zero value verifies the contract's
// default topics against the built-in rules (rules.Default).
type VerifyOptions struct {
	// SourceTopics are the event topics; nil means DefaultTransactionsTopic
	// and DefaultDocumentsTopic.
	SourceTopics []string
	// DecisionsTopic, AuditTopic and DLQTopic default to
	// DefaultDecisionsTopic, DefaultAuditTopic and DefaultDLQTopic.
	DecisionsTopic, AuditTopic, DLQTopic string
	// Rules gives each type's outcomes; nil means rules.Default.
	Rules *rules.Set
}

// Bits of a position's state byte: two-bit saturating counters of
// decisions, dead letters and terminal audit records, and whether a source
// record sits there (a transaction marker or a compacted offset does not).
const (
	shiftDecided = 0
	shiftDLQ     = 2
	shiftAudit   = 4
	bitSource    = 1 << 6
)

func count(st uint8, shift uint) uint8 { return st >> shift & 3 }

func bump(st *uint8, shift uint) {
	if count(*st, shift) < 3 {
		*st += 1 << shift
	}
}

// partState is one source partition: a state byte per offset from start,
// so 200k events cost 200 kB.
type partState struct {
	topic     string
	partition int32
	start     int64
	state     []uint8
}

// posRef names a source position compactly: an index into verifier.parts
// and an offset.
type posRef struct {
	part   int32
	offset int64
}

type verifier struct {
	o        VerifyOptions
	parts    []*partState
	partIdx  map[string]map[int32]int32
	byEvent  map[string]posRef   // tenant_id + "\x00" + event_id
	repeated map[string][]posRef // event keys found at more than one position
	v        Verification
}

func (o VerifyOptions) withDefaults() (VerifyOptions, error) {
	if o.SourceTopics == nil {
		o.SourceTopics = []string{DefaultTransactionsTopic, DefaultDocumentsTopic}
	}
	if o.DecisionsTopic == "" {
		o.DecisionsTopic = DefaultDecisionsTopic
	}
	if o.AuditTopic == "" {
		o.AuditTopic = DefaultAuditTopic
	}
	if o.DLQTopic == "" {
		o.DLQTopic = DefaultDLQTopic
	}
	if o.Rules == nil {
		set, err := rules.Parse("default.yaml", rules.Default, rules.WithMaskKey(rules.RandomMaskKey()))
		if err != nil {
			return o, fmt.Errorf("loadgen: verify: built-in rules: %w", err)
		}
		o.Rules = set
	}
	return o, nil
}

// Verify reads every source record from the start of o.SourceTopics up to
// their end offsets, then the decisions, audit and DLQ topics read_committed
// up to their last stable offsets, all taken when Verify starts, and
// accounts for every source position. Decisions match source records by
// tenant_id and event_id (a decision record names no position); dead letters
// by their triage.dlq.* headers and audit records by their topic, partition
// and offset.
//
// opts are the connection options (seed brokers, TLS, SASL); Verify builds
// its own direct (group-less) clients from them. On ctx's end it returns
// the context's error: set a deadline, since a partition that cannot be
// fetched is waited for.
func Verify(ctx context.Context, opts []kgo.Opt, o VerifyOptions) (Verification, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Verification{}, err
	}
	vf := &verifier{o: o, partIdx: map[string]map[int32]int32{}, byEvent: map[string]posRef{}, repeated: map[string][]posRef{}}

	adm, err := kgo.NewClient(opts...)
	if err != nil {
		return Verification{}, fmt.Errorf("loadgen: verify: %w", err)
	}
	defer adm.Close()
	ad := kadm.NewClient(adm)
	outputs := []string{o.DecisionsTopic, o.AuditTopic, o.DLQTopic}
	srcStart, err := ad.ListStartOffsets(ctx, o.SourceTopics...)
	if err == nil {
		err = srcStart.Error()
	}
	if err != nil {
		return Verification{}, fmt.Errorf("loadgen: verify: source start offsets: %w", err)
	}
	srcEnd, err := ad.ListEndOffsets(ctx, o.SourceTopics...)
	if err == nil {
		err = srcEnd.Error()
	}
	if err != nil {
		return Verification{}, fmt.Errorf("loadgen: verify: source end offsets: %w", err)
	}
	outStart, err := ad.ListStartOffsets(ctx, outputs...)
	if err == nil {
		err = outStart.Error()
	}
	if err != nil {
		return Verification{}, fmt.Errorf("loadgen: verify: output start offsets: %w", err)
	}
	// Last stable offsets: what a read_committed consumer can reach.
	outEnd, err := ad.ListCommittedOffsets(ctx, outputs...)
	if err == nil {
		err = outEnd.Error()
	}
	if err != nil {
		return Verification{}, fmt.Errorf("loadgen: verify: output end offsets: %w", err)
	}

	srcStart.Each(func(so kadm.ListedOffset) {
		end, _ := srcEnd.Lookup(so.Topic, so.Partition)
		if vf.partIdx[so.Topic] == nil {
			vf.partIdx[so.Topic] = map[int32]int32{}
		}
		vf.partIdx[so.Topic][so.Partition] = int32(len(vf.parts))
		vf.parts = append(vf.parts, &partState{topic: so.Topic, partition: so.Partition, start: so.Offset,
			state: make([]uint8, max(0, end.Offset-so.Offset))})
	})
	if err := kafka.ReadRange(ctx, opts, kgo.ReadUncommitted(), srcStart, srcEnd, vf.source); err != nil {
		return Verification{}, err
	}
	if err := kafka.ReadRange(ctx, opts, kgo.ReadCommitted(), outStart, outEnd, vf.output); err != nil {
		return vf.v, err
	}
	vf.finish()
	return vf.v, nil
}

// at returns the state byte of a source position, or nil for a position
// outside what was read.
func (vf *verifier) at(topic string, partition int32, offset int64) (*uint8, posRef) {
	i, ok := vf.partIdx[topic][partition]
	if !ok {
		return nil, posRef{}
	}
	p := vf.parts[i]
	if offset < p.start || offset-p.start >= int64(len(p.state)) {
		return nil, posRef{}
	}
	return &p.state[offset-p.start], posRef{i, offset}
}

func (vf *verifier) state(ref posRef) *uint8 {
	p := vf.parts[ref.part]
	return &p.state[ref.offset-p.start]
}

// eventIDs is the part of an event the verifier reads.
type eventIDs struct {
	EventID  string `json:"event_id"`
	TenantID string `json:"tenant_id"`
}

func eventKey(tenant, id string) string { return tenant + "\x00" + id }

func (vf *verifier) source(r *kgo.Record) {
	st, ref := vf.at(r.Topic, r.Partition, r.Offset)
	if st == nil {
		return
	}
	*st |= bitSource
	var ids eventIDs
	if json.Unmarshal(r.Value, &ids) != nil || ids.EventID == "" {
		return // malformed: it can only be dead-lettered, which matches by position
	}
	k := eventKey(ids.TenantID, ids.EventID)
	if first, ok := vf.byEvent[k]; ok {
		if vf.repeated[k] == nil {
			vf.repeated[k] = []posRef{first}
		}
		vf.repeated[k] = append(vf.repeated[k], ref)
		return
	}
	vf.byEvent[k] = ref
}

func (vf *verifier) output(r *kgo.Record) {
	switch r.Topic {
	case vf.o.DecisionsTopic:
		vf.decision(r)
	case vf.o.DLQTopic:
		vf.deadLetter(r)
	case vf.o.AuditTopic:
		vf.audit(r)
	}
}

func (vf *verifier) decision(r *kgo.Record) {
	var d audit.Decision
	if err := json.Unmarshal(r.Value, &d); err != nil {
		vf.v.Unmatched++
		return
	}
	if t, ok := vf.o.Rules.Type(d.Type); !ok || !slices.Contains(t.Outcomes, d.Outcome) {
		vf.v.Outside++
		vf.example(fmt.Sprintf("outside: decision %s/%d/%d for %s (%s) has outcome %q", r.Topic, r.Partition, r.Offset, d.EventID, d.Type, d.Outcome))
	}
	k := eventKey(d.TenantID, d.EventID)
	ref, ok := vf.byEvent[k]
	if !ok {
		vf.v.Unmatched++
		return
	}
	// An id at several positions (runs that reused a seed): the first
	// position still without a decision takes it.
	for _, alt := range vf.repeated[k] {
		if count(*vf.state(alt), shiftDecided) == 0 {
			ref = alt
			break
		}
	}
	bump(vf.state(ref), shiftDecided)
}

func (vf *verifier) deadLetter(r *kgo.Record) {
	var topic string
	var partition, offset int64 = -1, -1
	for _, h := range r.Headers {
		switch h.Key {
		case deadletter.HeaderTopic:
			topic = string(h.Value)
		case deadletter.HeaderPartition:
			if p, err := strconv.ParseInt(string(h.Value), 10, 32); err == nil {
				partition = p
			}
		case deadletter.HeaderOffset:
			if o, err := strconv.ParseInt(string(h.Value), 10, 64); err == nil {
				offset = o
			}
		}
	}
	st, _ := vf.at(topic, int32(partition), offset)
	if st == nil || partition < 0 {
		vf.v.Unmatched++
		return
	}
	bump(st, shiftDLQ)
}

func (vf *verifier) audit(r *kgo.Record) {
	var a struct {
		Kind      audit.Kind `json:"kind"`
		Topic     string     `json:"topic"`
		Partition int32      `json:"partition"`
		Offset    int64      `json:"offset"`
	}
	if json.Unmarshal(r.Value, &a) != nil || !a.Kind.Terminal() {
		return
	}
	if _, source := vf.partIdx[a.Topic]; !source {
		// The sampling stage's chain: its terminal records are of the
		// sampling topic's offsets; the source offset's is the handoff.
		return
	}
	st, _ := vf.at(a.Topic, a.Partition, a.Offset)
	if st == nil {
		vf.v.Unmatched++
		return
	}
	bump(st, shiftAudit)
}

func (vf *verifier) example(s string) {
	if len(vf.v.Examples) < MaxMissingIDs {
		vf.v.Examples = append(vf.v.Examples, s)
	}
}

func (vf *verifier) finish() {
	for _, p := range vf.parts {
		for i, st := range p.state {
			dec, dlq, aud := count(st, shiftDecided), count(st, shiftDLQ), count(st, shiftAudit)
			where := fmt.Sprintf("%s/%d/%d", p.topic, p.partition, p.start+int64(i))
			if st&bitSource == 0 {
				if dec+dlq+aud > 0 {
					vf.v.Unmatched++ // outputs for a transaction marker: cannot happen
				}
				continue
			}
			vf.v.Produced++
			if dec > 0 {
				vf.v.Decided++
			}
			if dlq > 0 {
				vf.v.DeadLettered++
			}
			switch {
			case dec+dlq == 0:
				vf.v.Lost++
				vf.example("lost: " + where)
				continue
			case dec+dlq > 1:
				vf.v.Duplicated++
				vf.example(fmt.Sprintf("duplicated: %s (%d decisions, %d dead letters)", where, dec, dlq))
			}
			if aud == 0 {
				vf.v.AuditMissing++
				vf.example("audit missing: " + where)
			}
		}
	}
}
