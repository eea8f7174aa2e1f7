package llm

import (
	"strings"
	"testing"
)

func TestModelRouting(t *testing.T) {
	p := func(v float64) *float64 { return &v }
	custom := []ModelRoute{{Hint: "fast", Model: "llama3.2:1b"}, {Hint: "Smart", Model: "qwen3:32b"}}
	tests := []struct {
		name   string
		table  modelTable
		routes []ModelRoute
		fixed  string
		prefs  Preferences
		want   string
	}{
		{"anthropic: nothing set is the small default", anthropicModels, nil, "", Preferences{}, AnthropicSmall},
		{"openai: nothing set is the small default", openaiModels, nil, "", Preferences{}, OpenAISmall},
		{"hint as a substring, any case", anthropicModels, nil, "", Preferences{Hints: []string{"Claude-3-5-SONNET-latest"}}, AnthropicLarge},
		{"opus", anthropicModels, nil, "", Preferences{Hints: []string{"claude-opus"}}, AnthropicOpus},
		{"first matching request hint wins", anthropicModels, nil, "",
			Preferences{Hints: []string{"gemini-pro", "haiku", "opus"}}, AnthropicSmall},
		{"table order decides within one hint", openaiModels, nil, "", Preferences{Hints: []string{"gpt-4o-mini"}}, OpenAISmall},
		{"other provider's family", openaiModels, nil, "", Preferences{Hints: []string{"claude-3-sonnet"}}, OpenAILarge},
		{"hints beat priorities", anthropicModels, nil, "",
			Preferences{Hints: []string{"haiku"}, IntelligencePriority: p(1)}, AnthropicSmall},
		{"intelligence above cost and speed is large", anthropicModels, nil, "",
			Preferences{Hints: []string{"unknown"}, IntelligencePriority: p(0.8), CostPriority: p(0.3), SpeedPriority: p(0.7)}, AnthropicLarge},
		{"intelligence alone is large", openaiModels, nil, "", Preferences{IntelligencePriority: p(0.1)}, OpenAILarge},
		{"a tie is small", anthropicModels, nil, "",
			Preferences{IntelligencePriority: p(0.5), CostPriority: p(0.5)}, AnthropicSmall},
		{"speed first is small", anthropicModels, nil, "", Preferences{SpeedPriority: p(0.9), IntelligencePriority: p(0.4)}, AnthropicSmall},
		{"out-of-range priorities are clamped", anthropicModels, nil, "",
			Preferences{IntelligencePriority: p(7), CostPriority: p(1.5)}, AnthropicSmall},
		{"custom routes replace the built-in ones", openaiModels, custom, "",
			Preferences{Hints: []string{"gpt-4o-mini", "smart-model"}}, "qwen3:32b"},
		{"custom routes keep the provider's defaults", openaiModels, custom, "",
			Preferences{Hints: []string{"gpt-4o"}, IntelligencePriority: p(1)}, OpenAILarge},
		{"fixed model overrides everything", anthropicModels, custom, " claude-opus-5-5 ",
			Preferences{Hints: []string{"fast"}, IntelligencePriority: p(1)}, "claude-opus-5-5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table, err := newModelTable(tt.table, tt.routes, tt.fixed)
			if err != nil {
				t.Fatal(err)
			}
			if got := table.pick(tt.prefs); got != tt.want {
				t.Errorf("pick(%+v) = %q, want %q", tt.prefs, got, tt.want)
			}
		})
	}
}

func TestModelRoutesInvalid(t *testing.T) {
	for _, routes := range [][]ModelRoute{
		{{Hint: "", Model: "m"}},
		{{Hint: "h", Model: " "}},
		{{Hint: "ok", Model: "m"}, {Hint: " ", Model: "m"}},
	} {
		if _, err := newModelTable(openaiModels, routes, ""); err == nil || !strings.Contains(err.Error(), "must both be set") {
			t.Errorf("routes %+v: err = %v, want a missing hint or model", routes, err)
		}
	}
}
