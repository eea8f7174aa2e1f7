package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/internal/latency"
)

// produceTracked produces n events and returns what was acknowledged.
func produceTracked(t *testing.T, addrs []string, n int) []Sent {
	t.Helper()
	cl := newClient(t, addrs, ProducerClientOpts()...)
	rep, err := Produce(t.Context(), cl, mustGenerator(t, Config{Seed: 9, Bad: 0.2}), ProduceOptions{Events: n, Track: true, Clock: msClock})
	if err != nil || rep.Acked != n {
		t.Fatalf("Produce: acked %d of %d, %v (%s)", rep.Acked, n, err, rep.FirstError)
	}
	return rep.Produced
}

func decisionRecord(t *testing.T, s Sent, path string, at time.Time) *kgo.Record {
	t.Helper()
	v, err := json.Marshal(map[string]any{"event_id": s.EventID, "type": s.Type, "tenant_id": "tenant-00",
		"key": "k", "outcome": "allow", "path": path, "rule_id": "default", "reason": "test",
		"latency_ms": 1, "decided_at": at.Format(time.RFC3339Nano)})
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: DefaultDecisionsTopic, Key: []byte("k"), Value: v, Timestamp: at}
}

func dlqRecord(s Sent, reason string, at time.Time) *kgo.Record {
	return &kgo.Record{Topic: DefaultDLQTopic, Value: []byte("original"), Timestamp: at, Headers: []kgo.RecordHeader{
		{Key: "triage.dlq.reason", Value: []byte(reason)},
		{Key: "triage.dlq.error", Value: []byte("test")},
		{Key: "triage.dlq.topic", Value: []byte(s.Topic)},
		{Key: "triage.dlq.partition", Value: []byte(strconv.Itoa(int(s.Partition)))},
		{Key: "triage.dlq.offset", Value: []byte(strconv.FormatInt(s.Offset, 10))},
	}}
}

func TestMeasureAccountsForEveryEvent(t *testing.T) {
	addrs := newCluster(t)
	sent := produceTracked(t, addrs, 300)
	since := slices.MinFunc(sent, func(a, b Sent) int { return a.ProducedAt.Compare(b.ProducedAt) }).ProducedAt

	// Play the consumer: decide valid events d ms after they were produced,
	// DLQ the malformed ones, and get a few things wrong on purpose.
	var recs []*kgo.Record
	var lats latency.Histogram // what the decisions below make
	var missing string
	var valid, bad int
	for i, s := range sent {
		if s.Bad != "" {
			bad++
			reason := s.Bad
			if bad == 1 {
				reason = "invalid_value_or_so" // a mismatched reason
			}
			recs = append(recs, dlqRecord(s, reason, s.ProducedAt.Add(time.Millisecond)))
			continue
		}
		valid++
		if missing == "" {
			missing = s.EventID
			// A decision from an earlier run with the same seed must not count.
			recs = append(recs, decisionRecord(t, s, "rule", since.Add(-time.Hour)))
			continue
		}
		d := time.Duration(1+i%100) * time.Millisecond
		lats.Record(d)
		path := map[bool]string{true: "sampled", false: "rule"}[s.Ambiguous]
		if valid == 2 {
			path = "cache"
			if s.Ambiguous {
				path = "rule"
			}
		}
		recs = append(recs, decisionRecord(t, s, path, s.ProducedAt.Add(d)))
		if valid == 3 {
			recs = append(recs, decisionRecord(t, s, path, s.ProducedAt.Add(d))) // a duplicate
		}
	}
	recs = append(recs, decisionRecord(t, Sent{EventID: "not-ours", Type: TypeTransaction}, "rule", time.Now()))
	w := newClient(t, addrs)
	if err := w.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatalf("write decisions: %v", err)
	}

	opts := MeasureOptions{Sent: sent, Grace: 3 * time.Second, Since: since}
	m, err := Measure(t.Context(), newClient(t, addrs, MeasureClientOpts(opts)...), opts)
	if err != nil {
		t.Fatalf("Measure: %v", err)
	}
	want := Measurement{
		Tracked: len(sent), Decided: valid - 1, DLQ: bad, Missing: 1, MissingIDs: []string{missing},
		Duplicates: 1, Mismatched: 1, Misrouted: 1,
	}
	if m.Tracked != want.Tracked || m.Decided != want.Decided || m.DLQ != want.DLQ || m.Missing != want.Missing ||
		!slices.Equal(m.MissingIDs, want.MissingIDs) || m.Duplicates != want.Duplicates ||
		m.Mismatched != want.Mismatched || m.Misrouted != want.Misrouted {
		t.Errorf("counts:\n got %+v\nwant %+v", m, want)
	}
	// The duplicate and the earlier run's decision must not be recorded.
	if m.Latency.Count() != lats.Count() || m.Latency.Max() != lats.Max() || m.Latency.Clamped() != 0 {
		t.Errorf("latency count %d, max %v, clamped %d; want %d, %v, 0",
			m.Latency.Count(), m.Latency.Max(), m.Latency.Clamped(), lats.Count(), lats.Max())
	}
	for _, q := range []float64{0.5, 0.9, 0.99} {
		if got, want := m.Latency.Quantile(q), lats.Quantile(q); got != want || got == 0 {
			t.Errorf("latency quantile %v = %v, want %v", q, got, want)
		}
	}
	if m.ByOutcome["allow"] != valid-1 || m.ByPath["rule"]+m.ByPath["sampled"]+m.ByPath["cache"] != valid-1 ||
		m.ByReason["invalid_value_or_so"] != 1 || len(m.Mismatches) != 1 {
		t.Errorf("by outcome %v, path %v, reason %v, mismatches %q", m.ByOutcome, m.ByPath, m.ByReason, m.Mismatches)
	}
}

func TestMeasureStopsWhenAllAccountedFor(t *testing.T) {
	addrs := newCluster(t)
	sent := produceTracked(t, addrs, 50)
	var recs []*kgo.Record
	for _, s := range sent {
		if s.Bad != "" {
			recs = append(recs, dlqRecord(s, s.Bad, s.ProducedAt))
		} else {
			recs = append(recs, decisionRecord(t, s, map[bool]string{true: "sampled", false: "rule"}[s.Ambiguous], s.ProducedAt))
		}
	}
	if err := newClient(t, addrs).ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// A grace this long would time the test out if Measure waited for it.
	opts := MeasureOptions{Sent: sent, Grace: time.Hour}
	m, err := Measure(t.Context(), newClient(t, addrs, MeasureClientOpts(opts)...), opts)
	if err != nil || m.Missing != 0 || m.Decided+m.DLQ != len(sent) || m.Mismatched+m.Misrouted+m.Duplicates != 0 {
		t.Fatalf("err %v, measurement %+v", err, m)
	}
}

func TestMeasureHonoursContext(t *testing.T) {
	addrs := newCluster(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	opts := MeasureOptions{Sent: []Sent{{EventID: "e", Topic: DefaultTransactionsTopic}}}
	m, err := Measure(ctx, newClient(t, addrs, MeasureClientOpts(opts)...), opts)
	if !errors.Is(err, context.Canceled) || m.Missing != 1 || !slices.Equal(m.MissingIDs, []string{"e"}) {
		t.Fatalf("err %v, measurement %+v", err, m)
	}
}

func TestMeasureRejectsClientsThatCannotMeasure(t *testing.T) {
	addrs := newCluster(t)
	opts := MeasureOptions{Sent: []Sent{{EventID: "e"}}}
	for name, cl := range map[string]*kgo.Client{
		"not consuming": newClient(t, addrs),
		"group":         newClient(t, addrs, kgo.ConsumerGroup("g"), kgo.ConsumeTopics(DefaultDecisionsTopic)),
	} {
		if _, err := Measure(t.Context(), cl, opts); err == nil {
			t.Errorf("%s client accepted", name)
		}
	}
	if _, err := Measure(t.Context(), nil, opts); err == nil {
		t.Error("nil client accepted")
	}
}
