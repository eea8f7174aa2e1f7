package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"sync/atomic"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types/ref"
)

// DefaultMaxBytes is the record size limit of a type whose section does not
// set max_bytes: 1 MiB, Kafka's default message size.
const DefaultMaxBytes = 1 << 20

// Set is a parsed and compiled rules file: every event type it describes,
// with its schema and rules. A Set is immutable after [Parse] (only its hit
// counters move) and safe for concurrent use. Build one with [Parse] or
// [Load], or hold a changing one with [Live].
type Set struct {
	name   string
	sum    [sha256.Size]byte
	types  map[string]*Type
	names  []string // sorted
	guards Guards
	// fieldNames holds every field name of every type, each once, so
	// that a decoder can take a member's name from here rather than
	// allocate it (FieldName).
	fieldNames map[string]string
}

// FieldName returns the field name spelled by b when some type of the set
// declares it (the envelope's included): the set's own string, shared, so
// that decoding an event allocates none for its members' names.
func (s *Set) FieldName(b []byte) (string, bool) {
	n, ok := s.fieldNames[string(b)]
	return n, ok
}

// Type is one event type's section of the rules file. Its exported fields
// describe the type for callers (the pipeline's size check and DLQ, the
// sampler's prompt and answer validation); treat them as read-only, since the
// Type is shared by every goroutine holding the Set.
type Type struct {
	// Name is the type's name, the value of the event's "type" field.
	Name string
	// Key is the field whose value is the Kafka record key (the entity key).
	Key string
	// MaxBytes is the record size limit (DefaultMaxBytes unless the file
	// sets max_bytes). Callers must reject larger records before decoding:
	// besides bounding memory, Eval's static cost bound for each condition
	// assumes no value in the event is larger than this.
	MaxBytes int
	// Outcomes is the decision schema: the final outcomes, in file order.
	Outcomes []string
	// Fallback is the conservative outcome used when sampling cannot decide.
	Fallback string
	// Default is the action when no rule matches: an outcome or ActionSample.
	Default string
	// MaxAge bounds how long an event may wait for the LLM, from its
	// produce time: an ambiguous event older than that when its turn
	// comes gets the fallback with reason "stale" instead (0: no bound).
	MaxAge time.Duration
	// Fields is the schema: the envelope fields (event_id, type, tenant_id,
	// occurred_at) first, then the declared fields in file order.
	Fields []Field
	// Params are the named parameters visible to CEL as `params`, with
	// integers as int64 and lists of strings as []string.
	Params map[string]any
	// Rules are the ordered rules; the first that matches decides.
	Rules []Rule
	// Sampling is how an ambiguous event of the type is put to an LLM, as
	// the type's sampling: block says, with defaults filled in. A type
	// without the block (one Parse proved is never sampled) has an empty
	// allow-list. Build a request with Prompt.
	Sampling Sampling
	// Tiers are the risk tiers of sampled events, in file order (see Tier);
	// empty when the file gives the type none.
	Tiers []Tier

	set        *Set           // the file the type belongs to: its guards and version
	fieldIndex map[string]int // name -> index in Fields
	params     ref.Val        // Params, wrapped once for CEL
	defaults   *counters      // events that no rule matched
}

// Rule is one entry of a type's ordered rule list.
type Rule struct {
	// ID names the rule in results, decisions, audit records and metrics;
	// unique within its type.
	ID string
	// When is the CEL condition, as written in the file.
	When string
	// Action is one of the type's outcomes, or ActionSample.
	Action string
	// Reason explains the decision to humans; the ID when the file gives none.
	Reason string
	// Line is the rule's line in the rules file.
	Line int

	prg   cel.Program
	stats *counters
}

// counters are a rule's hit and error counts, shared by copies of the Rule.
type counters struct {
	hits, errors atomic.Uint64
}

// Name returns the name the Set was parsed under (Load uses the path).
func (s *Set) Name() string { return s.name }

// Version identifies the file's content: the first 16 hex digits of its
// SHA-256. Audit records and logs carry it so a decision can be traced to
// the policy that made it.
func (s *Set) Version() string { return hex.EncodeToString(s.sum[:8]) }

// Type returns the named event type, or false if the file does not describe it.
func (s *Set) Type(name string) (*Type, bool) {
	t, ok := s.types[name]
	return t, ok
}

// Types returns the names of the event types, sorted.
func (s *Set) Types() []string {
	return append([]string(nil), s.names...)
}

// Field returns the named field of the schema (envelope or declared), or
// false if the type does not declare it.
func (t *Type) Field(name string) (Field, bool) {
	i, ok := t.fieldIndex[name]
	if !ok {
		return Field{}, false
	}
	return t.Fields[i], true
}

// KeyOf returns the event's entity key: the value of the type's key field.
// It is "" when the field is absent or not a string, which Validate rejects.
func (t *Type) KeyOf(ev map[string]any) string {
	s, _ := ev[t.Key].(string)
	return s
}
