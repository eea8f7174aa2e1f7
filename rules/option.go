package rules

// Option configures Parse, Load and Watch. The zero configuration (no
// options) is no mask key.
type Option func(*options)

type options struct {
	maskKey MaskKey
}

// WithMaskKey keys the hash mask with key. Without it (or with the zero
// MaskKey) a file whose sampling: blocks use hash fails to load with
// ErrNoMaskKey, rather than hash guessable ids without a key. Watch
// reloads with the same key, so pseudonyms stay stable across reloads.
func WithMaskKey(key MaskKey) Option {
	return func(o *options) { o.maskKey = key }
}

func newOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}
