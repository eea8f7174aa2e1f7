package rules_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/triage-dev/triage/rules"
)

// Example shows the path of one event: decode with UseNumber, look up its
// type, validate (which normalises numbers and timestamps), and evaluate.
// The default policy hashes device ids, so it needs a mask key; a random
// one does for an example (see ExampleWithMaskKey for a configured one).
func Example() {
	set, err := rules.Parse("default.yaml", rules.Default, rules.WithMaskKey(rules.RandomMaskKey()))
	if err != nil {
		fmt.Println(err)
		return
	}
	record := `{"event_id": "ev-42", "type": "transaction", "tenant_id": "acme",
		"occurred_at": "2026-03-01T12:00:00Z", "account_id": "acct-7", "user_id": "u-7",
		"amount": 7200.50, "currency": "EUR", "country": "DE", "ip_country": "BR",
		"merchant": "Electro", "mcc": "5732", "channel": "ecommerce", "device_id": "d-9",
		"txn_count_24h": 2, "avg_amount_30d": 80, "account_age_days": 900, "chargebacks_90d": 0}`

	dec := json.NewDecoder(strings.NewReader(record))
	dec.UseNumber()
	var ev map[string]any
	if err := dec.Decode(&ev); err != nil {
		fmt.Println(err)
		return
	}
	typ, ok := set.Type(ev["type"].(string))
	if !ok {
		fmt.Println("unknown type")
		return
	}
	if err := typ.Validate(ev); err != nil {
		fmt.Println("invalid:", err)
		return
	}
	res := set.Eval(typ.Name, ev)
	fmt.Println(typ.KeyOf(ev), res.Action, res.RuleID)
	fmt.Println(res.Reason)
	// Output:
	// acct-7 sample sample_geo_mismatch_large
	// large amount with IP country different from card country
}

// ExampleType_Validate shows the error an event that breaks the schema gets:
// its Reason is the DLQ reason.
func ExampleType_Validate() {
	set, _ := rules.Parse("default.yaml", rules.Default, rules.WithMaskKey(rules.RandomMaskKey()))
	typ, _ := set.Type("document")
	ev := map[string]any{
		"event_id": "ev-1", "type": "document", "tenant_id": "acme",
		"occurred_at": "2026-03-01T12:00:00Z", "doc_id": "d-1", "owner_id": "o-1",
		"mime": "text/plain", "size_bytes": json.Number("12.5"), "title": "t", "text": "x",
	}
	var fe *rules.FieldError
	if err := typ.Validate(ev); errors.As(err, &fe) {
		fmt.Println(fe.Reason)
		fmt.Println(err)
	}
	// Output:
	// wrong_type
	// size_bytes: wrong_type: want integer, got 12.5
}

// ExampleType_Prompt renders the sampling request for a document that the
// rules sent to sampling: only the allow-listed fields reach the LLM, and
// the text's phone number is masked. (An e-mail address or IBAN in the
// text would have decided it by rule, before any sampling.)
func ExampleType_Prompt() {
	set, _ := rules.Parse("default.yaml", rules.Default, rules.WithMaskKey(rules.RandomMaskKey()))
	typ, _ := set.Type("document")
	ev := map[string]any{
		"event_id": "ev-7", "type": "document", "tenant_id": "acme",
		"occurred_at": "2026-03-01T12:00:00Z", "doc_id": "d-7", "owner_id": "o-7",
		"mime": "text/plain", "size_bytes": json.Number("64"), "title": "Note",
		"text": "Call Jo on +44 20 7946 0958 about the flat.",
	}
	if err := typ.Validate(ev); err != nil {
		fmt.Println(err)
		return
	}
	res := set.Eval(typ.Name, ev)
	p, err := typ.Prompt(ev, res.RuleID)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.RuleID, p.Model.Hints, p.Timeout, p.MaxTokens)
	fmt.Println(p.User)
	// Output:
	// sample_unknown_template [claude-haiku gpt-4o-mini] 5s 256
	// Document of 64 bytes.
	// Metadata:
	// <<<
	// Title: Note
	// Type: text/plain
	// Template: unknown
	// >>>
	// Text:
	// <<<
	// Call Jo on [PHONE] about the flat.
	// >>>
}

// ExampleWithMaskKey loads the default policy with a configured mask key:
// the transaction's device id reaches the LLM as a keyed pseudonym, the
// same for the same device under the same key. A deployment reads the
// secret from a file or the environment, never from source code.
func ExampleWithMaskKey() {
	secret := []byte("read me from --mask-key-file, not from code") // at least 32 random bytes
	key, err := rules.NewMaskKey(secret)
	if err != nil {
		fmt.Println(err)
		return
	}
	set, err := rules.Parse("default.yaml", rules.Default, rules.WithMaskKey(key))
	if err != nil {
		fmt.Println(err)
		return
	}
	typ, _ := set.Type("transaction")
	ev := map[string]any{
		"event_id": "ev-8", "type": "transaction", "tenant_id": "acme",
		"occurred_at": "2026-03-01T12:00:00Z", "account_id": "acct-7", "user_id": "u-7",
		"amount": json.Number("7200.50"), "currency": "EUR", "country": "DE", "ip_country": "BR",
		"merchant": "Electro", "mcc": "5732", "channel": "ecommerce", "device_id": "d-9",
		"txn_count_24h": json.Number("2"), "avg_amount_30d": json.Number("80"),
		"account_age_days": json.Number("900"), "chargebacks_90d": json.Number("0"),
	}
	if err := typ.Validate(ev); err != nil {
		fmt.Println(err)
		return
	}
	p, err := typ.Prompt(ev, set.Eval(typ.Name, ev).RuleID)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Context["device_id"])

	_, err = rules.Parse("default.yaml", rules.Default) // no key: fails closed
	fmt.Println(errors.Is(err, rules.ErrNoMaskKey))
	// Output:
	// h:d4c6cab98db7998babed76856b12f88e
	// true
}
