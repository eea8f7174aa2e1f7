package sampling

// Error is a sampling failure that names the fallback reason recorded with
// the decision (pipeline.FallbackReason reads it).
type Error struct {
	reason string
	msg    string
}

func (e *Error) Error() string { return e.msg }

// FallbackReason is the stable code written to the decision and audit record.
func (e *Error) FallbackReason() string { return e.reason }

// Sampling failures that callers branch on with errors.Is.
var (
	// ErrNoSampler means no sampler was connected within the wait bound.
	ErrNoSampler = &Error{reason: "no_sampler", msg: "sampling: no sampler connected"}
)
