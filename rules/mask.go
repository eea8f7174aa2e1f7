package rules

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"slices"

	"github.com/triage-dev/triage/internal/pii"
)

// The masks a sampling: block may apply to an allow-listed field, so that
// what reaches an LLM is no more than the decision needs.
const (
	// MaskHash replaces the value with "h:" and the first 32 hex digits
	// (128 bits) of its HMAC-SHA256 under the mask key (of a string's bytes,
	// of any other value's JSON): a stable pseudonym that lets the LLM,
	// caches and audits see that two events share a value without seeing
	// it. Without the key, nobody can hash candidate ids to find the one
	// behind a pseudonym, which an unkeyed hash of a short account or
	// device id allows; whoever holds the key can, so it is
	// pseudonymisation, not anonymisation. 128 bits keep pseudonyms apart,
	// which matters because result caches are keyed by them: by the
	// birthday bound, ten million distinct ids collide with a probability
	// of about 16% at 48 bits and a billion of about 3% at 64 bits, while a
	// trillion stay below 10^-14 at 128. A file that uses hash fails to
	// load without a key (see WithMaskKey).
	MaskHash = "hash"
	// MaskRedact replaces the value with "[REDACTED]": the LLM learns only
	// that the field is present.
	MaskRedact = "redact"
	// MaskPII replaces e-mail addresses, IBANs, phone numbers in
	// international (and common North American) formats and Luhn-valid
	// card numbers inside a string, or inside the strings of a list or
	// object, with [EMAIL], [IBAN], [PHONE] and [CARD]: triage's one set of
	// personal-data patterns (internal/pii), which the offline scorer
	// detects with too. The rest of the text is kept, so a classifier still
	// sees that personal data was there. It is pattern matching: names,
	// postal addresses and dates of birth pass through.
	MaskPII = "pii"
)

var maskKinds = []string{MaskHash, MaskRedact, MaskPII}

// MinMaskKeyBytes is the shortest mask key NewMaskKey accepts: 256 bits,
// HMAC-SHA256's own key size.
const MinMaskKeyBytes = 32

// ErrNoMaskKey is wrapped by the error of a file that uses the hash mask
// when no mask key was given (see WithMaskKey).
var ErrNoMaskKey = errors.New("mask hash needs a mask key (--mask-key-file / TRIAGE_MASK_KEY)")

// MaskKey is the secret that keys the hash mask. The zero MaskKey is no
// key: a file that uses hash fails to load with it. Build one with
// NewMaskKey from a configured secret, or RandomMaskKey for pseudonyms that
// need not outlive the process. Printing it, or a struct that holds it,
// does not show the secret.
type MaskKey struct{ s *secret }

// secret holds the key inside a closure: fmt prints a struct's unexported
// fields without calling their String methods, and a func only as its
// address.
type secret struct{ mac func() hash.Hash }

func newMaskKey(b []byte) MaskKey {
	return MaskKey{&secret{func() hash.Hash { return hmac.New(sha256.New, b) }}}
}

// NewMaskKey returns the mask key of the secret b, which must be at least
// MinMaskKeyBytes random bytes and stay secret: whoever has it can test
// candidate values against pseudonyms. The same secret always gives the
// same pseudonyms; a new one (a rotation) gives new pseudonyms for every
// value, so caches and audit trails no longer link events across it. The
// secret is copied.
func NewMaskKey(b []byte) (MaskKey, error) {
	if len(b) < MinMaskKeyBytes {
		return MaskKey{}, fmt.Errorf("rules: mask key: want at least %d bytes, got %d", MinMaskKeyBytes, len(b))
	}
	return newMaskKey(append([]byte(nil), b...)), nil
}

// RandomMaskKey returns a new random key, for the embedded demo and tests:
// its pseudonyms match none made by another process or an earlier run, so
// use it only where nothing that outlives the process (a cache, an audit
// trail) needs to link events by them.
func RandomMaskKey() MaskKey {
	b := make([]byte, MinMaskKeyBytes)
	rand.Read(b) // never returns an error: it crashes the program if it cannot read
	return newMaskKey(b)
}

// String hides the secret.
func (k MaskKey) String() string {
	if k.s == nil {
		return "rules.MaskKey(none)"
	}
	return "rules.MaskKey(secret)"
}

// GoString hides the secret from %#v too.
func (k MaskKey) GoString() string { return k.String() }

// MaskValue returns v masked as kind says (MaskHash, MaskRedact or
// MaskPII), hashing with key; an unknown kind, or hash with the zero key,
// redacts, failing closed. It never modifies v (lists and objects are
// copied) and never panics, whatever v holds. MaskPII leaves numbers,
// bools and timestamps as they are: Parse rejects pii on such fields.
func MaskValue(kind string, v any, key MaskKey) any {
	switch {
	case kind == MaskHash && key.s != nil:
		return hashValue(v, key)
	case kind == MaskPII:
		return scrubValue(v)
	}
	return "[REDACTED]"
}

func hashValue(v any, key MaskKey) string {
	var data []byte
	switch x := v.(type) {
	case string:
		data = []byte(x)
	default:
		var err error
		if data, err = json.Marshal(x); err != nil {
			data = []byte(fmt.Sprintf("%T", x)) // unencodable; not an event value
		}
	}
	mac := key.s.mac()
	mac.Write(data)
	return "h:" + hex.EncodeToString(mac.Sum(nil)[:16])
}

// scrubValue applies pii.Mask to v's strings, copying lists and objects.
func scrubValue(v any) any { return mapStrings(v, pii.Mask) }

// mapStrings applies f to every string in v, copying lists and objects.
func mapStrings(v any, f func(string) string) any {
	switch x := v.(type) {
	case string:
		return f(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = mapStrings(e, f)
		}
		return out
	case []string:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = f(e)
		}
		return out
	case map[string]any:
		// Keys are the sender's text too. A key f leaves alone keeps its
		// name; the others, in order, get f's and a " (n)" suffix when
		// that name is taken, so no value is lost to a collision.
		out := make(map[string]any, len(x))
		var changed []string
		for k, e := range x {
			if f(k) == k {
				out[k] = mapStrings(e, f)
			} else {
				changed = append(changed, k)
			}
		}
		slices.Sort(changed)
		for _, k := range changed {
			base := f(k)
			name := base
			for n := 2; ; n++ {
				if _, taken := out[name]; !taken {
					break
				}
				name = fmt.Sprintf("%s (%d)", base, n)
			}
			out[name] = mapStrings(x[k], f)
		}
		return out
	}
	return v
}
