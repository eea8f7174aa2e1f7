package audit

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestAppendJSONAsMarshal: the hand-written encoders write what
// encoding/json writes for the struct tags, byte for byte where the
// strings are valid UTF-8 without U+2028/U+2029 (which encoding/json
// escapes and jsontext need not), and the same values always; over
// records drawn at random, empty and full, with awkward strings and
// numbers.
func TestAppendJSONAsMarshal(t *testing.T) {
	strs := []string{"", "a", "events.documents/3", `quote " and \ backslash`, "<html> & co", "tab\tnew\nline\x00\x1f",
		"résumé ✓ 😀", strings.Repeat("x", 5000), "bad \xff utf8", "line\u2028sep\u2029", "del \x7f", "~ }"}
	floats := []float64{0, 1, -1, 12.345, 0.000001, 0.0000001234, 1e20, 1e21, 123456789.125, math.SmallestNonzeroFloat64, -3.5e-9}
	times := []time.Time{{}, time.UnixMilli(1700000000123).UTC(), time.Date(2026, 12, 2, 10, 0, 0, 123456789, time.FixedZone("x", 3600))}
	rng := rand.New(rand.NewPCG(1, 2))
	s := func() string { return strs[rng.IntN(len(strs))] }
	n := func() int64 { return []int64{0, 1, -7, math.MaxInt64, math.MinInt64}[rng.IntN(5)] }
	for i := range 2000 {
		r := Record{AuditID: s(), Kind: Kind(s()), EventID: s(), Type: s(), TenantID: s(), UserID: s(), Key: s(),
			Path: s(), RuleID: s(), Outcome: s(), Reason: s(), Status: Status(s()), Mode: s(), SamplerSession: s(),
			ModelRequested: s(), ModelAnswered: s(), InputTokens: n(), OutputTokens: n(), RequestSummary: s(), ResponseSummary: s(),
			Tier: s(), Tool: s(), CacheKey: s(), SourceAuditID: s(), TokensEstimated: rng.IntN(2) == 0, Channel: s(), Caller: s(),
			LatencyMS: floats[rng.IntN(len(floats))], At: times[rng.IntN(len(times))], Topic: s(), Partition: int32(n()), Offset: n(),
			Consumer: s(), Chain: s(), Segment: s(), Seq: n(), PrevHash: s(), Hash: s()}
		if i == 0 {
			r = Record{}
		}
		d := Decision{EventID: r.EventID, Type: r.Type, TenantID: r.TenantID, Key: r.Key, Outcome: r.Outcome, Path: r.Path,
			RuleID: r.RuleID, Reason: r.Reason, Model: r.ModelAnswered, Tier: r.Tier, LatencyMS: r.LatencyMS, DecidedAt: r.At}
		if i%3 == 1 {
			score := floats[rng.IntN(len(floats))]
			d.Score = &score
		}
		sameAsMarshal(t, &r, r.AppendJSON([]byte("prefix"))[len("prefix"):])
		sameAsMarshal(t, &d, d.AppendJSON(nil))
	}
}

func sameAsMarshal(t *testing.T, v any, got []byte) {
	t.Helper()
	var want bytes.Buffer
	enc := json.NewEncoder(&want)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	wantBytes := bytes.TrimSuffix(want.Bytes(), []byte("\n"))
	plain := !bytes.Contains(wantBytes, []byte(`\ufffd`)) && !bytes.Contains(wantBytes, []byte(`\u2028`))
	if plain && !bytes.Equal(got, wantBytes) {
		t.Fatalf("AppendJSON wrote\n%s\nencoding/json writes\n%s", got, wantBytes)
	}
	var a, b map[string]any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("AppendJSON wrote invalid JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal(wantBytes, &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("AppendJSON's values differ:\n%v\nencoding/json's:\n%v", a, b)
	}
}
