package audit

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"
)

// signedChain links n decisions into one chain with a checkpoint after
// every third, and returns the rows as stored.
func signedChain(t *testing.T, s *Signer, n int) []Record {
	t.Helper()
	c := NewSignedChains(s)
	var out []Record
	for i := range n {
		r := &Record{AuditID: ID("", fmt.Sprint("ev", i), KindDecision, 0), Kind: KindDecision, EventID: fmt.Sprint("ev", i),
			Outcome: "allow", Status: StatusOK, At: time.Now()}
		c.Link("events/0", []*Record{r}, func() {})
		out = append(out, *r)
		if i%3 == 2 {
			if got := c.Unsigned(); !slices.Equal(got, []string{"events/0"}) {
				t.Fatalf("Unsigned() = %v after a decision, want the chain", got)
			}
			cp := Checkpoint("member-1", time.Now())
			c.Link("events/0", []*Record{cp}, func() {})
			out = append(out, *cp)
			if got := c.Unsigned(); len(got) != 0 {
				t.Fatalf("Unsigned() = %v right after a checkpoint, want none", got)
			}
		}
	}
	return out
}

// TestSignedCheckpoints: a chain rewritten from an edited row on, every
// hash recomputed, verifies as a chain; only the key's checkpoints tell.
func TestSignedCheckpoints(t *testing.T) {
	key := bytes.Repeat([]byte("k"), MinSigningKeyBytes)
	s, err := NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSigner(key[:31]); err == nil {
		t.Fatal("a 31-byte key was accepted")
	}
	rows := signedChain(t, s, 9) // 9 decisions, 3 checkpoints
	if breaks := Verify(rows, s); len(breaks) != 0 {
		t.Fatalf("intact signed chain: %v", breaks)
	}
	for _, r := range rows {
		if r.Kind == KindCheckpoint && (r.Mode != s.ID() || len(r.Reason) != 64 || r.AuditID == "") {
			t.Fatalf("checkpoint %+v lacks its key id, signature or id", r)
		}
	}

	// Rewrite: row 1's outcome, then every hash and link after it.
	forged := slices.Clone(rows)
	forged[1].Outcome = "block"
	for i := 1; i < len(forged); i++ {
		forged[i].PrevHash = forged[i-1].Hash
		forged[i].Hash = forged[i].ComputeHash()
	}
	if breaks := Verify(forged, nil); len(breaks) != 0 {
		t.Fatalf("the rewritten chain should verify without the key, got %v", breaks)
	}
	var got []string
	for _, b := range Verify(forged, s) {
		got = append(got, fmt.Sprintf("%d:%s", b.Seq, b.Problem))
	}
	if want := []string{"3:bad signature", "7:bad signature", "11:bad signature"}; !slices.Equal(got, want) {
		t.Fatalf("with the key: %v, want %v", got, want)
	}

	// Another key's checkpoints do not pass for this one's.
	other, err := NewSigner(bytes.Repeat([]byte("o"), MinSigningKeyBytes))
	if err != nil {
		t.Fatal(err)
	}
	if breaks := Verify(rows, other); len(breaks) != 3 {
		t.Fatalf("checked with another key: %v, want 3 bad signatures", breaks)
	}
}
