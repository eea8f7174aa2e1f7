package rules

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// maxUserBytes bounds a rendered user message: a template ranging over a
// large list must not turn one event into a megabyte of tokens. Longer
// output is cut at a character boundary and ends with truncatedMarker.
const maxUserBytes = 32 << 10

const truncatedMarker = "\n[truncated]"

// maxEcho bounds how much of a bad answer CorrectivePrompt quotes back.
const maxEcho = 256

// ErrPrompt is wrapped by the error of [Type.Prompt]: the type's template
// could not render this event (a comparison on a value of another type, an
// empty message), or the type has no sampling: block. Retrying will not help; decide the event with the type's
// fallback and put the error in the audit record.
var ErrPrompt = errors.New("cannot render the sampling prompt")

// Prompt is one sampling request for one event, built by [Type.Prompt]:
// everything an MCP sampling/createMessage request (or a direct provider
// call) needs besides the event's metadata. Its slices, pointers and maps
// are the caller's to keep; Context's unmasked values are the event's own,
// so treat them as read-only.
type Prompt struct {
	// System is the type's system prompt followed by the answer-format
	// instruction, which asks for exactly one JSON object
	// {"outcome": one of the type's outcomes, "reason": one sentence,
	// "score": confidence from 0 to 1} and nothing else.
	System string
	// User is the user message: the type's template rendered over the
	// allow-listed, masked fields, without trailing white space, at most
	// 32 KiB (longer output is cut and ends with "[truncated]").
	User string
	// Model is the rule's override from rule_models, or else the tier's
	// model, or else the type's.
	Model ModelPrefs
	// Tier is the event's risk tier (Type.TierOf): "" when the type has
	// no tiers.
	Tier string
	// Temperature, MaxTokens, Stop and Timeout are the type's; see Sampling.
	Temperature *float64
	MaxTokens   int
	Stop        []string
	Timeout     time.Duration
	// Tools are the type's tools the LLM may call (registry names, see
	// [Tools]), and MaxToolRounds bounds the rounds of calls; see Sampling.
	Tools         []string
	MaxToolRounds int
	// Context holds the allow-listed fields the event has, masked: what the
	// template could show the LLM. Key result caches and write audit
	// summaries with it, never with the raw event.
	Context map[string]any
}

// Prompt renders the sampling request for ev, an event that Validate has
// normalised and that rule ruleID (a Result's RuleID) sent to sampling.
// Only the allow-listed fields reach the template, each masked as the type
// says; an allow-listed field the event lacks is nil to the template, so
// `{{with .x}}` and `{{if .x}}` test for it. A ruleID without an override,
// such as a rule that failed at run time, gets the type's model.
//
// The error wraps ErrPrompt. Prompt never modifies ev and is safe for
// concurrent use.
func (t *Type) Prompt(ev map[string]any, ruleID string) (Prompt, error) {
	s := &t.Sampling
	if s.tmpl == nil {
		// Parse requires a sampling: block of every type that can be
		// sampled; without one, nothing may reach an LLM.
		return Prompt{}, fmt.Errorf("rules: %s prompt: %w: the type has no sampling: block", t.Name, ErrPrompt)
	}
	ctx := t.Masked(ev)
	data := make(map[string]any, len(s.Fields))
	for _, name := range s.Fields {
		v, ok := ctx[name]
		if !ok {
			data[name] = nil
			continue
		}
		data[name] = display(unfenced(v))
	}
	user, err := s.render(data)
	// A template written as a YAML block ends with a newline that means
	// nothing to the LLM; without it, prompts compare and cache cleanly.
	user = strings.TrimRight(user, " \t\r\n")
	if err == nil && user == "" {
		err = errors.New("the template rendered an empty message")
	}
	if err != nil {
		return Prompt{}, fmt.Errorf("rules: %s prompt: %w: %w", t.Name, ErrPrompt, err)
	}
	model, tierName := s.modelFor(ruleID), ""
	if tier := t.tierOf(ev); tier != nil {
		tierName = tier.Name
		if _, override := s.RuleModels[ruleID]; !override {
			model = tier.Model.clone()
		}
	}
	return Prompt{
		System:        s.system,
		User:          user,
		Model:         model,
		Tier:          tierName,
		Temperature:   clonePtr(s.Temperature),
		MaxTokens:     s.MaxTokens,
		Stop:          append([]string(nil), s.Stop...),
		Timeout:       s.Timeout,
		Context:       ctx,
		Tools:         append([]string(nil), s.Tools...),
		MaxToolRounds: s.MaxToolRounds,
	}, nil
}

// CorrectivePrompt is the user message of the one corrective retry after an
// answer that did not parse into the type's decision schema: it says what
// was wrong (problem, from the answer's validation), quotes the start of the
// bad answer, and repeats the schema. Send it after the bad answer, in the
// same conversation.
func (t *Type) CorrectivePrompt(badAnswer, problem string) string {
	problem = strings.TrimRight(strings.TrimSpace(cutString(problem, maxEcho)), ".")
	if problem == "" {
		problem = "it is not the JSON object asked for"
	}
	return "Your previous answer could not be used: " + problem + ".\n" +
		"It was: " + quoteCut(badAnswer, maxEcho) + "\n" +
		"Answer again with exactly one JSON object and nothing else, with these keys:\n" + t.answerSchema()
}

// render executes the template into a buffer bounded by maxUserBytes.
func (s *Sampling) render(data map[string]any) (string, error) {
	w := &boundedWriter{limit: maxUserBytes}
	if err := s.tmpl.Execute(w, data); err != nil && !errors.Is(err, errFull) {
		return "", err
	}
	if !w.full {
		return w.b.String(), nil
	}
	return cutString(w.b.String(), maxUserBytes-len(truncatedMarker)) + truncatedMarker, nil
}

// errFull stops a template's execution once its output is over the limit.
// text/template hands a writer's error back unwrapped.
var errFull = errors.New("output limit reached")

// boundedWriter keeps the first limit bytes written to it, then fails.
type boundedWriter struct {
	b     strings.Builder
	limit int
	full  bool
}

func (w *boundedWriter) Write(p []byte) (int, error) {
	if room := w.limit - w.b.Len(); len(p) > room {
		w.b.Write(p[:room])
		w.full = true
		return room, errFull
	}
	return w.b.Write(p)
}

// cutString returns s cut to at most n bytes, at a character boundary.
func cutString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
