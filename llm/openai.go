package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
)

const (
	openaiName = "openai"
	openaiURL  = "https://api.openai.com/v1/"
)

// openaiProvider calls the Chat Completions API (POST {base}/chat/completions)
// through the official SDK: the API that OpenAI and the OpenAI-compatible
// servers (Ollama, vLLM, llama.cpp, LiteLLM) all speak.
//
// The answer bound goes out as max_completion_tokens to OpenAI itself, which
// deprecated max_tokens and rejects it for reasoning models, and as
// max_tokens to any other base URL, the field every compatible server
// understands. finish_reason "stop" is reported as endTurn even when a stop
// sequence ended the answer: the API does not tell the two apart.
//
// Request.Tools go out as function tools (name, description, parameters),
// Request.ToolChoice as tool_choice ("auto", "required", "none"), an
// assistant's ToolCalls as tool_calls with JSON-string arguments, and a
// user's ToolResults as one role "tool" message each, with tool_call_id,
// before the user's text. finish_reason "tool_calls" is StopToolUse.
//
// The schema and tools: OpenAI itself applies response_format to the text
// answer and lets tool calls through, so requests to it carry both. To any
// other base URL a request that offers tools carries no response_format:
// the compatible servers implement it as a grammar over the whole output
// (llama.cpp, Ollama, vLLM's guided decoding), which leaves the model no
// way to call a tool, or they reject or ignore the pair. The caller
// validates the answer either way, and its corrective round catches one
// that does not fit.
type openaiProvider struct {
	completions openai.ChatCompletionService
	models      modelTable
	legacyMax   bool // send max_tokens instead of max_completion_tokens
	structured  string
	// toolsWithFormat: the server applies response_format to the text
	// answer only, so it may accompany tools (OpenAI itself).
	toolsWithFormat bool
}

func newOpenAI(o Options, models modelTable) *openaiProvider {
	base := o.BaseURL
	if base == "" {
		base = openaiURL
	}
	// Built without openai.NewClient, which reads OPENAI_* variables:
	// configuration comes from Options only.
	opts := []option.RequestOption{
		option.WithBaseURL(base),
		option.WithHTTPClient(o.HTTPClient),
		option.WithMaxRetries(0), // the caller owns retries
	}
	if o.APIKey != "" {
		opts = append(opts, option.WithAPIKey(o.APIKey))
	}
	return &openaiProvider{
		completions: openai.NewChatCompletionService(opts...),
		models:      models,
		legacyMax:   o.BaseURL != "",
		structured:  o.Structured,
		// A BaseURL is a compatible server, even if it points at OpenAI
		// through a gateway: the cautious reading.
		toolsWithFormat: o.BaseURL == "",
	}
}

func (p *openaiProvider) Name() string { return openaiName }

// SupportsTools reports whether the provider offers tools to the model
// (see Provider): always to OpenAI itself, which constrains the text answer
// and lets tool calls through; to a compatible server only when no
// structured output is asked for (Options.Structured "none"). There a
// request with tools would go without its grammar, and the small local
// models such servers run answer free text that fits the schema rarely
// (scripts/bench llm: 0 of 200 without structure, 98 % with it): a
// decision is worth more than a tool.
func (p *openaiProvider) SupportsTools() bool {
	return p.toolsWithFormat || p.structured == StructuredNone
}

func (p *openaiProvider) Complete(ctx context.Context, req Request) (Response, error) {
	maxTokens, err := check(openaiName, req)
	if err != nil {
		return Response{}, err
	}
	params := openai.ChatCompletionNewParams{
		Model:    p.models.pick(req.Preferences),
		Messages: make([]openai.ChatCompletionMessageParamUnion, 0, len(req.Messages)+1),
	}
	if p.legacyMax {
		params.MaxTokens = openai.Int(maxTokens)
	} else {
		params.MaxCompletionTokens = openai.Int(maxTokens)
	}
	if req.Temperature != nil {
		params.Temperature = openai.Float(*req.Temperature)
	}
	if len(req.Stop) > 0 {
		params.Stop = openai.ChatCompletionNewParamsStopUnion{OfStringArray: req.Stop}
	}
	if len(req.Tools) == 0 || p.toolsWithFormat {
		params.ResponseFormat = p.responseFormat(req.Schema)
	}
	if req.System != "" {
		params.Messages = append(params.Messages, openai.SystemMessage(req.System))
	}
	for i, m := range req.Messages {
		msgs, err := openaiMessages(m)
		if err != nil {
			return Response{}, invalidRequest(openaiName, "message %d: %v", i, err)
		}
		params.Messages = append(params.Messages, msgs...)
	}
	if len(req.Tools) > 0 {
		params.Tools = openaiTools(req.Tools)
		if req.ToolChoice != "" {
			params.ToolChoice = openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String(req.ToolChoice)}
		}
	}

	c, err := p.completions.New(ctx, params)
	if err != nil {
		var apiErr *openai.Error
		if errors.As(err, &apiErr) {
			// The SDK's message names only the status; add the body's.
			if apiErr.Message != "" {
				err = fmt.Errorf("%w: %s", err, apiErr.Message)
			}
			return Response{}, statusError(openaiName, apiErr.StatusCode, apiErr.Response, err)
		}
		return Response{}, transportError(openaiName, err)
	}
	if len(c.Choices) == 0 {
		return Response{}, &Error{Provider: openaiName, Err: errors.New("response has no choices")}
	}
	choice := c.Choices[0]
	var calls []ToolCall
	for _, tc := range choice.Message.ToolCalls {
		if tc.Type != "function" {
			continue // custom tools are never offered
		}
		in, err := toolInput(openaiName, tc.Function.Name, []byte(tc.Function.Arguments))
		if err != nil {
			return Response{}, err
		}
		calls = append(calls, ToolCall{ID: tc.ID, Name: tc.Function.Name, Input: in})
	}
	resp := Response{
		Text:         choice.Message.Content,
		Model:        c.Model,
		StopReason:   toolStop(openaiStop(choice.FinishReason), calls),
		ToolCalls:    calls,
		InputTokens:  c.Usage.PromptTokens,
		OutputTokens: c.Usage.CompletionTokens,
	}
	if resp.Model == "" {
		resp.Model = params.Model
	}
	return resp, nil
}

// responseFormat asks for output that follows schema, the way the server
// understands (Options.Structured).
func (p *openaiProvider) responseFormat(schema map[string]any) openai.ChatCompletionNewParamsResponseFormatUnion {
	var f openai.ChatCompletionNewParamsResponseFormatUnion
	switch {
	case schema == nil || p.structured == StructuredNone:
	case p.structured == StructuredJSONObject:
		obj := shared.ResponseFormatJSONObjectParam{}
		obj.SetExtraFields(map[string]any{"schema": schema})
		f.OfJSONObject = &obj
	default:
		f.OfJSONSchema = &shared.ResponseFormatJSONSchemaParam{JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{
			Name: answerSchemaName, Schema: schema, Strict: openai.Bool(true),
		}}
	}
	return f
}

// openaiStop maps a Chat Completions finish_reason to MCP's vocabulary.
func openaiStop(r string) string {
	switch r {
	case "stop":
		return StopEndTurn
	case "length":
		return StopMaxTokens
	case "tool_calls":
		return StopToolUse
	}
	return r
}

// openaiMessages converts one turn: a user turn's tool results become tool
// messages ahead of its text, which is left out when empty; an assistant
// turn carries its tool calls, their arguments as a JSON string ("{}" for
// none). A turn without tool parts is one message, as it always was.
func openaiMessages(m Message) ([]openai.ChatCompletionMessageParamUnion, error) {
	if m.Role == RoleAssistant {
		if len(m.ToolCalls) == 0 {
			return []openai.ChatCompletionMessageParamUnion{openai.AssistantMessage(m.Text)}, nil
		}
		var a openai.ChatCompletionAssistantMessageParam
		if m.Text != "" {
			a.Content.OfString = openai.String(m.Text)
		}
		for _, c := range m.ToolCalls {
			args := []byte("{}")
			if len(c.Input) > 0 {
				var err error
				if args, err = json.Marshal(c.Input); err != nil {
					return nil, fmt.Errorf("tool call %q: arguments: %w", c.Name, err)
				}
			}
			a.ToolCalls = append(a.ToolCalls, openai.ChatCompletionMessageToolCallUnionParam{
				OfFunction: &openai.ChatCompletionMessageFunctionToolCallParam{
					ID: c.ID,
					Function: openai.ChatCompletionMessageFunctionToolCallFunctionParam{
						Name: c.Name, Arguments: string(args),
					},
				},
			})
		}
		return []openai.ChatCompletionMessageParamUnion{{OfAssistant: &a}}, nil
	}
	if len(m.ToolResults) == 0 {
		return []openai.ChatCompletionMessageParamUnion{openai.UserMessage(m.Text)}, nil
	}
	out := make([]openai.ChatCompletionMessageParamUnion, 0, len(m.ToolResults)+1)
	for _, r := range m.ToolResults {
		content := r.Content
		if r.IsError {
			// Tool messages have no error flag: say it in the content.
			content = "error: " + content
		}
		out = append(out, openai.ToolMessage(content, r.CallID))
	}
	if m.Text != "" {
		out = append(out, openai.UserMessage(m.Text))
	}
	return out, nil
}

// openaiTools declares the tools as functions.
func openaiTools(tools []Tool) []openai.ChatCompletionToolUnionParam {
	out := make([]openai.ChatCompletionToolUnionParam, 0, len(tools))
	for _, t := range tools {
		f := shared.FunctionDefinitionParam{Name: t.Name, Parameters: t.InputSchema}
		if t.Description != "" {
			f.Description = openai.String(t.Description)
		}
		out = append(out, openai.ChatCompletionFunctionTool(f))
	}
	return out
}
