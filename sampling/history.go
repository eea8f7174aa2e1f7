package sampling

import (
	"container/list"
	"slices"
	"sync"

	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
)

// HistoryOptions configure a History. Zero values mean the defaults in the
// comments.
type HistoryOptions struct {
	// PerKey is how many of an entity's most recent events are kept, and the
	// most the transaction_history tool returns. Default 20.
	PerKey int
	// MaxEntries bounds the events kept over all entities: past it, the
	// entities observed least recently are forgotten whole. Default
	// 100,000 (at a few hundred bytes of allow-listed values each, tens
	// of MB).
	MaxEntries int
}

// History is a bounded window of recent events per entity, which the
// transaction_history tool reads: for each (tenant, type, key), the last
// PerKey events, of the types whose sampling block offers that tool. The
// pipeline feeds it (pipeline.Config.Observe = History.Observe) with every
// valid event before the rules decide it.
//
// It keeps only what an LLM may see: each event's allow-listed fields,
// never the rest of the event, and hands them out masked as the type's
// sampling block says (rules.Type.Masked). Masking waits until a tool
// reads the window: Observe runs on the consume path for every event,
// and a keyed hash there would cost every rule decision for the few that
// call a tool. It lives in memory only: after a restart, or when a partition
// moves to another consumer, an entity's window starts empty and fills
// from the events read since (records that were decided before are not
// decoded again). Entities are keyed by the Kafka record key, so one
// consumer sees all of an entity's events. A History is safe for
// concurrent use.
type History struct {
	perKey, maxEntries int

	mu      sync.Mutex
	windows map[historyKey]*list.Element // of *window
	lru     *list.List                   // most recently observed at the front
	entries int
}

type historyKey struct{ tenant, typ, key string }

// window is one entity's recent events, oldest first.
type window struct {
	key    historyKey
	events []pastEvent
}

type pastEvent struct {
	id string // to leave the event under decision out, and skip redeliveries
	// names are the type's allow-list when the event was observed (shared,
	// not copied), values the event's values of them, nil where absent.
	names  []string
	values []any
}

// NewHistory returns an empty history.
func NewHistory(opts HistoryOptions) *History {
	if opts.PerKey <= 0 {
		opts.PerKey = 20
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 100_000
	}
	opts.MaxEntries = max(opts.MaxEntries, opts.PerKey)
	return &History{perKey: opts.PerKey, maxEntries: opts.MaxEntries,
		windows: map[historyKey]*list.Element{}, lru: list.New()}
}

// Observe records ev, an event of typ that passed validation, if typ offers
// the transaction_history tool; other events are ignored at once. It masks
// the allow-listed fields (what the type's prompts do for a sampled event)
// outside the lock, so a hash mask costs the caller one HMAC per masked
// field, and it never blocks for long. An event already in its entity's
// window (a redelivery) is not recorded twice.
func (h *History) Observe(typ *rules.Type, ev pipeline.Event) {
	if h == nil || typ == nil || ev.Key == "" || !typ.HasTool(rules.ToolTransactionHistory) {
		return
	}
	names := typ.Sampling.Fields
	past := pastEvent{id: ev.ID, names: names, values: make([]any, len(names))}
	for i, name := range names {
		past.values[i] = ev.Fields[name]
	}
	k := historyKey{ev.TenantID, typ.Name, ev.Key}
	h.mu.Lock()
	defer h.mu.Unlock()
	var w *window
	if e := h.windows[k]; e != nil {
		h.lru.MoveToFront(e)
		w = e.Value.(*window)
		if slices.ContainsFunc(w.events, func(p pastEvent) bool { return p.id == past.id }) {
			return
		}
	} else {
		w = &window{key: k, events: make([]pastEvent, 0, min(h.perKey, 4))}
		h.windows[k] = h.lru.PushFront(w)
	}
	if len(w.events) == h.perKey {
		w.events = slices.Delete(w.events, 0, 1)
		h.entries--
	}
	w.events = append(w.events, past)
	h.entries++
	for h.entries > h.maxEntries {
		old := h.lru.Back().Value.(*window)
		h.lru.Remove(h.lru.Back())
		delete(h.windows, old.key)
		h.entries -= len(old.events)
	}
}

// Recent returns up to limit of the recent events of typ's entity key of
// tenant, newest first, as their allow-listed fields masked as typ (the
// rules now in force) says, leaving out the event named exclude (the one
// under decision). A field the allow-list no longer holds is left out.
// limit <= 0 or above PerKey means PerKey. The maps are the caller's.
func (h *History) Recent(typ *rules.Type, tenant, key, exclude string, limit int) []map[string]any {
	if h == nil {
		return nil
	}
	if limit <= 0 || limit > h.perKey {
		limit = h.perKey
	}
	h.mu.Lock()
	e := h.windows[historyKey{tenant, typ.Name, key}]
	if e == nil {
		h.mu.Unlock()
		return nil
	}
	var picked []pastEvent
	events := e.Value.(*window).events
	for i := len(events) - 1; i >= 0 && len(picked) < limit; i-- {
		if events[i].id != exclude {
			picked = append(picked, events[i])
		}
	}
	h.mu.Unlock()
	out := make([]map[string]any, 0, len(picked))
	for _, p := range picked {
		fields := make(map[string]any, len(p.names))
		for i, name := range p.names {
			if p.values[i] != nil {
				fields[name] = p.values[i]
			}
		}
		out = append(out, typ.Masked(fields))
	}
	return out
}

// Len returns how many entities and events the history holds.
func (h *History) Len() (entities, events int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.windows), h.entries
}

// PerKey is the most events kept per entity.
func (h *History) PerKey() int { return h.perKey }
