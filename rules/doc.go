// Package rules owns triage's policy: the YAML rules file that describes
// every event type, the schema check that turns a decoded JSON event into
// typed values, the CEL conditions that decide an event in microseconds, the
// per-rule hit counters, and hot reload of the file.
//
// A rules file has one section per event type. The section is the whole
// definition of the type — its key field, record size limit, field schema,
// decision outcomes, conservative fallback, default, named parameters and
// ordered rules — so adding an event type is a YAML change only:
//
//	types:
//	  transaction:
//	    key: account_id
//	    fields:
//	      account_id: {type: string, required: true}
//	      amount: {type: number, required: true, min: 0}
//	    outcomes: [allow, review, block]
//	    fallback: review
//	    default: allow
//	    params:
//	      large_amount: 5000
//	    rules:
//	      - id: sample_large
//	        when: event.amount >= params.large_amount
//	        action: sample
//	        reason: large amount
//	    sampling:
//	      fields: [amount]
//
// The flow for one event is: look the type up with [Set.Type], check and
// normalise the event with [Type.Validate] (a [*FieldError] names the DLQ
// reason), then decide with [Set.Eval]. A [Result] whose Action is
// [ActionSample] is ambiguous and goes on to sampling; any other action is a
// final outcome.
//
// A type's sampling: block says how an ambiguous event is put to an LLM:
// the system prompt, an allow-list of the fields the LLM may see,
// a mask per field (hash, redact, or pii to replace e-mail addresses,
// IBANs, phone and card numbers in text), a text/template for the user
// message, MCP model preferences (per rule if need be), temperature,
// max_tokens, stop sequences and a timeout. [Type.Prompt] renders the
// request for one event; the template is compiled and dry-run at load, so a
// template that reads a field outside the allow-list fails the file. There
// is no default allow-list: a type that can be sampled (its default or a
// rule samples, or it has a rule at all, since a condition that fails at
// run time samples its event) without a block that lists its fields fails
// the file, naming the type and its line. Without a template the block gets
// a generic one: a "name: value" line per allow-listed field.
//
// The hash mask is a keyed pseudonym (HMAC-SHA256), so the caller passes
// the secret: Parse, Load and Watch take [WithMaskKey], and a file that
// uses hash fails to load without one ([ErrNoMaskKey]) rather than hash
// guessable ids with no key. Watch reloads with the same key.
//
// Conditions are CEL expressions (https://cel.dev) over two variables,
// `event` and `params`, both map(string, dyn). They are compiled once, when
// the file is parsed; a file with a bad condition, an unknown action, a
// reference to an undeclared field or parameter, or a condition that is not
// a bool is rejected as a whole, with the file, line, type and rule id in
// the error. A [Set] is immutable and safe for concurrent use; [Live] swaps
// in a new Set when the file changes and keeps the old one when the new file
// is bad.
//
// The package imports neither Kafka nor MCP: callers hand it decoded events
// and get values back.
package rules
