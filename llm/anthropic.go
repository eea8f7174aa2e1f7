package llm

import (
	"context"
	"errors"
	"strings"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/anthropics/anthropic-sdk-go/v2/shared/constant"
)

const anthropicName = "anthropic"

// anthropicProvider calls the Anthropic Messages API (POST /v1/messages)
// through the official SDK, which speaks API version 2026-10-21.
//
// That API version removed the sampling parameters: a request carrying
// temperature is rejected with 400 even at its default value, so
// Request.Temperature is not sent. Claude samples at its default (1.0).
// Stop sequences, max_tokens and the system prompt are sent as given, and
// Request.Schema as output_config.format (structured outputs).
//
// Request.Tools go out as custom tools (name, description, input_schema),
// Request.ToolChoice as tool_choice (auto, any for required, none), an
// assistant's ToolCalls as tool_use blocks after its text, and a user's
// ToolResults as tool_result blocks before its text (the API wants them
// first). The schema stays in output_config.format when tools are offered:
// the API applies it to the text answer only and lets tool_use blocks
// through, and documents both features as usable in one request
// (platform.claude.com, "Structured outputs").
type anthropicProvider struct {
	messages anthropic.MessageService
	models   modelTable
}

func newAnthropic(o Options, models modelTable) (*anthropicProvider, error) {
	if strings.TrimSpace(o.APIKey) == "" {
		return nil, errors.New("llm: anthropic: no API key")
	}
	opts := []option.RequestOption{
		// Configuration comes from Options only: no ANTHROPIC_* variables,
		// no profile files.
		option.WithoutEnvironmentDefaults(),
		option.WithAPIKey(o.APIKey),
		option.WithHTTPClient(o.HTTPClient),
		option.WithMaxRetries(0), // the caller owns retries
	}
	if o.BaseURL != "" {
		opts = append(opts, option.WithBaseURL(o.BaseURL))
	}
	client := anthropic.NewClient(opts...)
	return &anthropicProvider{messages: client.Messages, models: models}, nil
}

func (p *anthropicProvider) Name() string { return anthropicName }

// SupportsTools reports that Request.Tools reach the model (see
// Provider).
func (p *anthropicProvider) SupportsTools() bool { return true }

func (p *anthropicProvider) Complete(ctx context.Context, req Request) (Response, error) {
	maxTokens, err := check(anthropicName, req)
	if err != nil {
		return Response{}, err
	}
	params := anthropic.MessageNewParams{
		Model:         p.models.pick(req.Preferences),
		MaxTokens:     maxTokens,
		Messages:      make([]anthropic.MessageParam, 0, len(req.Messages)),
		StopSequences: req.Stop,
	}
	if req.Schema != nil {
		// Structured outputs: the answer is one JSON text block that
		// follows the schema.
		params.OutputConfig.Format = anthropic.JSONOutputFormatParam{Schema: req.Schema}
	}
	if req.System != "" {
		params.System = []anthropic.TextBlockParam{{Text: req.System}}
	}
	for _, m := range req.Messages {
		params.Messages = append(params.Messages, anthropicMessage(m))
	}
	if len(req.Tools) > 0 {
		params.Tools = anthropicTools(req.Tools)
		params.ToolChoice = anthropicToolChoice(req.ToolChoice)
	}

	msg, err := p.messages.New(ctx, params)
	if err != nil {
		var apiErr *anthropic.Error
		if errors.As(err, &apiErr) {
			return Response{}, statusError(anthropicName, apiErr.StatusCode, apiErr.Response, err)
		}
		return Response{}, transportError(anthropicName, err)
	}

	// Thinking blocks are not the answer: keep the text and the tool calls.
	var text strings.Builder
	var calls []ToolCall
	for _, b := range msg.Content {
		switch b.Type {
		case "text":
			text.WriteString(b.Text)
		case "tool_use":
			in, err := toolInput(anthropicName, b.Name, b.Input)
			if err != nil {
				return Response{}, err
			}
			calls = append(calls, ToolCall{ID: b.ID, Name: b.Name, Input: in})
		}
	}
	resp := Response{
		Text:       text.String(),
		Model:      msg.Model,
		StopReason: toolStop(anthropicStop(msg.StopReason), calls),
		ToolCalls:  calls,
		// input_tokens counts only the uncached part of the prompt.
		InputTokens:  msg.Usage.InputTokens + msg.Usage.CacheCreationInputTokens + msg.Usage.CacheReadInputTokens,
		OutputTokens: msg.Usage.OutputTokens,
	}
	if resp.Model == "" {
		resp.Model = params.Model
	}
	return resp, nil
}

// anthropicStop maps a Messages API stop_reason to MCP's vocabulary.
func anthropicStop(r anthropic.StopReason) string {
	switch r {
	case anthropic.StopReasonEndTurn:
		return StopEndTurn
	case anthropic.StopReasonMaxTokens:
		return StopMaxTokens
	case anthropic.StopReasonStopSequence:
		return StopSequence
	case anthropic.StopReasonToolUse:
		return StopToolUse
	}
	return string(r)
}

// anthropicMessage converts one turn. A turn without tool blocks is one
// text block, as it always was; with them, an empty text is left out (the
// API rejects empty text blocks).
func anthropicMessage(m Message) anthropic.MessageParam {
	if len(m.ToolCalls) == 0 && len(m.ToolResults) == 0 {
		if m.Role == RoleAssistant {
			return anthropic.NewAssistantMessage(anthropic.NewTextBlock(m.Text))
		}
		return anthropic.NewUserMessage(anthropic.NewTextBlock(m.Text))
	}
	blocks := make([]anthropic.ContentBlockParamUnion, 0, len(m.ToolResults)+1+len(m.ToolCalls))
	for _, r := range m.ToolResults {
		blocks = append(blocks, anthropic.NewToolResultBlock(r.CallID, r.Content, r.IsError))
	}
	if m.Text != "" {
		blocks = append(blocks, anthropic.NewTextBlock(m.Text))
	}
	for _, c := range m.ToolCalls {
		in := c.Input
		if in == nil {
			in = map[string]any{} // the API wants an object, never null
		}
		blocks = append(blocks, anthropic.NewToolUseBlock(c.ID, in, c.Name))
	}
	if m.Role == RoleAssistant {
		return anthropic.NewAssistantMessage(blocks...)
	}
	return anthropic.NewUserMessage(blocks...)
}

// anthropicTools declares the tools. The SDK models input_schema as
// properties, required and extra fields, with type fixed to "object";
// everything else in the schema travels as an extra field.
func anthropicTools(tools []Tool) []anthropic.ToolUnionParam {
	out := make([]anthropic.ToolUnionParam, 0, len(tools))
	for _, t := range tools {
		// Type set, not elided: an all-zero schema would be omitted, and
		// the API requires input_schema.
		schema := anthropic.ToolInputSchemaParam{Type: constant.ValueOf[constant.Object]()}
		for k, v := range t.InputSchema {
			switch k {
			case "type":
			case "properties":
				schema.Properties = v
			case "required":
				schema.Required = requiredNames(v)
			default:
				if schema.ExtraFields == nil {
					schema.ExtraFields = map[string]any{}
				}
				schema.ExtraFields[k] = v
			}
		}
		tool := anthropic.ToolParam{Name: t.Name, InputSchema: schema}
		if t.Description != "" {
			tool.Description = anthropic.String(t.Description)
		}
		out = append(out, anthropic.ToolUnionParam{OfTool: &tool})
	}
	return out
}

// requiredNames reads a schema's "required": []string in process, []any
// after a JSON round trip.
func requiredNames(v any) []string {
	switch r := v.(type) {
	case []string:
		return r
	case []any:
		names := make([]string, 0, len(r))
		for _, n := range r {
			if s, ok := n.(string); ok {
				names = append(names, s)
			}
		}
		return names
	}
	return nil
}

// anthropicToolChoice maps MCP's tool choice; "" leaves the API's default
// (auto).
func anthropicToolChoice(choice string) anthropic.ToolChoiceUnionParam {
	switch choice {
	case ToolChoiceAuto:
		return anthropic.ToolChoiceUnionParam{OfAuto: &anthropic.ToolChoiceAutoParam{}}
	case ToolChoiceRequired:
		return anthropic.ToolChoiceUnionParam{OfAny: &anthropic.ToolChoiceAnyParam{}}
	case ToolChoiceNone:
		return anthropic.ToolChoiceUnionParam{OfNone: &anthropic.ToolChoiceNoneParam{}}
	}
	return anthropic.ToolChoiceUnionParam{}
}
