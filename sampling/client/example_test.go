package client_test

import (
	"context"
	"log"
	"log/slog"
	"os"
	"os/signal"

	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/sampling/client"
)

// A sampler for two consumers, answering with a local Ollama server
// through the OpenAI-compatible provider, eight items at a time per
// consumer, until interrupted.
func ExampleNew() {
	prov, err := llm.New("openai", llm.Options{BaseURL: "http://127.0.0.1:11434/v1", Model: "llama3.2"})
	if err != nil {
		log.Fatal(err)
	}
	s, err := client.New(client.Config{
		Servers:     []string{"https://triage-a.internal/mcp", "https://triage-b.internal/mcp"},
		Token:       os.Getenv("TRIAGE_TOKEN"),
		Provider:    prov,
		Concurrency: 8,
		Logger:      slog.Default(),
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := s.Run(ctx); err != nil {
		log.Fatal(err)
	}
	log.Printf("%+v", s.Stats())
}
