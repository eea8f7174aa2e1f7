package e2e

import (
	"context"
	"encoding/json"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/triage-dev/triage/audit"
	ikafka "github.com/triage-dev/triage/internal/kafka"
	"github.com/triage-dev/triage/internal/kafkatest"
	"github.com/triage-dev/triage/internal/llmtest"
	"github.com/triage-dev/triage/internal/loadgen"
	"github.com/triage-dev/triage/internal/testrun"
	"github.com/triage-dev/triage/pipeline"
)

// localModelEvents is how many events each mode decides with the real
// model: all crafted ambiguous, so most reach it (a few documents carry an
// e-mail address and are decided by the PII rule first). The model answers
// in a second or a few on two cores, one request at a time.
const localModelEvents = 6

// localModelWait bounds one mode's run.
const localModelWait = 10 * time.Minute

// TestLocalModel: a real language model generating tokens
// (SmolLM2-135M-Instruct in llama.cpp's OpenAI-compatible server,
// scripts/llm) decides ambiguous
// events through the consumer in each of the three ways triage reaches an
// LLM: pulled by cmd/sampler on 2026-07-28, pushed to cmd/sampler as a
// legacy 2025-11-25 host, and called by the consumer itself (direct). The
// model gets the decision schema as a grammar (structured output), so its
// answers parse; what it decides is its own.
func TestLocalModel(t *testing.T) {
	bin := binaries(t)
	baseURL, model := llmtest.BaseURL(t)
	provider := []string{"--provider", "openai", "--base-url", baseURL, "--model", model,
		"--structured", "json_object", "--api-key", "none"}
	rulesFile := llmtest.PolicyFile(t)
	for _, mode := range []struct {
		name     string
		consumer []string
		sampler  []string // nil: no sampler process
	}{
		{name: "pull", consumer: []string{"--sampler", "none"},
			sampler: []string{"--concurrency", "1"}},
		{name: "push", consumer: []string{"--sampler", "none"},
			sampler: []string{"--protocol-version", "2025-11-25", "--push-only"}},
		{name: "direct", consumer: append([]string{"--llm", "direct"}, provider...)},
	} {
		t.Run(mode.name, func(t *testing.T) {
			k := newKafka(t, kafkatest.Broker{Name: "kfake", Seeds: kafkatest.Embedded})
			addr := testrun.FreeAddr(t)
			args := k.consumerArgs(append([]string{"--mask-key", maskKey, "--rules", rulesFile,
				"--mcp-listen", addr, "--mcp-token", "s3cret", "--queue-wait", "5m",
				"--http-listen", "", "--log-format", "text"}, mode.consumer...)...)
			consumer := start(t, "consumer", bin["consumer"], args...)
			if mode.sampler != nil {
				start(t, "sampler", bin["sampler"], append(append([]string{"--server", "http://" + addr + "/mcp",
					"--token", "s3cret", "--log-format", "text"}, provider...), mode.sampler...)...)
			}
			localModelDecides(t, k, consumer, mode.name, model)
		})
	}
}

// localModelDecides produces the events, waits for the group to commit them
// all, and checks what the model did with them.
func localModelDecides(t *testing.T, k kafka, consumer *testrun.Proc, mode, model string) {
	gen := k.generator(t, loadgen.Config{Seed: 9, Ambiguous: map[string]float64{loadgen.AllTypes: 1}})
	cl := kafkatest.Client(t, k.brokers, loadgen.ProducerClientOpts()...)
	if rep, err := loadgen.Produce(t.Context(), cl, gen, loadgen.ProduceOptions{Events: localModelEvents}); err != nil || rep.Acked != localModelEvents {
		t.Fatalf("produced %d of %d: %v", rep.Acked, localModelEvents, err)
	}
	adm := kadm.NewClient(kafkatest.Client(t, k.brokers))
	// The model's pace, not the pipeline's, bounds the wait: seconds per
	// answer, one at a time, on a machine other tests share.
	testrun.Until(t, "every event to be committed", localModelWait, 100*time.Millisecond, func() bool {
		consumer.FailIfExited(t)
		c, e, err := ikafka.CommittedAndEnd(context.Background(), adm, k.group, k.transactions, k.documents)
		return err == nil && c == e && e == localModelEvents
	})
	// The rule stage has handed every event off by now; the sampling
	// stage decides them at the model's pace. SIGTERM before that would
	// leave the drain timeout to a model that takes seconds an answer.
	testrun.Until(t, "every event to be decided", localModelWait, time.Second, func() bool {
		consumer.FailIfExited(t)
		decided, dlq := outputs(t, k)
		return len(decided)+dlq >= localModelEvents
	})
	if err := consumer.Stop(t, syscall.SIGTERM, wait); err != nil {
		t.Fatalf("consumer after SIGTERM: %v", err)
	}

	var sampled []pipeline.Decision
	for _, d := range decidedOnce(t, k, localModelEvents) {
		switch {
		case d.Path == pipeline.PathSampled:
			sampled = append(sampled, d)
		case d.Path == pipeline.PathFallback && d.Reason != string(audit.StatusInvalidAnswer):
			// A wrong answer is the model's right; not reaching it is ours.
			t.Errorf("event %s fell back with %q: the model was there", d.EventID, d.Reason)
		}
	}
	attempts := map[audit.Status]int{}
	for _, r := range kafkatest.ReadTopic(t, k.brokers, k.audit) {
		var a audit.Record
		if err := json.Unmarshal(r.Value, &a); err != nil || a.Kind != audit.KindSampling {
			continue
		}
		attempts[a.Status]++
		if a.Mode != mode {
			t.Errorf("attempt for %s in mode %q, want %q", a.EventID, a.Mode, mode)
		}
		if a.Status == audit.StatusOK && (a.ModelAnswered != model || a.OutputTokens == 0) {
			t.Errorf("attempt for %s answered by %q with %d output tokens, want %s generating tokens",
				a.EventID, a.ModelAnswered, a.OutputTokens, model)
		}
	}
	for _, d := range sampled {
		t.Logf("%s %s: %s: %s", d.Type, d.EventID, d.Outcome, d.Reason)
	}
	t.Logf("%d of %d events decided by the model; sampling attempts by status: %v", len(sampled), localModelEvents, attempts)
	if len(sampled) == 0 || attempts[audit.StatusOK] == 0 {
		t.Fatal("the model decided nothing")
	}
}
