// Package injection is a corpus of prompt-injection attempts against the
// document classifier (the document type of rules/default.yaml and
// examples/tickets.yaml), and the few helpers that turn an attempt into a
// hostile event and decide it the way the consumer does.
//
// Each [Attempt] is one piece of untrusted text (an instruction, a forged
// fence, a chat-template role tag, a verdict in the answer's own JSON
// format, an encoding trick) in one language, with the outcome it tries to
// force. [Documents] are the base documents an attempt is placed in: one
// without personal data, one with a phone number. [Document.With] places an
// attempt in a document's text or title and returns the Kafka record value a
// producer would send; [Decide] runs such a record through pipeline.Decode,
// the rules and, when a rule samples it, a pipeline.Decider.
//
// The package's tests run every attempt through the shipped rules file, the
// prompt renderer and the offline provider (llm, "offline"): the fenced data
// cannot be closed from inside, nothing of an attempt lands outside its
// fence, no answer falls outside the decision schema, and no attempt
// changes the offline reading's outcome. The same loop against a real model
// measures how many attempts still flip its decision; see the package
// example for that benchmark, and [Flipped] for what counts.
package injection
