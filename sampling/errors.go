package sampling

import "github.com/triage-dev/triage/pipeline"

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
	// ErrNoSampler means no sampler took the item within the queue wait.
	ErrNoSampler = &Error{reason: pipeline.FallbackNoSampler, msg: "sampling: no sampler took the item in time"}
	// ErrLeaseExpired means samplers leased the item and did not answer in
	// time, on the first lease and on the one re-queue.
	ErrLeaseExpired = &Error{reason: pipeline.FallbackLeaseExpired, msg: "sampling: lease expired"}
	// ErrInvalidAnswer means the answer did not fit the decision schema, even
	// after one corrective follow-up.
	ErrInvalidAnswer = &Error{reason: pipeline.FallbackInvalid, msg: "sampling: answer does not fit the decision schema"}
	// ErrClosed means the pool is shutting down.
	ErrClosed = &Error{reason: pipeline.FallbackError, msg: "sampling: pool closed"}
)
