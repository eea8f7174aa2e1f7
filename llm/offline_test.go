package llm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/triage-dev/triage/llm"
)

var (
	documentOutcomes    = []string{"no_pii", "contains_pii", "review"}
	transactionOutcomes = []string{"allow", "review", "block"}
	ticketOutcomes      = []string{"escalate", "template", "human"}
)

// offlineAnswer is the offline scorer's JSON answer.
type offlineAnswer struct {
	Outcome string   `json:"outcome"`
	Reason  string   `json:"reason"`
	Score   *float64 `json:"score"`
}

func askOffline(t *testing.T, p llm.Provider, text string, outcomes any) (llm.Response, offlineAnswer) {
	t.Helper()
	resp, err := p.Complete(t.Context(), llm.Request{
		System:   "Decide.",
		Messages: []llm.Message{{Role: llm.RoleUser, Text: text}},
		Metadata: map[string]any{"event_id": "e1", "type": "t", "outcomes": outcomes, "fallback": "review"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var a offlineAnswer
	dec := json.NewDecoder(strings.NewReader(resp.Text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil || dec.More() {
		t.Fatalf("answer %q is not one JSON object: %v", resp.Text, err)
	}
	return resp, a
}

// renderedTransaction is a transaction prompt as rules/default.yaml's
// template renders it.
func renderedTransaction(amount, country, ipCountry string, ageDays, chargebacks, txns int, avg string) string {
	return fmt.Sprintf("Transaction: %s EUR at Acme Shop (MCC 5999), channel ecommerce.\n"+
		"Card country: %s. IP country: %s. Device: h:9c1e.\n"+
		"Account age: %d days. Chargebacks in the last 90 days: %d.\n"+
		"Transactions in the last 24 hours: %d. Average amount over 30 days: %s EUR.\n",
		amount, country, ipCountry, ageDays, chargebacks, txns, avg)
}

func TestOfflineOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		outcomes []string
		want     string
		score    float64
		reason   string // a substring of the reason
	}{
		{"email", "Contract draft. Contact: jane.doe@example.com", documentOutcomes, "contains_pii", 0.7, "email"},
		{"iban", "Pay to DE89 3704 0044 0532 0130 00 by Friday", documentOutcomes, "contains_pii", 0.7, "iban"},
		{"phone", "Call me on +49 30 1234567 after six", documentOutcomes, "contains_pii", 0.6, "phone"},
		{"us phone", "Office: (555) 123-4567", documentOutcomes, "contains_pii", 0.6, "phone"},
		{"email and phone", "jane@example.org, +44 20 7946 0958", documentOutcomes, "contains_pii", 0.88, "email, phone"},
		// Cards as the rules' pii mask finds them: 13 to 19 Luhn-valid digits.
		{"amex card", "Card 3782 822463 10005 on file", documentOutcomes, "contains_pii", 0.7, "card number"},
		{"identity words only", "Scan of the passport, page 2", documentOutcomes, "review", 0.35, "identity"},
		{"large, high-risk, geo mismatch", "amount: 72000.5\ncountry: NG\nip_country: GB\nrule: large amount from a high-risk country",
			transactionOutcomes, "block", 0.66, "high-risk, amount 72000.5, country NG vs IP GB"},
		{"large, high-risk", `{"amount": 7000, "country": "NG", "ip_country": "NG"} large amount from a high-risk country`,
			transactionOutcomes, "review", 0.44, "high-risk, amount 7000"},
		{"sanctioned", "merchant in a sanctioned region", transactionOutcomes, "review", 0.5, "sanctioned"},
		{"two outcomes: medium goes to the severe side", "amount=6000, high-risk merchant",
			[]string{"allow", "block"}, "block", 0.44, "amount 6000"},
		// Prompts as triage renders them (rules/default.yaml, examples/tickets.yaml).
		{"masked document", "Document: Scan (application/pdf, 2048 bytes, template unknown).\nText:\n<<<\nCall [PHONE] or write to [EMAIL]\n>>>",
			documentOutcomes, "contains_pii", 0.88, "email, phone"},
		{"masked card", "Text:\n<<<\nCard [CARD], exp 09/29\n>>>", documentOutcomes, "contains_pii", 0.7, "card number"},
		{"rendered transaction: large, geo mismatch", renderedTransaction("7200.00", "DE", "GB", 400, 0, 3, "150.00"),
			transactionOutcomes, "review", 0.52, "amount 7200, country DE vs IP GB, amount over 3x the average"},
		{"rendered transaction: history signals", renderedTransaction("900.00", "DE", "DE", 12, 4, 55, "1000.00"),
			transactionOutcomes, "review", 0.46, "55 transactions in 24h, 4 chargebacks, account 12 days old"},
		{"rendered transaction: huge, mismatch, far above average", renderedTransaction("64000.00", "FR", "RU", 900, 0, 2, "80.00"),
			transactionOutcomes, "block", 0.61, "amount 64000, country FR vs IP RU, amount over 3x the average"},
		{"rendered transaction: nothing unusual", renderedTransaction("1200.00", "DE", "DE", 900, 0, 2, "1100.00"),
			transactionOutcomes, "allow", 0.1, "amount 1200"},
		{"rendered ticket", "Ticket from customer h:1f (pro tier), priority urgent.\nSubject: Checkout down\nBody:\n<<<\nAll payments fail, we are losing money\n>>>",
			ticketOutcomes, "escalate", 0.78, "down, losing money, urgent"},
		{"urgent outage", "URGENT: production outage, checkout is down", ticketOutcomes, "escalate", 0.78, "down, outage, urgent"},
		{"one escalate word", "Please refund my last order", ticketOutcomes, "human", 0.4, "refund"},
	}
	p, err := llm.New("offline", llm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, a := askOffline(t, p, tt.text, tt.outcomes)
			if a.Outcome != tt.want || a.Score == nil || *a.Score != tt.score || !strings.Contains(a.Reason, tt.reason) {
				t.Errorf("answer = %s, want outcome %q, score %v, reason containing %q", resp.Text, tt.want, tt.score, tt.reason)
			}
			if resp.Model != llm.OfflineModel || resp.StopReason != llm.StopEndTurn {
				t.Errorf("model, stop = %q, %q", resp.Model, resp.StopReason)
			}
			wantIn := int64((len("Decide.") + len(tt.text) + 3) / 4)
			if resp.InputTokens != wantIn || resp.OutputTokens != int64((len(resp.Text)+3)/4) {
				t.Errorf("tokens = %d in, %d out; want %d, %d", resp.InputTokens, resp.OutputTokens, wantIn, (len(resp.Text)+3)/4)
			}
		})
	}
}

// Without features the hash decides, within the low and medium tiers, and
// always the same way.
func TestOfflineNoFeature(t *testing.T) {
	p, err := llm.New("offline", llm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, text := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "amount: 12", "quarterly newsletter",
		"ref 4111 1111 1111 1112"} {
		first, a := askOffline(t, p, text, documentOutcomes)
		want := "no_pii"
		if *a.Score >= 0.3 {
			want = "review"
		}
		if *a.Score < 0 || *a.Score >= 0.5 || a.Outcome != want || a.Reason != "no feature fired; stable hash score" {
			t.Errorf("%q: answer %s, want score in [0, 0.5) and outcome %q", text, first.Text, want)
		}
		seen[a.Outcome] = true
		// The same request again, and with the outcomes as they arrive
		// after a JSON round trip, gets the same answer.
		again, _ := askOffline(t, p, text, []any{"no_pii", "contains_pii", "review"})
		if !reflect.DeepEqual(again, first) {
			t.Errorf("%q: answers differ: %+v and %+v", text, first, again)
		}
	}
	if len(seen) != 2 {
		t.Errorf("texts without features gave outcomes %v; the hash should spread them over both tiers", seen)
	}
}

func TestOfflineNoSchema(t *testing.T) {
	p, err := llm.New("offline", llm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, outcomes := range []any{nil, []string{}, "allow,block", []any{1, 2}} {
		resp, err := p.Complete(t.Context(), llm.Request{
			Messages: []llm.Message{{Role: llm.RoleUser, Text: "jane@example.com"}},
			Metadata: map[string]any{"outcomes": outcomes},
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"outcome":"","reason":"no decision schema in request"}`; resp.Text != want {
			t.Errorf("outcomes %#v: answer %s, want %s", outcomes, resp.Text, want)
		}
	}
}

func TestOfflineInvalidRequest(t *testing.T) {
	p, err := llm.New("offline", llm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, msgs := range [][]llm.Message{nil, {{Role: "system", Text: "x"}}} {
		_, err := p.Complete(t.Context(), llm.Request{Messages: msgs})
		assertStatusError(t, err, "offline", 0, false)
	}
	_, err = p.Complete(t.Context(), llm.Request{Messages: []llm.Message{{Role: llm.RoleUser}}, MaxTokens: -1})
	assertStatusError(t, err, "offline", 0, false)
}

func TestOfflineLatency(t *testing.T) {
	req := llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Text: "hi"}}}
	tests := []struct {
		name      string
		ctx       func(context.Context) (context.Context, context.CancelFunc)
		wantTook  time.Duration
		wantErr   error
		retryable bool
	}{
		{"waits the latency", func(ctx context.Context) (context.Context, context.CancelFunc) { return ctx, func() {} },
			100 * time.Millisecond, nil, false},
		{"deadline first", func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, 30*time.Millisecond)
		}, 30 * time.Millisecond, context.DeadlineExceeded, true},
		{"already cancelled", func(ctx context.Context) (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(ctx)
			cancel()
			return ctx, cancel
		}, 0, context.Canceled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// synctest's clock moves only when every goroutine in the bubble
			// waits, so durations are exact and nothing sleeps for real.
			synctest.Test(t, func(t *testing.T) {
				p, err := llm.New("offline", llm.Options{Latency: 100 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := tt.ctx(t.Context())
				defer cancel()
				start := time.Now()
				_, err = p.Complete(ctx, req)
				if took := time.Since(start); took != tt.wantTook {
					t.Errorf("took %v, want %v", took, tt.wantTook)
				}
				if !errors.Is(err, tt.wantErr) || llm.IsRetryable(err) != tt.retryable {
					t.Errorf("err = %v (retryable %v), want %v (retryable %v)", err, llm.IsRetryable(err), tt.wantErr, tt.retryable)
				}
			})
		})
	}
}
