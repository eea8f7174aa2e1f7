package loadgen

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

var fixedNow = func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC) }

func mustGenerator(t testing.TB, cfg Config) *Generator {
	t.Helper()
	g, err := NewGenerator(cfg)
	if err != nil {
		t.Fatalf("NewGenerator: %v", err)
	}
	return g
}

func TestNextDeterministic(t *testing.T) {
	cfg := Config{Seed: 42, Bad: 0.2, Now: fixedNow}
	a, b := mustGenerator(t, cfg), mustGenerator(t, cfg)
	other := mustGenerator(t, Config{Seed: 43, Bad: 0.2, Now: fixedNow})
	same := 0
	for i := range 2000 {
		x, y, z := a.Next(), b.Next(), other.Next()
		if !bytes.Equal(x.Value, y.Value) || !bytes.Equal(x.Key, y.Key) || x.EventID != y.EventID ||
			x.Bad != y.Bad || x.Ambiguous != y.Ambiguous || x.Topic != y.Topic {
			t.Fatalf("event %d differs for the same seed:\n%.300s\n%.300s", i, x.Value, y.Value)
		}
		if bytes.Equal(x.Value, z.Value) {
			same++
		}
	}
	if same > 0 {
		t.Errorf("seeds 42 and 43 produced %d identical events", same)
	}
}

func TestNextValidEventsMatchContractAndPolicy(t *testing.T) {
	g := mustGenerator(t, Config{Seed: 7})
	const n = 20_000
	ids := make(map[string]bool, n)
	byType := map[string]int{}
	ambByType := map[string]int{}
	rules := map[string]int{}
	for range n {
		ev := g.Next()
		if ev.Bad != "" {
			t.Fatalf("Bad %q with Config.Bad 0", ev.Bad)
		}
		if ids[ev.EventID] {
			t.Fatalf("duplicate event id %s", ev.EventID)
		}
		ids[ev.EventID] = true
		obj, err := decode(ev.Value)
		if err != nil {
			t.Fatalf("valid event does not decode: %v\n%s", err, ev.Value)
		}
		if reason := validate(obj); reason != "" {
			t.Fatalf("valid event fails the contract schema (%s):\n%s", reason, ev.Value)
		}
		if text(obj, "event_id") != ev.EventID || text(obj, "type") != ev.Type {
			t.Fatalf("Event fields disagree with the JSON: %+v", ev)
		}
		key := map[string]string{TypeTransaction: "account_id", TypeDocument: "doc_id"}[ev.Type]
		if string(ev.Key) != text(obj, key) {
			t.Fatalf("key %q, want %s %q", ev.Key, key, text(obj, key))
		}
		action, rule := evalDefault(obj)
		if (action == "sample") != ev.Ambiguous {
			t.Fatalf("Ambiguous=%v but the default policy gives %s (%s):\n%s", ev.Ambiguous, action, rule, ev.Value)
		}
		byType[ev.Type]++
		if ev.Ambiguous {
			ambByType[ev.Type]++
		}
		rules[ev.Type+"/"+rule]++
	}
	assertShare(t, "transaction mix", float64(byType[TypeTransaction])/n, 0.8, 0.01)
	assertShare(t, "document mix", float64(byType[TypeDocument])/n, 0.2, 0.01)
	assertShare(t, "ambiguous transactions", float64(ambByType[TypeTransaction])/float64(byType[TypeTransaction]), 0.05, 0.01)
	assertShare(t, "ambiguous documents", float64(ambByType[TypeDocument])/float64(byType[TypeDocument]), 0.20, 0.02)
	// Every rule of the default policy is exercised, clear and ambiguous.
	for _, r := range []string{"block_sanctioned", "block_huge_new_account", "sample_large_high_risk",
		"sample_geo_mismatch_large", "sample_velocity_spike", "review_chargebacks", "default"} {
		if rules["transaction/"+r] == 0 {
			t.Errorf("no transaction hit rule %s (hits: %v)", r, rules)
		}
	}
	for _, r := range []string{"sample_unknown_template", "pii_template", "pii_pattern", "default"} {
		if rules["document/"+r] == 0 {
			t.Errorf("no document hit rule %s (hits: %v)", r, rules)
		}
	}
	if blocked := rules["transaction/block_sanctioned"] + rules["transaction/block_huge_new_account"]; blocked > byType[TypeTransaction]/50 {
		t.Errorf("%d blocked transactions: more than a small share", blocked)
	}
}

func assertShare(t *testing.T, name string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s share = %.4f, want %.2f ± %.2f", name, got, want, tol)
	}
}

func TestNextSharesFollowConfig(t *testing.T) {
	tests := []struct {
		name              string
		cfg               Config
		wantDoc, wantAmbT float64
	}{
		{"documents only", Config{Mix: map[string]float64{TypeDocument: 1}}, 1, 0},
		{"weights normalised", Config{Mix: map[string]float64{TypeTransaction: 1, TypeDocument: 1}}, 0.5, 0.05},
		{"ambiguous for all types", Config{Ambiguous: map[string]float64{AllTypes: 0.3}}, 0.2, 0.3},
		{"explicit type beats all", Config{Ambiguous: map[string]float64{AllTypes: 0.3, TypeTransaction: 0}}, 0.2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := mustGenerator(t, tt.cfg)
			const n = 20_000
			var docs, txns, ambT int
			for range n {
				ev := g.Next()
				if ev.Type == TypeDocument {
					docs++
					continue
				}
				txns++
				if ev.Ambiguous {
					ambT++
				}
			}
			assertShare(t, "document", float64(docs)/n, tt.wantDoc, 0.015)
			if txns > 0 {
				assertShare(t, "ambiguous transaction", float64(ambT)/float64(txns), tt.wantAmbT, 0.015)
			}
		})
	}
}

func TestNextAccountsAreZipfSkewed(t *testing.T) {
	g := mustGenerator(t, Config{Mix: map[string]float64{TypeTransaction: 1}})
	const n = 20_000
	perAccount := map[string]int{}
	for range n {
		perAccount[string(g.Next().Key)]++
	}
	hot := perAccount["acc-0000000"]
	if share := float64(hot) / n; share < 0.005 || share > 0.05 {
		t.Errorf("hottest account has %.3f of transactions, want a hot but not dominant key", share)
	}
	if len(perAccount) < 2000 {
		t.Errorf("only %d distinct accounts in %d events: no long tail", len(perAccount), n)
	}
}

func TestDocumentsWithoutPersonalData(t *testing.T) {
	g := mustGenerator(t, Config{Mix: map[string]float64{TypeDocument: 1}, Ambiguous: map[string]float64{AllTypes: 0}})
	var clean, pii int
	for range 5000 {
		obj, err := decode(g.Next().Value)
		if err != nil {
			t.Fatal(err)
		}
		body := text(obj, "text")
		switch text(obj, "template_id") {
		case "marketing_flyer_v1", "release_notes_v1":
			clean++
			if emailPattern.MatchString(body) || ibanPattern.MatchString(body) || strings.ContainsRune(body, '@') {
				t.Fatalf("PII-free template carries an e-mail or IBAN: %q", body)
			}
		case "payslip_v1", "contract_nda_v3", "id_scan_v1":
			pii++
		}
	}
	if clean == 0 || pii == 0 {
		t.Errorf("clean=%d pii=%d: want both kinds of known templates", clean, pii)
	}
}

func TestIBANCheckDigits(t *testing.T) {
	g := mustGenerator(t, Config{})
	for range 200 {
		s := g.person().iban
		// ISO 13616: move the first four characters to the end; the number mod 97 is 1.
		rearranged := s[4:] + s[:4]
		mod := 0
		for _, c := range rearranged {
			if c >= 'A' {
				mod = (mod*100 + int(c-'A'+10)) % 97
			} else {
				mod = (mod*10 + int(c-'0')) % 97
			}
		}
		if mod != 1 || !ibanPattern.MatchString(s) {
			t.Fatalf("IBAN %s: mod 97 = %d", s, mod)
		}
	}
}

func BenchmarkNext(b *testing.B) {
	g := mustGenerator(b, Config{Seed: 1, Now: fixedNow})
	var total int64
	for b.Loop() {
		total += int64(len(g.Next().Value))
	}
	b.SetBytes(total / int64(max(b.N, 1)))
}
