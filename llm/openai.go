package llm

import (
	"context"
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
type openaiProvider struct {
	completions openai.ChatCompletionService
	models      modelTable
	legacyMax   bool // send max_tokens instead of max_completion_tokens
	structured  string
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
	}
}

func (p *openaiProvider) Name() string { return openaiName }

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
	params.ResponseFormat = p.responseFormat(req.Schema)
	if req.System != "" {
		params.Messages = append(params.Messages, openai.SystemMessage(req.System))
	}
	for _, m := range req.Messages {
		if m.Role == RoleAssistant {
			params.Messages = append(params.Messages, openai.AssistantMessage(m.Text))
		} else {
			params.Messages = append(params.Messages, openai.UserMessage(m.Text))
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
	resp := Response{
		Text:         choice.Message.Content,
		Model:        c.Model,
		StopReason:   openaiStop(choice.FinishReason),
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
	}
	return r
}
