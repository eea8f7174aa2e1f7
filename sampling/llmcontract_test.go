package sampling_test

import (
	"context"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
	"github.com/triage-dev/triage/sampling"
	sampler "github.com/triage-dev/triage/sampling/client"
)

// contractModes are the three ways triage reaches an LLM, each deciding one
// item of typ with provider, all with their default options: pull (our
// sampler, sampling/client, pulling on 2026-07-28), push (the same sampler
// as a legacy 2025-11-25 host that does not pull) and direct.
var contractModes = []struct {
	name   string
	decide func(t *testing.T, typ *rules.Type, provider llm.Provider) (pipeline.Verdict, error)
}{
	{sampling.ModePull, func(t *testing.T, typ *rules.Type, provider llm.Provider) (pipeline.Verdict, error) {
		pool := newPool(t, sampling.Options{})
		runSampler(t, pool, sampler.Config{Provider: provider, Concurrency: 1})
		return pool.Decide(context.Background(), item(t, typ, 1))
	}},
	{sampling.ModePush, func(t *testing.T, typ *rules.Type, provider llm.Provider) (pipeline.Verdict, error) {
		pool := newPool(t, sampling.Options{PushGrace: 10 * time.Millisecond})
		runSampler(t, pool, sampler.Config{Provider: provider, PushOnly: true})
		return pool.Decide(context.Background(), item(t, typ, 1))
	}},
	{sampling.ModeDirect, func(t *testing.T, typ *rules.Type, provider llm.Provider) (pipeline.Verdict, error) {
		return sampling.NewDirect(provider, sampling.DirectOptions{Logger: testLogger()}).Decide(context.Background(), item(t, typ, 1))
	}},
}

// TestLLMContract is one table of the LLM contract, run against pull, push
// and direct mode: each row is an event type's sampling settings (as the
// rules file says them) and a provider's behaviour, and says what the
// provider receives and what becomes of the item, which must be the same
// in every mode. The provider is the openai adapter against chatServer, a
// fake speaking OpenAI's chat-completions wire format.
func TestLLMContract(t *testing.T) {
	valid := reply{http.StatusOK, `{"outcome":"block","reason":"mule pattern","score":0.9}`}
	for _, row := range []struct {
		name string
		// settings are the lines of the type's sampling: block that the
		// row sets, besides testdata/rules.yaml's.
		settings   string
		script     []reply
		retryAfter string // the Retry-After of the script's error replies
		// body holds fields of the first request as the provider
		// receives them; absent names fields it must not carry.
		body   map[string]any
		absent []string
		// fallback is the item's fallback reason by mode; nil means the
		// answer decides it.
		fallback map[string]string
		// statuses, if set, is the audit status every attempt must have.
		statuses audit.Status
		// requests checks when requests reached the provider; nil
		// wants one.
		requests func(t *testing.T, at []time.Time)
	}{
		{name: "temperature 0 is sent as 0", settings: "temperature: 0", script: []reply{valid},
			body: map[string]any{"temperature": 0.0}},
		{name: "temperature 0.7", settings: "temperature: 0.7", script: []reply{valid},
			body: map[string]any{"temperature": 0.7}},
		{name: "no temperature leaves the provider's", script: []reply{valid},
			absent: []string{"temperature"}},
		{name: "max tokens", settings: "max_tokens: 50", script: []reply{valid},
			body: map[string]any{"max_tokens": 50.0}},
		{name: "stop sequences", settings: `stop: ["END", "</answer>"]`, script: []reply{valid},
			body: map[string]any{"stop": []any{"END", "</answer>"}}},
		{name: "429 with Retry-After 1 is retried after it", script: []reply{{http.StatusTooManyRequests, ""}, valid}, retryAfter: "1",
			requests: func(t *testing.T, at []time.Time) {
				if len(at) != 2 {
					t.Fatalf("%d requests, want 2: the 429, and the retry", len(at))
				}
				if gap := at[1].Sub(at[0]); gap < time.Second {
					t.Fatalf("retried %v after the 429, before its Retry-After of 1s", gap)
				}
			}},
		// The maximum is the back-off's: 10 s by default, in the sampler
		// as in direct mode.
		{name: "Retry-After beyond the maximum gives the fallback", script: []reply{{http.StatusTooManyRequests, ""}}, retryAfter: "60",
			fallback: allModes(pipeline.FallbackError), statuses: audit.StatusError},
		{name: "400 is final", script: []reply{{http.StatusBadRequest, ""}},
			fallback: allModes(pipeline.FallbackError), statuses: audit.StatusError},
		// Three tries in all, by default, in the sampler as in direct mode.
		{name: "503 is retried, then gives the fallback", script: []reply{{http.StatusServiceUnavailable, ""}},
			fallback: allModes(pipeline.FallbackError), statuses: audit.StatusError, requests: requestCount(3)},
		// The pool's leases carry the timeout, so that MCP modes say
		// lease_expired where direct mode says timeout. A request that
		// hangs is tried once more (the pool re-leases the item once).
		{name: "slower than the timeout gives the fallback", settings: "timeout: 300ms", script: []reply{{0, ""}},
			fallback: map[string]string{
				sampling.ModePull: pipeline.FallbackLeaseExpired, sampling.ModePush: pipeline.FallbackLeaseExpired,
				sampling.ModeDirect: pipeline.FallbackTimeout,
			},
			statuses: audit.StatusTimeout, requests: requestCount(2)},
	} {
		for _, mode := range contractModes {
			t.Run(row.name+"/"+mode.name, func(t *testing.T) {
				t.Parallel()
				srv := newChatServer(t, row.script...)
				srv.retryAfter = row.retryAfter
				v, err := mode.decide(t, contractType(t, row.settings), srv.provider(t))

				if want := row.fallback[mode.name]; want == "" {
					if err != nil || v.Outcome != "block" {
						t.Fatalf("got %+v, %v; want the answer to decide", v, err)
					}
				} else if got := pipeline.FallbackReason(err); got != want {
					t.Fatalf("fallback reason %q (%v), want %q", got, err, want)
				}
				for _, a := range v.Attempts {
					if row.statuses != "" && a.Status != row.statuses {
						t.Errorf("attempt %s %q, want status %s", a.Status, a.Reason, row.statuses)
					}
				}
				srv.mu.Lock()
				bodies, times := srv.bodies, srv.times
				srv.mu.Unlock()
				t.Logf("%d requests, %d attempts audited", len(bodies), len(v.Attempts))
				if len(bodies) == 0 {
					t.Fatal("no request reached the provider")
				}
				for k, want := range row.body {
					if got, ok := bodies[0][k]; !ok || !reflect.DeepEqual(got, want) {
						t.Errorf("%s = %#v (sent: %v), want %#v", k, got, ok, want)
					}
				}
				for _, k := range row.absent {
					if got, ok := bodies[0][k]; ok {
						t.Errorf("%s = %#v, want it left out", k, got)
					}
				}
				check := row.requests
				if check == nil {
					check = requestCount(1)
				}
				check(t, times)
			})
		}
	}
}

// requestCount wants n requests at the provider.
func requestCount(n int) func(*testing.T, []time.Time) {
	return func(t *testing.T, at []time.Time) {
		t.Helper()
		if len(at) != n {
			t.Fatalf("%d requests, want %d", len(at), n)
		}
	}
}

func allModes(reason string) map[string]string {
	return map[string]string{sampling.ModePull: reason, sampling.ModePush: reason, sampling.ModeDirect: reason}
}

// contractType is the payment type of testdata/rules.yaml with settings in
// its sampling: block, and a timeout of 5 s (room for a Retry-After of 1 s)
// unless settings name another.
func contractType(t *testing.T, settings string) *rules.Type {
	t.Helper()
	data, err := os.ReadFile("testdata/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(settings, "timeout:") {
		settings = "timeout: 5s\n" + settings
	}
	if !strings.Contains(settings, "max_tokens:") {
		settings += "\nmax_tokens: 64"
	}
	var block strings.Builder
	for line := range strings.SplitSeq(strings.TrimSpace(settings), "\n") {
		block.WriteString("      " + line + "\n")
	}
	y := string(data)
	for _, line := range []string{"      timeout: 300ms\n", "      max_tokens: 64\n"} {
		if !strings.Contains(y, line) {
			t.Fatalf("testdata/rules.yaml has no line %q to replace", line)
		}
		y = strings.Replace(y, line, "", 1)
	}
	set, err := rules.Parse("contract.yaml", []byte(y+block.String()))
	return paymentIn(t, set, err)
}
