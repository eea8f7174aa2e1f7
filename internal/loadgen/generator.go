package loadgen

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"time"
)

// Event is one generated Kafka record plus what the generator intended it to
// be, so tests and Measure can check where it ended up.
type Event struct {
	// Type is the event type the record was generated as; it picks the
	// topic. For Bad == BadUnknownType the JSON says "wire_v9" instead.
	Type string
	// Topic is the topic the record belongs on (Config.Topics).
	Topic string
	// Key is the entity key: account_id for transactions, doc_id for
	// documents.
	Key []byte
	// Value is the record value: a JSON object, or malformed bytes when Bad
	// is set. Each Event owns its Value.
	Value []byte
	// EventID is the event's event_id. Malformed records keep it in their
	// bytes too (the dropped field of BadMissingField is never event_id).
	EventID string
	// Bad is the malformed kind, equal to the DLQ reason the consumer must
	// report ("" for a valid event). See BadKinds.
	Bad string
	// Ambiguous reports a valid event crafted to hit a sample rule of the
	// default policy; false means a rule decides it.
	Ambiguous bool
}

// Generator produces a deterministic stream of events from a Config. It is
// not safe for concurrent use: give each goroutine its own Generator (with
// different seeds, or the streams repeat).
type Generator struct {
	s        settings
	rng      *rand.Rand
	zipf     *rand.Zipf
	accounts []account
	young    []int // accounts younger than 30 days, for block_huge_new_account
	obj      object
	ts       []byte // scratch for occurred_at
	pad      string // BadTooLarge padding, built on first use
	// recent holds the last ambiguous events, for Config.Repeat.
	recent [recentRepeats]Event
	nrec   int
}

// recentRepeats is how many recent ambiguous events a repeat picks from:
// enough that most repeats come well after their original, as a retry
// after a timeout or a second upload does.
const recentRepeats = 512

// zipfS and zipfV skew account activity: P(account k) ~ (zipfV + k)^-zipfS.
// With 10,000 accounts the hottest makes about 2% of the traffic and the
// hottest 1% about 40%: hot keys (and hot partitions) as in card data,
// without one account dominating.
const zipfS, zipfV = 1.1, 10

// NewGenerator validates cfg, applies its defaults and builds the account
// population. It returns an error for an unknown type, a share outside its
// range or negative sizes.
func NewGenerator(cfg Config) (*Generator, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	// Two streams from one seed: profiles use their own, so the event stream
	// does not shift when the profile code draws one more number.
	seed := uint64(s.seed)
	g := &Generator{
		s:   s,
		rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)),
	}
	g.zipf = rand.NewZipf(g.rng, zipfS, zipfV, uint64(s.accounts-1))
	g.accounts, g.young = newAccounts(rand.New(rand.NewPCG(seed, 0x5851f42d4c957f2d)), s.accounts, s.tenants)
	return g, nil
}

// Next returns the next event. It depends only on the Config and the number
// of earlier calls, so the same Config always yields the same stream.
func (g *Generator) Next() Event {
	typ := g.pickType()
	bad := ""
	if g.rng.Float64() < g.s.bad {
		bad = badKinds[g.rng.IntN(len(badKinds))]
	}
	amb := bad == "" && g.rng.Float64() < g.s.ambiguous[typ]
	id := g.eventID()
	if amb && g.s.repeat > 0 && g.rng.Float64() < g.s.repeat {
		if ev, ok := g.repeat(typ, id); ok {
			return ev
		}
	}
	g.obj.reset()
	var key string
	switch typ {
	case TypeDocument:
		key = g.document(id, amb)
	default:
		key = g.transaction(id, amb)
	}
	ev := Event{Type: typ, Topic: g.s.topics[typ], Key: []byte(key), EventID: id, Ambiguous: amb}
	if bad != "" {
		ev.Bad = bad
		ev.Value = g.malformed(bad, typ)
	} else {
		ev.Value = g.obj.encode()
	}
	if amb && g.s.repeat > 0 {
		g.recent[g.nrec%recentRepeats] = ev
		g.nrec++
	}
	return ev
}

// repeat re-sends a recent ambiguous event of type typ as event id: the
// same value but for event_id and occurred_at.
func (g *Generator) repeat(typ, id string) (Event, bool) {
	n := min(g.nrec, recentRepeats)
	if n == 0 {
		return Event{}, false
	}
	prev := g.recent[g.rng.IntN(n)]
	if prev.Type != typ {
		return Event{}, false
	}
	dec := json.NewDecoder(bytes.NewReader(prev.Value))
	dec.UseNumber() // numbers keep their text
	var fields map[string]any
	if dec.Decode(&fields) != nil {
		return Event{}, false
	}
	fields["event_id"] = id
	fields["occurred_at"] = g.s.now().UTC().Format(time.RFC3339Nano)
	value, err := json.Marshal(fields)
	if err != nil {
		return Event{}, false
	}
	ev := prev
	ev.EventID, ev.Value = id, value
	return ev, true
}

func (g *Generator) pickType() string {
	u := g.rng.Float64()
	for i, c := range g.s.cumMix {
		if u < c {
			return g.s.types[i]
		}
	}
	return g.s.types[len(g.s.types)-1]
}

// envelope adds the fields every event carries, in the contract's order.
func (g *Generator) envelope(id, typ, tenant string) {
	g.obj.add("event_id", str(id))
	g.obj.add("type", str(typ))
	g.obj.add("tenant_id", str(tenant))
	g.ts = g.s.now().UTC().AppendFormat(g.ts[:0], time.RFC3339Nano)
	g.obj.add("occurred_at", str(string(g.ts)))
}

// eventID returns a random (version 4 style) UUID drawn from the seeded
// stream, so ids are unique within a run and repeat with the seed.
func (g *Generator) eventID() string {
	var u [16]byte
	hi, lo := g.rng.Uint64(), g.rng.Uint64()
	for i := range 8 {
		u[i] = byte(hi >> (56 - 8*i))
		u[8+i] = byte(lo >> (56 - 8*i))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var b [36]byte
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hexDigits[c>>4], hexDigits[c&0xf]
		j += 2
	}
	return string(b[:])
}

// pick returns a uniformly chosen element.
func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// chance reports true with probability p.
func chance(r *rand.Rand, p float64) bool { return r.Float64() < p }

// between returns a float uniformly in [lo, hi).
func between(r *rand.Rand, lo, hi float64) float64 { return lo + r.Float64()*(hi-lo) }
