package loadgen

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// newCluster starts an in-process broker with the contract's topics.
func newCluster(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4,
		DefaultTransactionsTopic, DefaultDocumentsTopic, DefaultDecisionsTopic, DefaultDLQTopic))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func newClient(t *testing.T, addrs []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...)}, opts...)...)
	if err != nil {
		t.Fatalf("kgo: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// msClock gives millisecond timestamps, the resolution Kafka keeps, so
// ProducedAt equals the stored record timestamp exactly.
func msClock() time.Time { return time.Now().Truncate(time.Millisecond) }

func TestProduceAcksEveryEvent(t *testing.T) {
	addrs := newCluster(t)
	cl := newClient(t, addrs, ProducerClientOpts()...)
	g := mustGenerator(t, Config{Seed: 11, Bad: 0.1})
	const n = 600
	rep, err := Produce(t.Context(), cl, g, ProduceOptions{Events: n, Track: true, Clock: msClock})
	if err != nil {
		t.Fatalf("Produce: %v", err)
	}
	if rep.Sent != n || rep.Acked != n || rep.Errors != 0 || len(rep.Produced) != n || rep.Stopped != "events" {
		t.Fatalf("report sent=%d acked=%d errors=%d produced=%d stopped=%q first error %q",
			rep.Sent, rep.Acked, rep.Errors, len(rep.Produced), rep.Stopped, rep.FirstError)
	}
	if rep.ByType[TypeTransaction]+rep.ByType[TypeDocument] != n || rep.Rate <= 0 || rep.Bytes < TooLargeBytes {
		t.Errorf("by type %v, rate %v, bytes %d", rep.ByType, rep.Rate, rep.Bytes)
	}
	bad, amb := map[string]int{}, 0
	byPos := map[position]Sent{}
	for _, s := range rep.Produced {
		if s.Bad != "" {
			bad[s.Bad]++
		}
		if s.Ambiguous {
			amb++
		}
		byPos[position{s.Topic, s.Partition, s.Offset}] = s
	}
	if !mapsEqual(bad, rep.ByBad) || amb != rep.Ambiguous || rep.ByBad[BadTooLarge] == 0 {
		t.Errorf("tracked bad %v ambiguous %d; report %v %d", bad, amb, rep.ByBad, rep.Ambiguous)
	}

	// Every tracked position holds the event it claims, with ProducedAt as its timestamp.
	rd := newClient(t, addrs, kgo.ConsumeTopics(DefaultTransactionsTopic, DefaultDocumentsTopic))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for seen := 0; seen < n; {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read back %d of %d records: %v", seen, n, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			seen++
			s, ok := byPos[position{r.Topic, r.Partition, r.Offset}]
			if !ok || !bytes.Contains(r.Value, []byte(s.EventID)) || !r.Timestamp.Equal(s.ProducedAt) {
				t.Errorf("record %s/%d@%d does not match its Sent %+v", r.Topic, r.Partition, r.Offset, s)
			}
		})
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestProduceCountsFailures(t *testing.T) {
	addrs := newCluster(t)
	// Without ProducerClientOpts kgo refuses records above its 1 MB batch limit.
	cl := newClient(t, addrs)
	g := mustGenerator(t, Config{Seed: 2, Bad: 1})
	rep, err := Produce(t.Context(), cl, g, ProduceOptions{Events: 200})
	if err != nil {
		t.Fatalf("Produce: %v", err)
	}
	tooLarge := rep.ByBad[BadTooLarge]
	if tooLarge == 0 || rep.Errors != tooLarge || rep.Acked != rep.Sent-tooLarge {
		t.Fatalf("too_large %d, errors %d, acked %d of %d", tooLarge, rep.Errors, rep.Acked, rep.Sent)
	}
	if !strings.Contains(rep.FirstError, "MESSAGE_TOO_LARGE") {
		t.Errorf("first error %q does not say why", rep.FirstError)
	}
}

func TestProducePacing(t *testing.T) {
	addrs := newCluster(t)
	cl := newClient(t, addrs, ProducerClientOpts()...)

	t.Run("rate bounds events", func(t *testing.T) {
		rep, err := Produce(t.Context(), cl, mustGenerator(t, Config{}), ProduceOptions{Events: 100, Rate: 1000})
		if err != nil {
			t.Fatal(err)
		}
		// 100 events 1 ms apart cannot take less than 99 ms.
		if rep.Acked != 100 || rep.Duration < 99*time.Millisecond {
			t.Fatalf("acked %d in %v", rep.Acked, rep.Duration)
		}
	})
	t.Run("duration stops and reports progress", func(t *testing.T) {
		var progress []Progress
		rep, err := Produce(t.Context(), cl, mustGenerator(t, Config{}), ProduceOptions{
			Duration: 1100 * time.Millisecond, Rate: 100,
			Progress: func(p Progress) { progress = append(progress, p) },
		})
		if err != nil {
			t.Fatal(err)
		}
		// The pacer never runs ahead of the rate: at most one event per 10 ms plus the first.
		if rep.Stopped != "duration" || rep.Sent < 1 || rep.Sent > 111 || rep.Acked != rep.Sent {
			t.Fatalf("stopped %q after sent %d acked %d", rep.Stopped, rep.Sent, rep.Acked)
		}
		if len(progress) == 0 || progress[0].Sent == 0 || progress[0].Elapsed < time.Second {
			t.Fatalf("progress %+v", progress)
		}
	})
	t.Run("cancel stops", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		rep, err := Produce(ctx, cl, mustGenerator(t, Config{}), ProduceOptions{})
		if err != nil || rep.Stopped != "canceled" || rep.Sent != 0 {
			t.Fatalf("err %v, stopped %q, sent %d", err, rep.Stopped, rep.Sent)
		}
	})
	t.Run("bad options", func(t *testing.T) {
		_, err := Produce(t.Context(), cl, mustGenerator(t, Config{}), ProduceOptions{Rate: -1})
		if err == nil {
			t.Fatal("negative rate accepted")
		}
		if _, err := Produce(t.Context(), nil, nil, ProduceOptions{}); err == nil {
			t.Fatal("nil client accepted")
		}
	})
}

func TestPacer(t *testing.T) {
	start := time.Unix(0, 0)
	p := newPacer(10, start) // 100 ms apart
	tests := []struct {
		now, want time.Duration // offsets from start
	}{
		{0, 0},
		{0, 100 * time.Millisecond}, // booked behind the first
		{150 * time.Millisecond, 200 * time.Millisecond}, // still waits its turn
		{time.Second, time.Second},                       // late: at once, credit capped at one event
		{time.Second, 1100 * time.Millisecond},
	}
	for i, tt := range tests {
		if got := p.reserve(start.Add(tt.now)).Sub(start); got != tt.want {
			t.Errorf("reserve %d at %v = %v, want %v", i, tt.now, got, tt.want)
		}
	}
	unlimited := newPacer(0, start)
	if now := start.Add(time.Hour); !unlimited.reserve(now).Equal(now) {
		t.Error("rate 0 must not wait")
	}
}
