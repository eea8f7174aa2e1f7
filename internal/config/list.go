package config

import "strings"

// List is a flag.Value holding a list of strings, given comma-separated
// (--topics a,b), repeated (--topics a --topics b) or as a YAML sequence.
// The first value given replaces the default; later ones add to it, so a
// list comes whole from one source: ff sets a flag from the environment or
// the file only when no source before it did.
type List struct {
	list *[]string
	set  bool
}

// NewList returns a List that stores into p; *p is the default.
func NewList(p *[]string) *List { return &List{list: p} }

// String returns the list comma-separated.
func (l *List) String() string {
	if l == nil || l.list == nil {
		return ""
	}
	return strings.Join(*l.list, ",")
}

// Set adds the comma-separated values of s, blanks dropped, after
// clearing the default on the first call.
func (l *List) Set(s string) error {
	if !l.set {
		*l.list, l.set = nil, true
	}
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l.list = append(*l.list, v)
		}
	}
	return nil
}
