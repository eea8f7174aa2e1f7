package loadgen

import (
	"strings"
	"testing"
	"time"

	"github.com/triage-dev/triage/internal/latency"
)

func TestMeasurementTable(t *testing.T) {
	lat := &latency.Histogram{}
	for i := 1; i <= 100; i++ {
		lat.Record(time.Duration(i) * time.Millisecond)
	}
	m := Measurement{
		Tracked: 102, Decided: 100, DLQ: 1, Missing: 1, MissingIDs: []string{"txn-1"},
		Latency: lat, ByPath: map[string]int{"rule": 90, "sampled": 10}, ByReason: map[string]int{"invalid_json": 1},
		Elapsed: 1500 * time.Millisecond,
	}
	var b strings.Builder
	if err := m.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	const want = `tracked         102
decided         100
dlq             1
missing         1
duplicates      0
mismatched      0
misrouted       0
latency p50     50.015ms
latency p90     90.047ms
latency p99     99.007ms
latency max     100ms
measured for    1.5s
path            count
  rule          90
  sampled       10
dlq reason      count
  invalid_json  1
missing ids     txn-1
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}

	lat.Record(-time.Second)
	b.Reset()
	if err := m.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "latency clamped  1\n") {
		t.Errorf("a clamped latency is not shown:\n%s", b.String())
	}
}

// A Measurement that never saw a decision prints zero latencies.
func TestEmptyMeasurementTable(t *testing.T) {
	var b strings.Builder
	if err := (Measurement{}).WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"latency p50 0s", "latency max 0s"} {
		if !strings.Contains(strings.Join(strings.Fields(b.String()), " "), want) {
			t.Errorf("no %q in:\n%s", want, b.String())
		}
	}
}
