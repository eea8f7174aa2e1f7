package httpapi

import (
	"net/http"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/triage-dev/triage/pipeline"
)

// openAPI serves the OpenAPI 3.1 document of the API. Its event schema
// is the live rules' (reloaded rules change it).
func (a *api) openAPI(w http.ResponseWriter, _ *http.Request) {
	doc, err := Document(a.opts.Rules.Current().EventSchema(), a.opts.Version)
	if err != nil {
		writeProblem(w, problem(http.StatusInternalServerError, "internal", err.Error()))
		return
	}
	writeJSON(w, http.StatusOK, doc)
}

// Document is the OpenAPI 3.1 document of the API for events described by
// eventSchema (rules.Set.EventSchema).
func Document(eventSchema map[string]any, version string) (map[string]any, error) {
	answer, err := jsonschema.For[pipeline.SyncAnswer](nil)
	if err != nil {
		return nil, err
	}
	prob, err := jsonschema.For[Problem](nil)
	if err != nil {
		return nil, err
	}
	if version == "" {
		version = "dev"
	}
	ref := func(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }
	problemResponse := func(what string) map[string]any {
		return map[string]any{"description": what, "content": map[string]any{"application/problem+json": map[string]any{"schema": ref("Problem")}}}
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":   "triage decisions",
			"version": version,
			"description": "Synchronous decisions on triage's rules, guards, LLM sampling and audit trail: " +
				"the same as an event on the event topics gets, recorded to the decisions and audit topics (channel http).",
		},
		"security": []any{map[string]any{"bearer": []any{}}},
		"paths": map[string]any{
			DecidePath: map[string]any{
				"post": map[string]any{
					"operationId": "decide",
					"summary":     "Decide one event, or a batch",
					"description": "A retry with the same tenant, event id and event, within the window, returns the first decision (replayed) and records nothing. " +
						"Past timeout_ms the LLM stage gives way to the type's fallback (reason timeout), recorded and returned like any decision.",
					"parameters": []any{
						map[string]any{"name": "timeout_ms", "in": "query", "schema": map[string]any{"type": "integer", "minimum": 1, "maximum": 3600000},
							"description": "bound on the LLM stage, in milliseconds"},
						map[string]any{"name": TimeoutHeader, "in": "header", "schema": map[string]any{"type": "integer", "minimum": 1, "maximum": 3600000},
							"description": "timeout_ms as a header; the query parameter wins"},
					},
					"requestBody": map[string]any{
						"required": true,
						"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"oneOf": []any{
							map[string]any{"type": "object", "properties": map[string]any{"event": ref("Event")}, "required": []string{"event"}, "additionalProperties": false},
							map[string]any{"type": "object", "properties": map[string]any{"events": map[string]any{"type": "array", "items": ref("Event"), "minItems": 1}},
								"required": []string{"events"}, "additionalProperties": false},
						}}}},
					},
					"responses": map[string]any{
						"200": map[string]any{
							"description": "the decision, or for a batch each event's decision or problem in request order",
							"headers":     map[string]any{ReplayedHeader: map[string]any{"description": "true when the decision was made for an earlier request", "schema": map[string]any{"type": "string"}}},
							"content":     map[string]any{"application/json": map[string]any{"schema": map[string]any{"oneOf": []any{ref("Decision"), ref("BatchAnswer")}}}},
						},
						"400": problemResponse("the request is not {\"event\": ...} or {\"events\": [...]}, or a parameter is invalid"),
						"401": problemResponse("no valid bearer token"),
						"403": problemResponse("the token may not ask for the event's tenant"),
						"409": problemResponse("the event id was decided for a different event of the tenant"),
						"413": problemResponse("the body is too large"),
						"422": problemResponse("the event is not valid: reason and detail name the field"),
						"503": problemResponse("shutting down, or the decision could not be recorded: retry"),
					},
				},
			},
		},
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
			"schemas": map[string]any{
				"Event":    eventSchema,
				"Decision": answer,
				"Problem":  prob,
				"BatchAnswer": map[string]any{"type": "object", "required": []string{"results"}, "properties": map[string]any{
					"results": map[string]any{"type": "array", "items": map[string]any{"type": "object",
						"properties": map[string]any{"decision": ref("Decision"), "error": ref("Problem")}}},
				}},
			},
		},
	}, nil
}
