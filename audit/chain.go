package audit

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Chains link audit records into tamper-evident hash chains, one per source
// partition: each record carries the hash of the record before it, so that
// an edited, deleted or inserted row breaks the chain where it happened.
//
// A member that takes over a partition does not know the last hash its
// predecessor wrote, so each uninterrupted ownership starts a new segment
// (a random id, first record with an empty PrevHash). Within a segment the
// records are gap-free as long as they are written in Seq order to one
// audit partition, which the pipeline guarantees by keying them by Chain and
// producing them under the chain's lock.
//
// With a [Signer], a KindCheckpoint record linked into a chain is signed at
// its position, and each chain remembers whether records were linked since
// its last checkpoint (see Unsigned).
type Chains struct {
	mu     sync.Mutex
	chains map[string]*chain
	signer *Signer
}

type chain struct {
	mu       sync.Mutex
	segment  string
	seq      int64
	last     string
	unsigned bool // records were linked since the last checkpoint
}

// NewChains returns an empty set of chains.
// ChainName names the hash chain of a source partition, "topic/partition":
// the pipeline links records under it and keys the audit topic by it, and
// verify reconciles by it.
func ChainName(topic string, partition int32) string {
	return topic + "/" + strconv.Itoa(int(partition))
}

func NewChains() *Chains { return &Chains{chains: map[string]*chain{}} }

// NewSignedChains returns an empty set of chains whose checkpoints s signs
// (none when s is nil).
func NewSignedChains(s *Signer) *Chains { return &Chains{chains: map[string]*chain{}, signer: s} }

// Unsigned returns the chains that had records linked since their last
// checkpoint (none without a signer): the ones a checkpoint should close.
func (c *Chains) Unsigned() []string {
	if c.signer == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for name, ch := range c.chains {
		ch.mu.Lock()
		if ch.unsigned {
			out = append(out, name)
		}
		ch.mu.Unlock()
	}
	return out
}

// CheckpointUnsigned closes every chain that had records linked since its
// last checkpoint (Unsigned) with a checkpoint written by consumer, and
// calls send with each while holding its chain, so that the checkpoint
// leaves in chain order.
func (c *Chains) CheckpointUnsigned(consumer string, send func(chain string, cp *Record)) {
	for _, chain := range c.Unsigned() {
		cp := Checkpoint(consumer, time.Now())
		c.Link(chain, []*Record{cp}, func() { send(chain, cp) })
	}
}

// Link fills Chain, Segment, Seq, PrevHash and Hash of recs, in order, as
// the next records of the named chain, then calls emit while still holding
// the chain so that records leave in chain order.
func (c *Chains) Link(name string, recs []*Record, emit func()) {
	c.mu.Lock()
	ch := c.chains[name]
	if ch == nil {
		ch = &chain{segment: newSegment()}
		c.chains[name] = ch
	}
	c.mu.Unlock()

	ch.mu.Lock()
	defer ch.mu.Unlock()
	for _, r := range recs {
		r.validUTF8()
		r.Chain, r.Segment, r.Seq, r.PrevHash = name, ch.segment, ch.seq, ch.last
		r.At = r.At.Truncate(time.Millisecond)
		ch.unsigned = r.Kind != KindCheckpoint
		if !ch.unsigned && c.signer != nil {
			r.AuditID = ID("", name+"#"+ch.segment, KindCheckpoint, int(ch.seq))
			c.signer.sign(r)
		}
		r.Hash = r.ComputeHash()
		ch.seq++
		ch.last = r.Hash
	}
	emit()
}

// Reset ends the segments of the named chains (their partitions moved to
// another member): if they come back, a new segment starts.
func (c *Chains) Reset(names []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range names {
		delete(c.chains, n)
	}
}

// ResetAll ends the segments of every chain: after a transaction abort
// discarded the tails this member had linked, each chain goes on in a new
// segment.
func (c *Chains) ResetAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.chains)
}

// validUTF8 replaces invalid UTF-8 in the record's strings by U+FFFD, as
// encoding/json does when the record is written: the hash must cover the
// strings as they will be stored, or the row would verify as edited.
func (r *Record) validUTF8() {
	for _, f := range []*string{
		&r.AuditID, &r.EventID, &r.Type, &r.TenantID, &r.UserID, &r.Key,
		&r.Path, &r.RuleID, &r.Outcome, &r.Reason, &r.Mode, &r.SamplerSession,
		&r.ModelRequested, &r.ModelAnswered, &r.RequestSummary, &r.ResponseSummary,
		&r.Topic, &r.Consumer,
	} {
		if !utf8.ValidString(*f) {
			*f = strings.ToValidUTF8(*f, "\uFFFD")
		}
	}
}

func newSegment() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// ComputeHash is SHA-256 over the record's canonical encoding: every field
// but Hash, in a fixed order, each as a length-prefixed byte string, with
// numbers in a form that survives storage exactly (At as Unix milliseconds,
// floats in shortest round-trip form). Verification recomputes it from a
// stored row.
//
// The encoding is built in one buffer (on the stack for a typical record)
// and hashed at once: the chain hashes every record the pipeline writes.
func (r *Record) ComputeHash() string {
	var stack [1024]byte
	b := stack[:0]
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	num := func(v int64) {
		var d [20]byte
		str(string(strconv.AppendInt(d[:0], v, 10)))
	}
	str(r.AuditID)
	str(string(r.Kind))
	str(r.EventID)
	str(r.Type)
	str(r.TenantID)
	str(r.UserID)
	str(r.Key)
	str(r.Path)
	str(r.RuleID)
	str(r.Outcome)
	str(r.Reason)
	str(string(r.Status))
	str(r.Mode)
	str(r.SamplerSession)
	str(r.ModelRequested)
	str(r.ModelAnswered)
	num(r.InputTokens)
	num(r.OutputTokens)
	str(r.RequestSummary)
	str(r.ResponseSummary)
	var f [32]byte
	str(string(strconv.AppendFloat(f[:0], r.LatencyMS, 'g', -1, 64)))
	num(r.At.UnixMilli())
	str(r.Topic)
	num(int64(r.Partition))
	num(r.Offset)
	str(r.Consumer)
	str(r.Chain)
	str(r.Segment)
	num(r.Seq)
	str(r.PrevHash)
	// Fields added after the first release are hashed only when one is
	// set, so that a row stored before they existed keeps its hash.
	if r.Tier != "" || r.Tool != "" || r.CacheKey != "" || r.SourceAuditID != "" || r.TokensEstimated {
		str(r.Tier)
		str(r.Tool)
		str(r.CacheKey)
		str(r.SourceAuditID)
		str(strconv.FormatBool(r.TokensEstimated))
	}
	if r.Channel != "" || r.Caller != "" {
		str(r.Channel)
		str(r.Caller)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Break is one place where a chain does not verify.
type Break struct {
	Chain, Segment string
	Seq            int64
	AuditID        string
	// Problem says what is wrong: "edited" (the row's hash does not match
	// its content), "missing seq N" (deleted rows), "broken link" (the row
	// does not link to the one before it: that one was edited and rehashed,
	// or this one was inserted), "conflict" (two different rows claim one
	// position).
	Problem string
}

// Verify checks rows of one segment, sorted by Seq, and returns every break.
// Identical duplicates (a replay stored twice) are not breaks. With a
// signer, every checkpoint must carry its key's signature of its position
// ("bad signature" otherwise); without one, checkpoints are checked as rows.
func Verify(rows []Record, signer *Signer) []Break {
	var out []Break
	var prev *Record
	next := int64(0)
	for i := range rows {
		r := &rows[i]
		brk := func(problem string) {
			out = append(out, Break{Chain: r.Chain, Segment: r.Segment, Seq: r.Seq, AuditID: r.AuditID, Problem: problem})
		}
		if prev != nil && r.Seq == prev.Seq {
			if r.Hash != prev.Hash || r.ComputeHash() != prev.ComputeHash() {
				brk("conflict")
			}
			continue
		}
		if r.ComputeHash() != r.Hash {
			brk("edited")
		}
		if signer != nil && r.Kind == KindCheckpoint && !signer.Check(r) {
			brk("bad signature")
		}
		switch {
		case r.Seq > next:
			brk("missing " + seqRange(next, r.Seq-1))
		case r.Seq < next:
			brk("out of order")
		}
		want := ""
		if prev != nil {
			want = prev.Hash
		}
		if r.Seq == next && r.PrevHash != want {
			brk("broken link")
		}
		prev = r
		next = r.Seq + 1
	}
	return out
}

func seqRange(from, to int64) string {
	if from == to {
		return "seq " + strconv.FormatInt(from, 10)
	}
	return "seq " + strconv.FormatInt(from, 10) + ".." + strconv.FormatInt(to, 10)
}
