package llm

import (
	"fmt"
	"strings"
)

// ModelRoute maps a model hint to a model. A request's model is chosen in
// this order:
//
//  1. Options.Model, when set, for every request.
//  2. The first route whose Hint occurs, case-insensitively, in a request
//     hint, trying the request's hints in their order of preference and,
//     for each, the routes in table order. So "sonnet" matches the request
//     hint "claude-3-5-sonnet", and a table should list "mini" before
//     "gpt-4o".
//  3. The provider's large default when IntelligencePriority is greater than
//     both CostPriority and SpeedPriority (unset counts as 0), else its small
//     default: triage's questions are short classifications, so cheap and
//     fast wins ties.
//
// Options.Models replaces the routes of step 2; the defaults of step 3 stay
// the provider's. The built-in tables (AnthropicModels, OpenAIModels) also
// map the other provider's family names, as MCP allows a client to do
// ("haiku" asks OpenAI for its small model).
type ModelRoute struct {
	Hint  string
	Model string
}

// Built-in model defaults per provider.
//
// The Anthropic defaults are models that do not think unless asked to:
// thinking tokens count against max_tokens, and the Claude 5.x models,
// which think by default, could spend a small MaxTokens on thinking and
// answer nothing. Choose one of them with Options.Model and a larger
// MaxTokens. (claude-sonnet-4-5 reaches end of life on 2026-11-30.)
//
// OpenAI's gpt-4o family still takes temperature and max_tokens, unlike the
// reasoning models; OpenAI announced its shutdown for 2027-01-14, so pin a
// successor with Options.Model before then.
const (
	AnthropicSmall = "claude-haiku-4-5"
	AnthropicLarge = "claude-sonnet-4-6"
	AnthropicOpus  = "claude-opus-4-7"
	OpenAISmall    = "gpt-4o-mini"
	OpenAILarge    = "gpt-4o"
)

// AnthropicModels returns the anthropic provider's built-in routes.
func AnthropicModels() []ModelRoute {
	return []ModelRoute{
		{Hint: "haiku", Model: AnthropicSmall},
		{Hint: "sonnet", Model: AnthropicLarge},
		{Hint: "opus", Model: AnthropicOpus},
		{Hint: "mini", Model: AnthropicSmall},
		{Hint: "gpt-4o", Model: AnthropicLarge},
	}
}

// OpenAIModels returns the openai provider's built-in routes.
func OpenAIModels() []ModelRoute {
	return []ModelRoute{
		{Hint: "mini", Model: OpenAISmall},
		{Hint: "gpt-4o", Model: OpenAILarge},
		{Hint: "haiku", Model: OpenAISmall},
		{Hint: "sonnet", Model: OpenAILarge},
		{Hint: "opus", Model: OpenAILarge},
	}
}

// modelTable picks a request's model as ModelRoute describes.
type modelTable struct {
	fixed        string
	routes       []ModelRoute // hints lower-cased
	small, large string
}

var (
	anthropicModels = modelTable{routes: AnthropicModels(), small: AnthropicSmall, large: AnthropicLarge}
	openaiModels    = modelTable{routes: OpenAIModels(), small: OpenAISmall, large: OpenAILarge}
)

// newModelTable applies Options.Models and Options.Model to a built-in table.
func newModelTable(builtin modelTable, routes []ModelRoute, fixed string) (modelTable, error) {
	t := builtin
	t.fixed = strings.TrimSpace(fixed)
	if routes == nil {
		routes = builtin.routes
	}
	t.routes = make([]ModelRoute, 0, len(routes))
	for i, r := range routes {
		hint, model := strings.ToLower(strings.TrimSpace(r.Hint)), strings.TrimSpace(r.Model)
		if hint == "" || model == "" {
			return modelTable{}, fmt.Errorf("model route %d (%q -> %q): hint and model must both be set", i, r.Hint, r.Model)
		}
		t.routes = append(t.routes, ModelRoute{Hint: hint, Model: model})
	}
	return t, nil
}

// pick returns the model for p.
func (t modelTable) pick(p Preferences) string {
	if t.fixed != "" {
		return t.fixed
	}
	for _, h := range p.Hints {
		h = strings.ToLower(h)
		for _, r := range t.routes {
			if strings.Contains(h, r.Hint) {
				return r.Model
			}
		}
	}
	if priority(p.IntelligencePriority) > max(priority(p.CostPriority), priority(p.SpeedPriority)) {
		return t.large
	}
	return t.small
}

// priority reads an MCP priority: unset is 0, and values outside 0..1 are
// clamped rather than rejected (they are advisory).
func priority(p *float64) float64 {
	if p == nil {
		return 0
	}
	return min(max(*p, 0), 1)
}
