package audit

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"time"
	"unicode/utf8"
)

// The sink decodes every record of the audit and decisions topics, and
// json.Unmarshal's reflection (with a string allocated per field) was the
// most CPU it spent on a record. Nearly every record is as AppendJSON
// (or encoding/json) wrote it: an object of the struct's own member names,
// spelt as the tags spell them. Those are read here by a plain scanner,
// every string without escapes a slice of one copy of the value; anything
// else (another spelling of a name, null, a surrogate escape, a number out
// of range, invalid UTF-8, bad JSON) makes the scanner give up, and
// json.Unmarshal decodes the value as before. The scanner accepts only
// what json.Unmarshal reads to the same values (FuzzDecodePlain holds the
// two equal), so which of them read a record never shows.

// plainScanner reads a JSON object of plain members from b (and s, the
// same bytes as one string, which the strings read are slices of).
type plainScanner struct {
	b []byte
	s string
	i int
}

func newPlainScanner(value []byte) plainScanner {
	return plainScanner{b: value, s: string(value)}
}

// object reads the object, calling member with each member's name once
// the scanner is at its value; member reads the value and says whether it
// could. object reports whether the whole value was a plain object.
func (p *plainScanner) object(member func(name string) bool) bool {
	p.space()
	if !p.take('{') {
		return false
	}
	p.space()
	if !p.take('}') {
		for {
			name, ok := p.str()
			p.space()
			if !ok || !p.take(':') {
				return false
			}
			p.space()
			if !member(name) {
				return false
			}
			p.space()
			if p.take('}') {
				break
			}
			if !p.take(',') {
				return false
			}
			p.space()
		}
	}
	p.space()
	return p.i == len(p.b) // nothing after the object
}

func (p *plainScanner) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *plainScanner) take(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a string of valid UTF-8 without control characters. One
// without escapes (nearly all) is a slice of the value; one with escapes
// other than of a surrogate is unescaped into a string of its own.
func (p *plainScanner) str() (string, bool) {
	if !p.take('"') {
		return "", false
	}
	start := p.i
	n := bytes.IndexByte(p.b[start:], '"')
	if n < 0 {
		return "", false
	}
	raw := p.b[start : start+n]
	if bytes.IndexByte(raw, '\\') >= 0 {
		return p.escaped(start) // and the quote found may be one of them
	}
	p.i = start + n + 1
	return p.s[start : start+n], printableASCII(raw) || noControl(raw) && utf8.Valid(raw)
}

// escaped reads the rest of a string that has escapes, from start.
func (p *plainScanner) escaped(start int) (string, bool) {
	for p.i = start; p.i < len(p.b); p.i++ {
		switch p.b[p.i] {
		case '"':
			raw := p.b[start:p.i]
			p.i++
			if !noControl(raw) {
				return "", false
			}
			v, ok := unescape(p.s[start : p.i-1])
			return v, ok && utf8.ValidString(v)
		case '\\':
			p.i++ // the escaped byte, which may be a quote
		}
	}
	return "", false
}

// printableASCII reports whether s is all printable ASCII, eight bytes at
// a time: a byte under 0x20 borrows into its top bit when 0x20 is taken
// from it, and a byte over 0x7f has it set already. (A borrow may also set
// the next byte's top bit, which only repeats the answer.)
func printableASCII(s []byte) bool {
	for len(s) >= 8 {
		x := binary.LittleEndian.Uint64(s)
		if (x|(x-0x2020202020202020))&0x8080808080808080 != 0 {
			return false
		}
		s = s[8:]
	}
	for _, c := range s {
		if c < 0x20 || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// noControl reports whether s has no byte under 0x20, which a JSON string
// may not hold unescaped.
func noControl(s []byte) bool {
	for _, c := range s {
		if c < 0x20 {
			return false
		}
	}
	return true
}

// unescape reads a JSON string's escapes. A \u escape of a surrogate,
// which json.Unmarshal pairs or replaces, is left to it.
func unescape(raw string) (string, bool) {
	buf := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		if raw[i] != '\\' {
			buf = append(buf, raw[i])
			i++
			continue
		}
		if i+1 == len(raw) {
			return "", false
		}
		switch e := raw[i+1]; e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			if i+6 > len(raw) {
				return "", false
			}
			v, err := strconv.ParseUint(raw[i+2:i+6], 16, 16)
			if err != nil || 0xD800 <= v && v <= 0xDFFF {
				return "", false
			}
			buf = utf8.AppendRune(buf, rune(v))
			i += 6
			continue
		default:
			return "", false
		}
		i += 2
	}
	return string(buf), true
}

// number reads a JSON number and returns it as written, and whether it is
// an integer (no fraction, no exponent).
func (p *plainScanner) number() (lit []byte, integer, ok bool) {
	start := p.i
	p.take('-')
	switch {
	case p.take('0'):
	case p.digits() == 0:
		return nil, false, false
	}
	integer = true
	if p.take('.') {
		if p.digits() == 0 {
			return nil, false, false
		}
		integer = false
	}
	if p.take('e') || p.take('E') {
		if !p.take('+') {
			p.take('-')
		}
		if p.digits() == 0 {
			return nil, false, false
		}
		integer = false
	}
	return p.b[start:p.i], integer, true
}

func (p *plainScanner) digits() int {
	start := p.i
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i - start
}

// int reads an integer that fits in bits bits.
func (p *plainScanner) int(bits int) (int64, bool) {
	lit, integer, ok := p.number()
	if !ok || !integer {
		return 0, false
	}
	v, err := strconv.ParseInt(string(lit), 10, bits) // no allocation: the conversion does not escape
	return v, err == nil
}

// float reads a number that is a finite float64.
func (p *plainScanner) float() (float64, bool) {
	lit, _, ok := p.number()
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(lit), 64)
	return v, err == nil
}

func (p *plainScanner) bool() (bool, bool) {
	switch {
	case p.word("true"):
		return true, true
	case p.word("false"):
		return false, true
	}
	return false, false
}

func (p *plainScanner) word(w string) bool {
	if len(p.s)-p.i >= len(w) && p.s[p.i:p.i+len(w)] == w {
		p.i += len(w)
		return true
	}
	return false
}

// time reads an RFC 3339 time of the one shape AppendJSON writes
// (2006-01-02T15:04:05, an optional fraction of 1 to 9 digits, Z or an
// offset ±hh:mm in range): within it time's parser and the json package's
// stricter checks agree.
func (p *plainScanner) time() (time.Time, bool) {
	start := p.i + 1
	v, ok := p.str()
	if !ok || !rfc3339Shape(v) {
		return time.Time{}, false
	}
	var t time.Time
	// UnmarshalText is what json.Unmarshal calls: the same parser, the
	// same location for an offset.
	if err := t.UnmarshalText(p.b[start : start+len(v)]); err != nil {
		return time.Time{}, false
	}
	return t, true
}

func rfc3339Shape(v string) bool {
	const date = "dddd-dd-ddTdd:dd:dd"
	if len(v) < len(date)+1 {
		return false
	}
	for i := range len(date) {
		if date[i] == 'd' && !isDigit(v[i]) || date[i] != 'd' && v[i] != date[i] {
			return false
		}
	}
	rest := v[len(date):]
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && isDigit(rest[n]) {
			n++
		}
		if n == 1 || n > 10 {
			return false
		}
		rest = rest[n:]
	}
	switch {
	case rest == "Z":
		return true
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' &&
		isDigit(rest[1]) && isDigit(rest[2]) && isDigit(rest[4]) && isDigit(rest[5]):
		return (rest[1]-'0')*10+rest[2]-'0' < 24 && (rest[4]-'0')*10+rest[5]-'0' < 60
	}
	return false
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// decodePlain reads value into r, which is zero, if value is a plain
// object of r's members; it reports whether it was.
func (r *Record) decodePlain(value []byte) bool {
	p := newPlainScanner(value)
	return p.object(func(name string) bool {
		var ok bool
		switch name {
		case "audit_id":
			r.AuditID, ok = p.str()
		case "kind":
			var s string
			s, ok = p.str()
			r.Kind = Kind(s)
		case "event_id":
			r.EventID, ok = p.str()
		case "type":
			r.Type, ok = p.str()
		case "tenant_id":
			r.TenantID, ok = p.str()
		case "user_id":
			r.UserID, ok = p.str()
		case "key":
			r.Key, ok = p.str()
		case "path":
			r.Path, ok = p.str()
		case "rule_id":
			r.RuleID, ok = p.str()
		case "outcome":
			r.Outcome, ok = p.str()
		case "reason":
			r.Reason, ok = p.str()
		case "status":
			var s string
			s, ok = p.str()
			r.Status = Status(s)
		case "mode":
			r.Mode, ok = p.str()
		case "sampler_session":
			r.SamplerSession, ok = p.str()
		case "model_requested":
			r.ModelRequested, ok = p.str()
		case "model_answered":
			r.ModelAnswered, ok = p.str()
		case "input_tokens":
			r.InputTokens, ok = p.int(64)
		case "output_tokens":
			r.OutputTokens, ok = p.int(64)
		case "request_summary":
			r.RequestSummary, ok = p.str()
		case "response_summary":
			r.ResponseSummary, ok = p.str()
		case "tier":
			r.Tier, ok = p.str()
		case "tool":
			r.Tool, ok = p.str()
		case "cache_key":
			r.CacheKey, ok = p.str()
		case "source_audit_id":
			r.SourceAuditID, ok = p.str()
		case "tokens_estimated":
			r.TokensEstimated, ok = p.bool()
		case "channel":
			r.Channel, ok = p.str()
		case "caller":
			r.Caller, ok = p.str()
		case "latency_ms":
			r.LatencyMS, ok = p.float()
		case "at":
			r.At, ok = p.time()
		case "topic":
			r.Topic, ok = p.str()
		case "partition":
			var v int64
			v, ok = p.int(32)
			r.Partition = int32(v)
		case "offset":
			r.Offset, ok = p.int(64)
		case "consumer":
			r.Consumer, ok = p.str()
		case "chain":
			r.Chain, ok = p.str()
		case "segment":
			r.Segment, ok = p.str()
		case "seq":
			r.Seq, ok = p.int(64)
		case "prev_hash":
			r.PrevHash, ok = p.str()
		case "hash":
			r.Hash, ok = p.str()
		}
		return ok // false for a name of another spelling, or one the record has not
	})
}

// decodePlain reads value into d, which is zero, if value is a plain
// object of d's members; it reports whether it was.
func (d *Decision) decodePlain(value []byte) bool {
	p := newPlainScanner(value)
	return p.object(func(name string) bool {
		var ok bool
		switch name {
		case "event_id":
			d.EventID, ok = p.str()
		case "type":
			d.Type, ok = p.str()
		case "tenant_id":
			d.TenantID, ok = p.str()
		case "key":
			d.Key, ok = p.str()
		case "outcome":
			d.Outcome, ok = p.str()
		case "path":
			d.Path, ok = p.str()
		case "rule_id":
			d.RuleID, ok = p.str()
		case "reason":
			d.Reason, ok = p.str()
		case "model":
			d.Model, ok = p.str()
		case "tier":
			d.Tier, ok = p.str()
		case "score":
			var v float64
			if v, ok = p.float(); ok {
				d.Score = &v
			}
		case "latency_ms":
			d.LatencyMS, ok = p.float()
		case "decided_at":
			d.DecidedAt, ok = p.time()
		}
		return ok
	})
}
