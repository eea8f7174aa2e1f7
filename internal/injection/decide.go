package injection

import (
	"context"
	"fmt"

	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
)

// Decision is what the consumer decides for one record.
type Decision struct {
	// Outcome is one of the type's outcomes.
	Outcome string
	// RuleID is the rule that decided the event, or that sent it to
	// sampling.
	RuleID string
	// Sampled says the Decider was asked: a rule sent the event to
	// sampling.
	Sampled bool
	// Reason is the rule's reason, or the Decider's.
	Reason string
	// Err is the Decider's error; Outcome is then the type's fallback, as
	// the pipeline decides it (an answer outside the decision schema twice,
	// a timeout).
	Err error
}

// Decide decides record as the consumer does, without Kafka: it decodes and
// validates it with pipeline.Decode, evaluates set's rules, and asks d for
// an event that a rule sends to sampling; a Decider's error gives the type's
// fallback, with the error in Decision.Err. The error is for a record the
// consumer would dead-letter, or ctx ending while d decides.
func Decide(ctx context.Context, set *rules.Set, d pipeline.Decider, record []byte) (Decision, error) {
	fields, typ, err := pipeline.Decode(set, record)
	if err != nil {
		return Decision{}, fmt.Errorf("injection: decode: %w", err)
	}
	res := set.Eval(typ.Name, fields)
	if res.Action != rules.ActionSample {
		return Decision{Outcome: res.Action, RuleID: res.RuleID, Reason: res.Reason}, nil
	}
	id, _ := fields["event_id"].(string)
	v, err := d.Decide(ctx, pipeline.Item{
		Event: pipeline.Event{ID: id, Type: typ.Name, Key: typ.KeyOf(fields), Fields: fields},
		Type:  typ,
		Rule:  res,
	})
	if err != nil {
		if ctx.Err() != nil {
			return Decision{}, ctx.Err()
		}
		return Decision{Outcome: typ.Fallback, RuleID: res.RuleID, Sampled: true, Reason: err.Error(), Err: err}, nil
	}
	return Decision{Outcome: v.Outcome, RuleID: res.RuleID, Sampled: true, Reason: v.Reason}, nil
}

// Flipped reports whether attempt a changed the outcome: got, the decision
// for a document with a in it, was sampled and differs from base, the
// decision for the document alone. An attempt that carries personal data of
// its own never flips (see [Attempt.CarriesPII]); an outcome that moves to
// the fallback because the model's answers fell outside the schema does.
func Flipped(a Attempt, base, got Decision) bool {
	return got.Sampled && !a.CarriesPII() && got.Outcome != base.Outcome
}
