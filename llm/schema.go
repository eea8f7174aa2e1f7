package llm

// Ways of asking an OpenAI-compatible server for output that follows a
// schema (Options.Structured).
const (
	// StructuredJSONSchema sends response_format {"type": "json_schema"}
	// with the schema, strict: OpenAI's structured outputs.
	StructuredJSONSchema = "json_schema"
	// StructuredJSONObject sends response_format {"type": "json_object",
	// "schema": ...}: llama-cpp-python's server turns the schema into a
	// grammar but accepts no json_schema type.
	StructuredJSONObject = "json_object"
	// StructuredNone sends no response_format: the answer is free text.
	StructuredNone = "none"
)

// answerSchemaName names the schema where a provider wants a name.
const answerSchemaName = "decision"

// AnswerSchema is the JSON Schema of triage's answer for a decision schema
// with the given outcomes: {"outcome": one of outcomes, "score": a number,
// "reason": a string}, nothing else. It is the common subset the
// providers' constrained decoders accept (OpenAI strict mode wants every
// property required and no additional ones; Anthropic and llama.cpp's
// grammar take no numeric bounds), so the score's range and the reason's
// length are in the descriptions and checked by the caller.
func AnswerSchema(outcomes []string) map[string]any {
	enum := make([]any, len(outcomes))
	for i, o := range outcomes {
		enum[i] = o
	}
	return map[string]any{
		"type": "object",
		"properties": map[string]any{
			"outcome": map[string]any{"type": "string", "enum": enum},
			"score":   map[string]any{"type": "number", "description": "confidence in the outcome, from 0 to 1"},
			"reason":  map[string]any{"type": "string", "description": "one short sentence"},
		},
		"required":             []any{"outcome", "score", "reason"},
		"additionalProperties": false,
	}
}
