package audit

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func linked(t *testing.T, n int) []Record {
	t.Helper()
	c := NewChains()
	var out []Record
	for i := range n {
		r := &Record{AuditID: ID("", fmt.Sprint("ev", i), KindDecision, 0), Kind: KindDecision, EventID: fmt.Sprint("ev", i),
			Outcome: "allow", Status: StatusOK, LatencyMS: 1.25 * float64(i), At: time.Now()}
		c.Link("events/0", []*Record{r}, func() {})
		out = append(out, *r)
	}
	return out
}

func TestVerify(t *testing.T) {
	cases := []struct {
		name   string
		tamper func([]Record) []Record
		want   []string // "seq:problem"
	}{
		{"intact", func(rs []Record) []Record { return rs }, nil},
		{"replayed duplicate", func(rs []Record) []Record {
			return append(rs[:3:3], append([]Record{rs[2]}, rs[3:]...)...)
		}, nil},
		{"edited outcome", func(rs []Record) []Record { rs[2].Outcome = "block"; return rs }, []string{"2:edited"}},
		{"edited with a recomputed hash", func(rs []Record) []Record {
			rs[2].Outcome = "block"
			rs[2].Hash = rs[2].ComputeHash()
			return rs
		}, []string{"3:broken link"}},
		{"deleted row", func(rs []Record) []Record { return append(rs[:2:2], rs[3:]...) }, []string{"3:missing seq 2"}},
		{"inserted row at a taken position", func(rs []Record) []Record {
			fake := rs[2]
			fake.EventID, fake.AuditID = "forged", "forged"
			fake.Hash = fake.ComputeHash()
			return append(rs[:3:3], append([]Record{fake}, rs[3:]...)...)
		}, []string{"2:conflict"}},
		{"appended row with a wrong link", func(rs []Record) []Record {
			fake := rs[4]
			fake.Seq, fake.PrevHash, fake.EventID = 5, "00", "forged"
			fake.Hash = fake.ComputeHash()
			return append(rs, fake)
		}, []string{"5:broken link"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, b := range Verify(c.tamper(linked(t, 5)), nil) {
				got = append(got, fmt.Sprintf("%d:%s", b.Seq, b.Problem))
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Fatalf("breaks %v, want %v", got, c.want)
			}
		})
	}
}

func TestSegmentsRestartAfterReset(t *testing.T) {
	c := NewChains()
	a, b := &Record{}, &Record{}
	c.Link("t/1", []*Record{a}, func() {})
	c.Reset([]string{"t/1"})
	c.Link("t/1", []*Record{b}, func() {})
	if a.Segment == b.Segment || b.Seq != 0 || b.PrevHash != "" {
		t.Fatalf("after reset: %+v", b)
	}
}

// TestLinkedRecordsSurviveJSON: a string that is not valid UTF-8 (a cut
// model answer, an odd record key) is stored as encoding/json writes it;
// the hash covers that form, so the stored row verifies.
func TestLinkedRecordsSurviveJSON(t *testing.T) {
	c := NewChains()
	r := &Record{AuditID: "a1", Kind: KindDecision, Reason: "cut in the middle: \xe2\x82", Key: "k\xff", Status: StatusOK, At: time.Now()}
	c.Link("events/0", []*Record{r}, func() {})
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var stored Record
	if err := json.Unmarshal(b, &stored); err != nil {
		t.Fatal(err)
	}
	if breaks := Verify([]Record{stored}, nil); len(breaks) != 0 {
		t.Fatalf("a record with invalid UTF-8, stored through JSON: %+v", breaks)
	}
}
