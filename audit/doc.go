// Package audit owns the audit record: the one row per decision, per
// dead letter, per sampling attempt and per tool call that makes every
// decision traceable.
// Records are emitted to the audit topic as JSON; their identity is
// deterministic (derived from the event and the step), so a replay after a
// crash produces the same audit_id and idempotent storage can drop the copy.
package audit
