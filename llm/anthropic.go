package llm

import (
	"context"
	"errors"
	"strings"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
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
		block := anthropic.NewTextBlock(m.Text)
		if m.Role == RoleAssistant {
			params.Messages = append(params.Messages, anthropic.NewAssistantMessage(block))
		} else {
			params.Messages = append(params.Messages, anthropic.NewUserMessage(block))
		}
	}

	msg, err := p.messages.New(ctx, params)
	if err != nil {
		var apiErr *anthropic.Error
		if errors.As(err, &apiErr) {
			return Response{}, statusError(anthropicName, apiErr.StatusCode, apiErr.Response, err)
		}
		return Response{}, transportError(anthropicName, err)
	}

	// Thinking and tool blocks are not the answer: keep the text blocks.
	var text strings.Builder
	for _, b := range msg.Content {
		if b.Type == "text" {
			text.WriteString(b.Text)
		}
	}
	resp := Response{
		Text:       text.String(),
		Model:      msg.Model,
		StopReason: anthropicStop(msg.StopReason),
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
	}
	return string(r)
}
