package audit

import (
	stdjson "encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
)

// plainSeeds are topic values of both kinds: as AppendJSON and
// encoding/json write them, with awkward strings, numbers and times, and
// some the plain scanner must leave to json.Unmarshal.
func plainSeeds(t testing.TB) [][]byte {
	t.Helper()
	strs := []string{"", "events.documents/3", `{"outcome":"review"}`, `back \ slash`, "<html> & co", "tab\tnew\nline\x00\x1f",
		"résumé ✓ 😀", "line\u2028sep", "del \x7f", "bad \xff utf8"}
	times := []time.Time{time.UnixMilli(1700000000123).UTC(), time.Date(2026, 12, 2, 10, 0, 0, 123456789, time.FixedZone("x", -5*3600-1800)), {}}
	score := 0.75
	var out [][]byte
	for i, s := range strs {
		r := Record{AuditID: s, Kind: KindSampling, EventID: "ev-" + s, Type: "transaction", TenantID: "t1", Key: s,
			Path: "sampled", Status: StatusOK, RequestSummary: s, ResponseSummary: s, InputTokens: int64(i) * 1000, OutputTokens: math.MaxInt64,
			TokensEstimated: i%2 == 0, LatencyMS: float64(i) / 7, At: times[i%len(times)], Topic: "events.transactions", Partition: int32(i),
			Offset: math.MinInt64, Chain: "events.transactions/1", Seq: int64(i), Hash: strings.Repeat("ab", 32)}
		d := Decision{EventID: r.EventID, Type: r.Type, TenantID: r.TenantID, Key: s, Outcome: "allow", Path: r.Path, Reason: s,
			LatencyMS: r.LatencyMS, DecidedAt: r.At}
		if i%2 == 1 {
			d.Score = &score
		}
		for _, v := range []any{&r, &d} {
			b, err := stdjson.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
		out = append(out, r.AppendJSON(nil), d.AppendJSON(nil))
	}
	for _, s := range []string{
		`{}`, ` { "audit_id" : "a" , "at" : "2026-01-02T03:04:05Z" } `, `{"Audit_ID":"a"}`, `{"audit_id":null}`,
		`{"audit_id":"a","audit_id":"b"}`, `{"audit_id":"\ud83d\ude00"}`, `{"audit_id":"\ud800"}`, `{"audit_id":"\u00e9\/\""}`,
		`{"partition":2147483648}`, `{"input_tokens":1.0}`, `{"input_tokens":1e3}`, `{"input_tokens":01}`, `{"input_tokens":-0}`,
		`{"latency_ms":1e400}`, `{"latency_ms":-0.5E-3}`, `{"tokens_estimated":true}`, `{"tokens_estimated":1}`,
		`{"at":"2026-01-02T03:04:05.1234567890Z"}`, `{"at":"2026-01-02t03:04:05z"}`, `{"at":"2026-01-02T03:04:05+24:00"}`,
		`{"at":"2026-02-30T03:04:05Z"}`, `{"at":"2026-01-02T03:04:05,5Z"}`, `{"decided_at":"2026-01-02T03:04:05-00:30"}`,
		`{"score":null}`, `{"score":1,"score":2}`, `{"unknown":1}`, `{"audit_id":"a"} x`, `[1,2,3]`, `null`, `"x"`, `{"audit_id":"a",}`,
		"{\"audit_id\":\"a\xffb\"}", `{"audit_id":"a` + "\x01" + `"}`,
	} {
		out = append(out, []byte(s))
	}
	return out
}

// FuzzDecodePlain: every value the plain scanner reads, json.Unmarshal
// (with the sink's options) reads too, to the same record or decision.
func FuzzDecodePlain(f *testing.F) {
	for _, v := range plainSeeds(f) {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		samePlain(t, value, (*Record).decodePlain)
		samePlain(t, value, (*Decision).decodePlain)
	})
}

// samePlain checks that if decodePlain reads value, json.Unmarshal reads
// it to the same T.
func samePlain[T any](t *testing.T, value []byte, decodePlain func(*T, []byte) bool) {
	var got, want T
	if !decodePlain(&got, value) {
		return
	}
	if err := json.Unmarshal(value, &want, decodeOptions); err != nil {
		t.Fatalf("the plain scanner read %q, json.Unmarshal refuses it: %v", value, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: the plain scanner read\n%+v\njson.Unmarshal\n%+v", value, got, want)
	}
}

// TestDecodePlainTakesEncoded: what the pipeline and encoding/json write,
// escapes included, takes the plain path (the sink's fast one); what only
// json.Unmarshal reads correctly does not.
func TestDecodePlainTakesEncoded(t *testing.T) {
	_, values := benchRecords(t, 8)
	for _, v := range values {
		var r Record
		if !r.decodePlain(v) {
			t.Errorf("not plain: %s", v)
		}
	}
	for _, s := range []string{`{"Audit_ID":"a"}`, `{"audit_id":null}`, `{"audit_id":"\ud800"}`, "{\"audit_id\":\"a\xffb\"}",
		`{"unknown":1}`, `{"input_tokens":1.0}`, `{"at":"2026-01-02t03:04:05z"}`, `{"audit_id":"a"} x`} {
		var r Record
		if r.decodePlain([]byte(s)) {
			t.Errorf("plain: %s", s)
		}
	}
}

// BenchmarkDecodeAudit is decodeAudit's cost on benchRecords' values, the plain
// path; BenchmarkDecodeAudit/json is json.Unmarshal's for comparison.
func BenchmarkDecodeAudit(b *testing.B) {
	_, values := benchRecords(b, 1000)
	b.Run("plain", func(b *testing.B) {
		var r Record
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := decodeAudit(values[i%len(values)], &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			var r Record
			if err := json.Unmarshal(values[i%len(values)], &r, decodeOptions); err != nil {
				b.Fatal(err)
			}
		}
	})
}
