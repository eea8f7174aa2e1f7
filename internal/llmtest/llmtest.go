// Package llmtest gives tests a real language model: llama.cpp's
// OpenAI-compatible server with SmolLM2-135M-Instruct, run by scripts/llm. scripts/test installs it (once per machine) and starts it
// before any test runs; tests only start the installed server, and where
// none can be had, a test that needs one fails with the reason: it never
// passes by skipping.
//
// The model is small and runs on the CPU: an answer takes seconds, and the
// server answers one request at a time. Tests send a few dozen requests at
// most, with timeouts to match.
package llmtest

import (
	"os"
	"testing"
	"time"

	"github.com/triage-dev/triage/internal/testrun"
)

// EnvBaseURL names the environment variable that points BaseURL at an
// existing OpenAI-compatible server instead of starting one, e.g.
// http://127.0.0.1:8080/v1. EnvModel then names its model.
const (
	EnvBaseURL = "TRIAGE_LLM_BASE_URL"
	EnvModel   = "TRIAGE_LLM_MODEL"
)

// Model is the name the server started by scripts/llm answers to.
const Model = "smollm2-135m-instruct"

var server = testrun.Shared{
	Script:   "llm",
	Env:      []string{"LLM_NO_INSTALL=1"},
	Timeout:  5 * time.Minute,
	Override: EnvBaseURL,
	Help:     "run ./scripts/test, which installs and starts one, or scripts/llm start, or set " + EnvBaseURL,
}

// BaseURL returns the base URL of the shared model server
// (http://127.0.0.1:18090/v1 by default), starting it with scripts/llm
// the first time a test binary asks, and the model to name in requests.
func BaseURL(t testing.TB) (url, model string) {
	t.Helper()
	url = server.Start(t)
	model = Model
	if m := os.Getenv(EnvModel); m != "" {
		model = m
	}
	return url, model
}
