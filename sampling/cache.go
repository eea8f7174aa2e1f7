package sampling

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
)

// cached is a sampled answer kept for reuse: the verdict without its
// attempts, and the audit_id of the decision that paid for it.
type cached struct {
	outcome, reason, model, tier string
	score                        *float64
	source                       string
	expires                      time.Time
	size                         int
}

// resultCache holds sampled answers by cache key, bounded in entries by
// the LRU and in bytes by evicting the oldest entries past the bound. Its
// TTL is per type: the LRU's own expiry is the longest any type has, and
// each entry carries its type's deadline.
type resultCache struct {
	mu  sync.Mutex // serialises add, whose byte count reads then replaces
	lru *expirable.LRU[string, cached]
	// bytes is atomic: the LRU calls its eviction callback, which
	// subtracts, from Add and from its own expiry goroutine.
	bytes    atomic.Int64
	maxBytes int64
}

func newResultCache(entries, maxBytes int, ttl time.Duration) *resultCache {
	c := &resultCache{maxBytes: int64(maxBytes)}
	c.lru = expirable.NewLRU(entries, func(_ string, v cached) { c.bytes.Add(-int64(v.size)) }, ttl)
	return c
}

func (c *resultCache) get(key string, now time.Time) (cached, bool) {
	v, ok := c.lru.Get(key)
	if !ok || now.After(v.expires) {
		return cached{}, false
	}
	return v, true
}

// add stores v, then evicts the least recently used entries while the
// cache is over its byte bound.
func (c *resultCache) add(key string, v cached) {
	v.size = len(key) + len(v.outcome) + len(v.reason) + len(v.model) + len(v.tier) + len(v.source) + entryOverhead
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.lru.Peek(key); ok {
		c.bytes.Add(-int64(old.size)) // Add replaces it without an eviction
	}
	c.bytes.Add(int64(v.size))
	c.lru.Add(key, v)
	for c.bytes.Load() > c.maxBytes {
		if _, _, ok := c.lru.RemoveOldest(); !ok {
			return
		}
	}
}

// entryOverhead approximates an entry's bookkeeping (list element, map
// slot, expiry bucket) beyond its strings.
const entryOverhead = 160

func (c *resultCache) len() int { return c.lru.Len() }

// cacheKey is the result cache's key for a request: the event's tenant
// (answers are never shared across tenants), type, the rule that sent it
// to sampling, the rules version (a policy change invalidates what was
// cached under the old one), the risk tier, and the masked request as the
// LLM would see it (system prompt, user message, model preferences).
func cacheKey(it pipeline.Item, pr rules.Prompt) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	put := func(s string) {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	put(it.Event.TenantID)
	put(it.Type.Name)
	put(it.Rule.RuleID)
	put(it.Type.Version())
	put(pr.Tier)
	put(pr.System)
	put(pr.User)
	for _, hint := range pr.Model.Hints {
		put(hint)
	}
	for _, p := range []*float64{pr.Model.Cost, pr.Model.Speed, pr.Model.Intelligence, pr.Temperature} {
		if p == nil {
			put("-")
		} else {
			put(strconv.FormatFloat(*p, 'g', -1, 64))
		}
	}
	put(strconv.Itoa(pr.MaxTokens))
	return hex.EncodeToString(h.Sum(nil)[:16])
}
