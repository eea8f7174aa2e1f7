package loadgen

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Event types the generator knows, named as in the contract.
const (
	TypeTransaction = "transaction"
	TypeDocument    = "document"
)

// AllTypes is the key ParseShares returns for a bare number ("0.1"): in
// Config.Ambiguous it applies the share to every type without an explicit one.
const AllTypes = "*"

// Default topic names from the contract.
const (
	DefaultTransactionsTopic = "events.transactions"
	DefaultDocumentsTopic    = "events.documents"
	DefaultDecisionsTopic    = "decisions"
	DefaultDLQTopic          = "events.dlq"
)

// Defaults for the zero values of Config.
const (
	DefaultTenants   = 8
	DefaultAccounts  = 10_000
	DefaultDocuments = 50_000
)

// Types returns the event types the generator can produce, sorted.
func Types() []string { return []string{TypeDocument, TypeTransaction} }

// Config describes the synthetic workload. The zero value is a valid
// configuration: every field documents the default its zero value stands for.
type Config struct {
	// Seed selects the pseudo-random stream; the same Config gives the same
	// events. Zero is a seed like any other.
	Seed int64

	// Mix is the share of each event type, normalised to sum to 1 (so
	// "transaction=4,document=1" works). Nil means transaction 0.8,
	// document 0.2. A type may be given 0 to switch it off.
	Mix map[string]float64

	// Ambiguous is, per type, the share of valid events crafted so the
	// contract's default policy sends them to sampling; the rest are decided
	// by rules. Nil means transaction 0.05, document 0.20; the key AllTypes
	// applies to every type not listed explicitly.
	Ambiguous map[string]float64

	// Bad is the share, over all events, of malformed records (see
	// BadKinds); 0, the default, produces none.
	Bad float64

	// Repeat is the share of ambiguous events that re-send a recent
	// ambiguous event under a new event_id and occurred_at, with the same
	// tenant, key and content: a client's retry after a timeout, a document
	// uploaded again. 0, the default, produces none. The LLM stage's result
	// cache answers such repeats.
	Repeat float64

	// Tenants, Accounts and Documents size the entity populations; zero
	// means DefaultTenants, DefaultAccounts and DefaultDocuments. Accounts are
	// drawn Zipf-distributed (a few hot accounts, a long tail); each costs
	// about 100 bytes of memory for its profile.
	Tenants, Accounts, Documents int

	// Topics maps an event type to its topic; missing types use the
	// contract's defaults (DefaultTransactionsTopic, DefaultDocumentsTopic).
	Topics map[string]string

	// Now stamps occurred_at; nil means time.Now. Set it to a fixed clock
	// to make the bytes reproducible.
	Now func() time.Time
}

// DefaultMix returns the type shares used when Config.Mix is nil.
func DefaultMix() map[string]float64 {
	return map[string]float64{TypeTransaction: 0.8, TypeDocument: 0.2}
}

// DefaultAmbiguous returns the ambiguous shares used when Config.Ambiguous is nil.
func DefaultAmbiguous() map[string]float64 {
	return map[string]float64{TypeTransaction: 0.05, TypeDocument: 0.20}
}

// ParseShares parses "type=share,type=share" (as taken by --mix and
// --ambiguous). A bare number such as "0.1" returns {AllTypes: 0.1}. Type
// names are not checked here; NewGenerator checks them against Types.
func ParseShares(s string) (map[string]float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("loadgen: parse shares: empty")
	}
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		if err := checkShare(v); err != nil {
			return nil, fmt.Errorf("loadgen: parse shares %q: %w", s, err)
		}
		return map[string]float64{AllTypes: v}, nil
	}
	out := make(map[string]float64)
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("loadgen: parse shares %q: %q is not type=share", s, part)
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return nil, fmt.Errorf("loadgen: parse shares %q: %s: %w", s, k, err)
		}
		if err := checkShare(f); err != nil {
			return nil, fmt.Errorf("loadgen: parse shares %q: %s: %w", s, k, err)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("loadgen: parse shares %q: %s given twice", s, k)
		}
		out[k] = f
	}
	return out, nil
}

func checkShare(v float64) error {
	if math.IsNaN(v) || v < 0 || math.IsInf(v, 0) {
		return fmt.Errorf("share %v must be a finite number >= 0", v)
	}
	return nil
}

// settings is a Config with defaults applied and shares validated.
type settings struct {
	seed                         int64
	types                        []string  // types with a non-zero mix share, sorted
	cumMix                       []float64 // cumulative mix, parallel to types
	ambiguous                    map[string]float64
	bad, repeat                  float64
	tenants, accounts, documents int
	topics                       map[string]string
	now                          func() time.Time
}

func (c Config) settings() (settings, error) {
	s := settings{
		seed: c.Seed, bad: c.Bad, repeat: c.Repeat, now: c.Now,
		tenants: orDefault(c.Tenants, DefaultTenants), accounts: orDefault(c.Accounts, DefaultAccounts),
		documents: orDefault(c.Documents, DefaultDocuments),
		topics: map[string]string{
			TypeTransaction: DefaultTransactionsTopic,
			TypeDocument:    DefaultDocumentsTopic,
		},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if c.Tenants < 0 || c.Accounts < 0 || c.Documents < 0 {
		return s, fmt.Errorf("loadgen: config: tenants, accounts and documents must be >= 0")
	}
	if err := checkShare(c.Bad); err != nil || c.Bad > 1 {
		return s, fmt.Errorf("loadgen: config: bad share %v must be in [0, 1]", c.Bad)
	}
	if err := checkShare(c.Repeat); err != nil || c.Repeat > 1 {
		return s, fmt.Errorf("loadgen: config: repeat share %v must be in [0, 1]", c.Repeat)
	}
	mix := c.Mix
	if mix == nil {
		mix = DefaultMix()
	}
	var total float64
	for _, k := range slices.Sorted(maps.Keys(mix)) {
		if !slices.Contains(Types(), k) {
			return s, fmt.Errorf("loadgen: config: mix: unknown type %q (known: %s)", k, strings.Join(Types(), ", "))
		}
		if err := checkShare(mix[k]); err != nil {
			return s, fmt.Errorf("loadgen: config: mix: %s: %w", k, err)
		}
		if mix[k] > 0 {
			total += mix[k]
			s.types = append(s.types, k)
			s.cumMix = append(s.cumMix, total)
		}
	}
	if total == 0 {
		return s, fmt.Errorf("loadgen: config: mix: no type has a share above 0")
	}
	for i := range s.cumMix {
		s.cumMix[i] /= total
	}
	amb := c.Ambiguous
	if amb == nil {
		amb = DefaultAmbiguous()
	}
	s.ambiguous = make(map[string]float64, len(Types()))
	for k, v := range amb {
		if k != AllTypes && !slices.Contains(Types(), k) {
			return s, fmt.Errorf("loadgen: config: ambiguous: unknown type %q", k)
		}
		if err := checkShare(v); err != nil || v > 1 {
			return s, fmt.Errorf("loadgen: config: ambiguous: %s: share %v must be in [0, 1]", k, v)
		}
	}
	for _, t := range Types() {
		if v, ok := amb[t]; ok {
			s.ambiguous[t] = v
		} else {
			s.ambiguous[t] = amb[AllTypes]
		}
	}
	for k, v := range c.Topics {
		if !slices.Contains(Types(), k) {
			return s, fmt.Errorf("loadgen: config: topics: unknown type %q", k)
		}
		if v == "" {
			return s, fmt.Errorf("loadgen: config: topics: %s: empty topic", k)
		}
		s.topics[k] = v
	}
	return s, nil
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
