package loadgen

import (
	"strconv"
	"unicode/utf8"
)

// object is a JSON object with a fixed member order. The generator builds
// events as objects rather than structs because the malformed kinds need to
// drop a member or change its JSON type, and because a fixed order (event_id
// first) keeps the bytes reproducible and leaves the id readable even in a
// truncated record.
type object struct {
	members []member
}

type member struct {
	key string
	val value
}

type valueKind uint8

const (
	kindString valueKind = iota
	kindInt
	kindFloat
)

// value is one JSON scalar; floats carry their number of decimals so amounts
// read like money ("12.50") and the output does not depend on float printing.
type value struct {
	kind valueKind
	s    string
	i    int64
	f    float64
	prec int
}

func str(s string) value                { return value{kind: kindString, s: s} }
func integer(i int64) value             { return value{kind: kindInt, i: i} }
func number(f float64, p int) value     { return value{kind: kindFloat, f: f, prec: p} }
func (o *object) reset()                { o.members = o.members[:0] }
func (o *object) add(k string, v value) { o.members = append(o.members, member{k, v}) }

// set replaces the value of k, or appends k when it is absent.
func (o *object) set(k string, v value) {
	for i := range o.members {
		if o.members[i].key == k {
			o.members[i].val = v
			return
		}
	}
	o.add(k, v)
}

// del removes k and reports whether it was present.
func (o *object) del(k string) bool {
	for i := range o.members {
		if o.members[i].key == k {
			o.members = append(o.members[:i], o.members[i+1:]...)
			return true
		}
	}
	return false
}

// get returns the value of k.
func (o *object) get(k string) (value, bool) {
	for _, m := range o.members {
		if m.key == k {
			return m.val, true
		}
	}
	return value{}, false
}

// size returns an upper bound of the encoded length, to size the buffer once.
func (o *object) size() int {
	n := 2
	for _, m := range o.members {
		n += len(m.key) + len(m.val.s) + 32
	}
	return n
}

func (o *object) appendJSON(b []byte) []byte {
	b = append(b, '{')
	for i, m := range o.members {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, m.key)
		b = append(b, ':')
		switch m.val.kind {
		case kindString:
			b = appendString(b, m.val.s)
		case kindInt:
			b = strconv.AppendInt(b, m.val.i, 10)
		case kindFloat:
			b = strconv.AppendFloat(b, m.val.f, 'f', m.val.prec, 64)
		}
	}
	return append(b, '}')
}

func (o *object) encode() []byte { return o.appendJSON(make([]byte, 0, o.size())) }

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does, so the generator never emits invalid JSON by accident.
// Runs that need no escaping are copied in one append, which matters for
// the megabyte of padding in a BadTooLarge record.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	run := 0 // start of the pending run of bytes copied verbatim
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			if r, n := utf8.DecodeRuneInString(s[i:]); r != utf8.RuneError || n > 1 {
				i += n
				continue
			}
		}
		b = append(b, s[run:i]...)
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default: // invalid UTF-8
			b = append(b, `\ufffd`...)
		}
		i++
		run = i
	}
	b = append(b, s[run:]...)
	return append(b, '"')
}
