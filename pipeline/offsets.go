package pipeline

import (
	"cmp"
	"context"
	"slices"
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
	// base is where this ownership started: the committed offset the
	// group resumed from, or the first record tracked. Until a mark
	// exists, it is the partition's committed position.
	base    int64
	hasBase bool
	// floor is the committed offset read from the group, when it was
	// (-1 otherwise): records below it are decided and committed.
	floor int64
	// inherited are offsets above the committed one that an earlier
	// owner (or an earlier transaction of this member) already decided
	// and committed: their records are skipped, and they stay part of
	// the partition's progress until the watermark passes them.
	inherited []Range
}

// Range is an inclusive range of offsets.
type Range struct{ First, Last int64 }

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
	// trace is the record's open spans when it is traced (trace.go); set
	// once, before the ticket is shared, and not guarded by the lock.
	trace *eventTrace
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
	p := o.part(tp)
	if !p.hasBase {
		p.base, p.hasBase = offset, true
	}
	t := &Ticket{offsets: o, tp: tp, part: p, offset: offset, epoch: epoch}
	p.pending = append(p.pending, t)
	return t
}

func (o *Offsets) part(tp TopicPartition) *partOffsets {
	p := o.parts[tp]
	if p == nil {
		p = &partOffsets{floor: -1}
		o.parts[tp] = p
	}
	return p
}

// Inherit starts the partition's bookkeeping from its committed state: the
// committed offset, and the ranges above it already decided and committed.
// It must come before the partition's first Track.
func (o *Offsets) Inherit(tp TopicPartition, committed int64, done []Range) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.part(tp)
	p.base, p.hasBase, p.floor = committed, committed >= 0, committed
	p.inherited = nil
	for _, r := range done {
		if r.Last >= committed && r.First <= r.Last {
			p.inherited = append(p.inherited, r)
		}
	}
}

// Known reports whether the partition has bookkeeping: it was inherited
// or tracked since it was last dropped.
func (o *Offsets) Known(tp TopicPartition) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.parts[tp] != nil
}

// Decided reports whether the record at offset was decided and committed
// before this ownership began: inherited, in a range done above the
// committed offset; or below, under the committed offset the bookkeeping
// was inherited from, delivered again only because the client's view of
// the commit was older than the group's (an end whose verdict was lost).
// One lock for both, since the poll loop asks for every record.
func (o *Offsets) Decided(tp TopicPartition, offset int64) (inherited, below bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.parts[tp]
	if p == nil {
		return false, false
	}
	if offset < p.floor {
		return false, true
	}
	for _, r := range p.inherited {
		if r.First <= offset && offset <= r.Last {
			return true, false
		}
	}
	return false, false
}

// Progress is a partition's committable state: the watermark (or, before
// any record completed, where the ownership started), and the ranges above
// it whose records are done.
type Progress struct {
	Mark Mark
	Done []Range
}

// Progress returns the committable state of every partition that has one.
func (o *Offsets) Progress() map[TopicPartition]Progress {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[TopicPartition]Progress, len(o.parts))
	for tp, p := range o.parts {
		mark := p.mark
		if !p.marked {
			if !p.hasBase {
				continue
			}
			mark = Mark{Offset: p.base, Epoch: -1}
		}
		var done []Range
		// Consecutive done tickets form one range even across offsets
		// that were never delivered (transaction markers, aborted
		// records): no record can ever appear there.
		for i := 0; i < len(p.pending); i++ {
			if !p.pending[i].done {
				continue
			}
			j := i
			for j+1 < len(p.pending) && p.pending[j+1].done {
				j++
			}
			done = append(done, Range{p.pending[i].offset, p.pending[j].offset})
			i = j
		}
		for _, r := range p.inherited {
			if r.Last >= mark.Offset {
				done = append(done, Range{max(r.First, mark.Offset), r.Last})
			}
		}
		out[tp] = Progress{Mark: mark, Done: mergeRanges(done)}
	}
	return out
}

// mergeRanges sorts rs and merges the ranges that overlap or touch.
func mergeRanges(rs []Range) []Range {
	if len(rs) < 2 {
		return rs
	}
	slices.SortFunc(rs, func(a, b Range) int { return cmp.Compare(a.First, b.First) })
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if r.First <= last.Last+1 {
			last.Last = max(last.Last, r.Last)
			continue
		}
		out = append(out, r)
	}
	return out
}

// Live reports whether the ticket still counts: its partition was not
// dropped since it was tracked, and it was not abandoned. A record whose
// ticket is not live must not be emitted: its partition's next owner (or
// this member after a rewind) processes it again.
func (t *Ticket) Live() bool {
	o := t.offsets
	o.mu.Lock()
	defer o.mu.Unlock()
	return !t.abandoned && o.parts[t.tp] == t.part
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

// DropAll forgets every partition, after a transaction abort rewound
// consumption to the committed offsets.
func (o *Offsets) DropAll() {
	o.mu.Lock()
	defer o.mu.Unlock()
	clear(o.parts)
	close(o.changed)
	o.changed = make(chan struct{})
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
	close(o.changed)
	o.changed = make(chan struct{})
}
