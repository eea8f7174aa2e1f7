package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strconv"
	"time"
)

// KindCheckpoint is a signed checkpoint of its chain: a record whose Mode
// names the signing key ("hmac-sha256:" and the first 8 bytes, in hex, of
// the key's SHA-256) and whose Reason is the HMAC-SHA256, in hex, of its
// chain, segment, seq and PrevHash under that key. The hash chain alone
// proves that rows fit together, which anyone who can write the table can
// also arrange after editing a row and rehashing everything after it; a
// checkpoint ties the chain up to it to a key the writer of the table does
// not hold. It is not terminal: it accounts for no source offset.
const KindCheckpoint = Kind("checkpoint")

// MinSigningKeyBytes is the shortest signing key accepted.
const MinSigningKeyBytes = 32

// Signer signs and checks chain checkpoints with one HMAC key.
type Signer struct {
	key []byte
	id  string
}

// NewSigner returns a signer for key, which must be at least
// MinSigningKeyBytes long.
func NewSigner(key []byte) (*Signer, error) {
	if len(key) < MinSigningKeyBytes {
		return nil, errors.New("audit: the signing key must be at least 32 bytes")
	}
	sum := sha256.Sum256(key)
	return &Signer{key: append([]byte(nil), key...), id: "hmac-sha256:" + hex.EncodeToString(sum[:8])}, nil
}

// ID names the key in the checkpoints it signs, without revealing it.
func (s *Signer) ID() string { return s.id }

// sign fills a checkpoint's key id and signature; its position (Chain,
// Segment, Seq, PrevHash) must be set.
func (s *Signer) sign(r *Record) {
	r.Mode, r.Reason = s.id, s.signature(r)
}

func (s *Signer) signature(r *Record) string {
	m := hmac.New(sha256.New, s.key)
	var n [binary.MaxVarintLen64]byte
	for _, f := range []string{r.Chain, r.Segment, strconv.FormatInt(r.Seq, 10), r.PrevHash} {
		m.Write(n[:binary.PutUvarint(n[:], uint64(len(f)))])
		m.Write([]byte(f))
	}
	return hex.EncodeToString(m.Sum(nil))
}

// Check reports whether a checkpoint row was signed by this signer's key
// at the position it claims.
func (s *Signer) Check(r *Record) bool {
	return r.Kind == KindCheckpoint && r.Mode == s.id && hmac.Equal([]byte(r.Reason), []byte(s.signature(r)))
}

// Checkpoint returns an unlinked checkpoint record
// written by consumer: Link gives it its position, id and signature.
func Checkpoint(consumer string, at time.Time) *Record {
	return &Record{Kind: KindCheckpoint, Path: "checkpoint", Status: StatusOK, Consumer: consumer, At: at.UTC()}
}
