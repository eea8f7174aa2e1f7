package pipeline

import (
	"context"
	"sync"
)

// Offsets tracks, per partition, which consumed records have all their
// outputs durably written, and yields the contiguous completed watermark:
// the offset up to which a commit loses nothing. Records complete out of
// order (a sampled event may finish long after the rule-decided events
// behind it), so the watermark only moves past a record once every record
// before it is done as well.
//
// Offsets is independent of any Kafka client so that the same bookkeeping
// serves plain group commits today and transactional commits later.
type Offsets struct {
	mu      sync.Mutex
	parts   map[TopicPartition]*partOffsets
	changed chan struct{} // closed and replaced whenever any record completes
}

// TopicPartition names one partition of one topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Mark is a committable position: the next offset to consume and the leader
// epoch of the record before it (franz-go uses the epoch for data loss
// detection).
type Mark struct {
	Offset int64
	Epoch  int32
}

type partOffsets struct {
	pending []*Ticket // in offset order; a prefix of done tickets is popped eagerly
	mark    Mark
	marked  bool
}

// Ticket is one tracked record. Done reports that its outputs are durable.
type Ticket struct {
	offsets *Offsets
	tp      TopicPartition
	part    *partOffsets
	offset  int64
	epoch   int32
	done    bool
	// abandoned tickets will never complete (their record is handed back on
	// shutdown): they hold the watermark but are no longer waited for.
	abandoned bool
}

// NewOffsets returns an empty tracker.
func NewOffsets() *Offsets {
	return &Offsets{parts: make(map[TopicPartition]*partOffsets), changed: make(chan struct{})}
}

// Track registers a consumed record. Records of one partition must be tracked
// in increasing offset order, which is the order a consumer sees them in.
func (o *Offsets) Track(tp TopicPartition, offset int64, epoch int32) *Ticket {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.parts[tp]
	if p == nil {
		p = &partOffsets{}
		o.parts[tp] = p
	}
	t := &Ticket{offsets: o, tp: tp, part: p, offset: offset, epoch: epoch}
	p.pending = append(p.pending, t)
	return t
}

// Done marks the ticket's record as completed and reports whether the
// partition's watermark advanced. Calling Done twice, or after the partition
// was dropped, is harmless.
func (t *Ticket) Done() bool {
	o := t.offsets
	o.mu.Lock()
	defer o.mu.Unlock()
	if t.done || t.abandoned {
		return false
	}
	t.done = true
	p := t.part
	advanced := false
	for len(p.pending) > 0 && p.pending[0].done {
		head := p.pending[0]
		p.pending[0] = nil
		p.pending = p.pending[1:]
		p.mark = Mark{Offset: head.offset + 1, Epoch: head.epoch}
		p.marked = true
		advanced = true
	}
	close(o.changed)
	o.changed = make(chan struct{})
	return advanced
}

// Abandon gives up on the ticket's record: it will not be committed, nor
// anything after it on its partition, and Wait no longer waits for it.
func (t *Ticket) Abandon() {
	o := t.offsets
	o.mu.Lock()
	defer o.mu.Unlock()
	if t.done {
		return
	}
	t.abandoned = true
	close(o.changed)
	o.changed = make(chan struct{})
}

// Partition is the partition of the ticket's record.
func (t *Ticket) Partition() TopicPartition { return t.tp }

// Mark returns the committable position of one partition, if it has one.
func (o *Offsets) Mark(tp TopicPartition) (Mark, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if p := o.parts[tp]; p != nil && p.marked {
		return p.mark, true
	}
	return Mark{}, false
}

// Marks returns the committable position of every partition that has one.
func (o *Offsets) Marks() map[TopicPartition]Mark {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[TopicPartition]Mark, len(o.parts))
	for tp, p := range o.parts {
		if p.marked {
			out[tp] = p.mark
		}
	}
	return out
}

// InFlight returns how many tracked records of the given partitions (all
// partitions when tps is nil) are not yet completed.
func (o *Offsets) InFlight(tps []TopicPartition) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.inFlightLocked(tps)
}

func (o *Offsets) inFlightLocked(tps []TopicPartition) int {
	n := 0
	count := func(p *partOffsets) {
		for _, t := range p.pending {
			if !t.done && !t.abandoned {
				n++
			}
		}
	}
	if tps == nil {
		for _, p := range o.parts {
			count(p)
		}
		return n
	}
	for _, tp := range tps {
		if p := o.parts[tp]; p != nil {
			count(p)
		}
	}
	return n
}

// Wait blocks until no record of the given partitions (all when tps is nil)
// is in flight, or ctx ends, whichever is first.
func (o *Offsets) Wait(ctx context.Context, tps []TopicPartition) error {
	for {
		o.mu.Lock()
		n := o.inFlightLocked(tps)
		ch := o.changed
		o.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Drop forgets the given partitions, after a revoke or a loss: tickets still
// out for them complete without effect, so a late completion can never move
// a watermark of a partition this member no longer owns.
func (o *Offsets) Drop(tps []TopicPartition) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, tp := range tps {
		delete(o.parts, tp)
	}
}
