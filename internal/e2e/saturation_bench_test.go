package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	ikafka "github.com/triage-dev/triage/internal/kafka"
	"github.com/triage-dev/triage/internal/kafkatest"
	"github.com/triage-dev/triage/internal/latency"
	"github.com/triage-dev/triage/internal/loadgen"
	"github.com/triage-dev/triage/internal/testrun"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
)

// Saturation run: what the issue fixes (a 2 s sampler, 8 workers, 2,000
// events/s), for 30 s of events.
const (
	satRate    = 2000
	satFor     = 30 * time.Second
	satWorkers = 8
	// satMaxAge is the types' max_age in the run: the backlog older than
	// that drains as stale fallbacks once the events stop.
	satMaxAge = "20s"
)

// BenchmarkSaturation runs the consumer binary (both stages, the builtin
// offline sampler, 8 workers) on Apache Kafka while cmd/producer's
// generator offers 2,000 events/s for 30 s, once with an instant sampler
// and once with one that takes 2 s per answer (4 answers/s in all, against
// about 150 ambiguous events/s). It prints, per case, a table of the run
// second by second (rule decisions, the sampling topic's lag, RSS) and
// reports the rule path's latency (produce to decision, from the decision
// records), the rule decisions' rate over the offered rule rate, the peak
// and final sampling lag and the peak RSS. Run it with scripts/bench
// saturation; -benchtime is ignored (one run per case).
func BenchmarkSaturation(b *testing.B) {
	bin := binaries(b)
	var apache kafkatest.Broker
	for _, br := range kafkatest.Brokers() {
		if br.Name == "apache" {
			apache = br
		}
	}
	if apache.Name == "" {
		b.Fatal("no Apache Kafka broker among kafkatest.Brokers")
	}
	for _, sampler := range []time.Duration{0, time.Second, 2 * time.Second} {
		b.Run("sampler="+sampler.String(), func(b *testing.B) { saturation(b, bin, apache, sampler) })
	}
}

// satRow is one second of a saturation run, from the consumer's /metrics.
type satRow struct {
	at                      time.Duration
	produced                int64
	rule, sampled, fallback float64
	lag, rssMB              float64
}

func saturation(b *testing.B, bin map[string]string, broker kafkatest.Broker, sampler time.Duration) {
	k := newKafka(b, broker)
	// The shipped rules without their guards (whose limits would refuse
	// part of the sampled traffic) and with a short max_age.
	dir := b.TempDir()
	policy, _, _ := strings.Cut(string(rules.Default), "\nguards:")
	for _, age := range []string{"max_age: 5m", "max_age: 15m"} {
		policy = strings.ReplaceAll(policy, age, "max_age: "+satMaxAge)
	}
	// An attempt may take the sampler's 2 s and more.
	for _, timeout := range []string{"timeout: 2s", "timeout: 5s"} {
		policy = strings.ReplaceAll(policy, timeout, "timeout: 10s")
	}
	rulesFile := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesFile, []byte(policy), 0o600); err != nil {
		b.Fatal(err)
	}
	addr := testrun.FreeAddr(b)
	consumer := start(b, "consumer", bin["consumer"], k.consumerArgs("--mask-key", maskKey, "--http-listen", addr,
		"--mcp-listen", "", "--sampler", "builtin", "--provider", "offline", "--offline-latency", sampler.String(),
		"--workers", strconv.Itoa(satWorkers), "--rules", rulesFile, "--log-format", "text", "--log-level", "warn")...)
	poll(b, "consumer ready", func() bool {
		consumer.FailIfExited(b)
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	gen := k.generator(b, loadgen.Config{Seed: 11})
	cl := kafkatest.Client(b, k.brokers, loadgen.ProducerClientOpts()...)
	// Warm up: the groups' first assignments take seconds, which the
	// measured events must not wait for; every warm-up event decided means
	// both stages are running, the sampling stage's samplers included.
	const warmup = 500
	if rep, err := loadgen.Produce(context.Background(), cl, gen, loadgen.ProduceOptions{Events: warmup}); err != nil || rep.Acked != warmup {
		b.Fatalf("warm-up: produced %d of %d: %v", rep.Acked, warmup, err)
	}
	poll(b, "the warm-up's decisions", func() bool {
		consumer.FailIfExited(b)
		m := scrape(b, addr)
		return m.sum("triage_decisions_total", "")+m.sum("triage_dlq_records_total", "") >= warmup
	})
	base := scrape(b, addr)
	adm := kadm.NewClient(kafkatest.Client(b, k.brokers))
	samplingLag := func() float64 {
		committed, end, err := ikafka.CommittedAndEnd(context.Background(), adm, k.group+".sampling", k.sampling)
		if err != nil {
			b.Logf("sampling lag: %v", err)
		}
		return float64(end - committed)
	}
	var produced atomic.Int64
	prodDone := make(chan loadgen.Report, 1)
	start := time.Now()
	go func() {
		rep, err := loadgen.Produce(context.Background(), cl, gen, loadgen.ProduceOptions{
			Events: int(satRate * satFor.Seconds()), Rate: satRate,
			Progress: func(p loadgen.Progress) { produced.Store(int64(p.Acked)) },
		})
		if err != nil {
			b.Errorf("produce: %v", err)
		}
		prodDone <- rep
	}()

	var rows []satRow
	var rep loadgen.Report
	producing := true
	for deadline := time.Now().Add(satFor + 3*time.Minute); time.Now().Before(deadline); {
		time.Sleep(time.Second)
		consumer.FailIfExited(b)
		select {
		case rep = <-prodDone:
			producing = false
			produced.Store(int64(rep.Acked))
		default:
		}
		m := scrape(b, addr)
		delta := func(name, label string) float64 { return m.sum(name, label) - base.sum(name, label) }
		r := satRow{at: time.Since(start), produced: produced.Load(),
			rule: delta("triage_decisions_total", `path="rule"`), sampled: delta("triage_decisions_total", `path="sampled"`),
			fallback: delta("triage_decisions_total", `path="fallback"`),
			lag:      samplingLag(), rssMB: m.sum("process_resident_memory_bytes", "") / (1 << 20)}
		rows = append(rows, r)
		if !producing && int(r.rule+r.sampled+r.fallback+delta("triage_dlq_records_total", "")) >= rep.Acked {
			break
		}
	}
	if producing || len(rows) == 0 {
		b.Fatalf("the run did not finish: %d events produced", produced.Load())
	}

	// The rule path's latency, produce to decision, from the decision
	// records; the rule decisions' pace while the events were offered.
	var ruleLat latency.Histogram
	for _, r := range kafkatest.ReadTopic(b, k.brokers, k.decisions) {
		var d pipeline.Decision
		if err := json.Unmarshal(r.Value, &d); err != nil {
			b.Fatal(err)
		}
		if d.Path == pipeline.PathRule && d.DecidedAt.After(start) {
			ruleLat.Record(time.Duration(d.LatencyMS * float64(time.Millisecond)))
		}
	}
	offeredRule := float64(rep.Acked - rep.Ambiguous) // no malformed records in this run
	var atEnd satRow
	peakLag, peakRSS := 0.0, 0.0
	for _, r := range rows {
		if r.at <= satFor+time.Second {
			atEnd = r
		}
		peakLag, peakRSS = max(peakLag, r.lag), max(peakRSS, r.rssMB)
	}
	fmt.Printf("\n### sampler %s: %d events offered at %d/s (%d ambiguous), %d workers\n\n", sampler, rep.Acked, satRate, rep.Ambiguous, satWorkers)
	fmt.Println("| t s | produced | rule decisions | rule/s | sampled | fallback | sampling lag (records, with markers) | RSS MB |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---:|")
	prev := satRow{}
	for _, r := range rows {
		fmt.Printf("| %.0f | %d | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f |\n", r.at.Seconds(), r.produced, r.rule,
			(r.rule-prev.rule)/(r.at-prev.at).Seconds(), r.sampled, r.fallback, r.lag, r.rssMB)
		prev = r
	}
	final := rows[len(rows)-1]
	b.ReportMetric(ms(ruleLat.Quantile(0.5)), "rule_p50_ms")
	b.ReportMetric(ms(ruleLat.Quantile(0.99)), "rule_p99_ms")
	b.ReportMetric(atEnd.rule/(offeredRule*min(1, atEnd.at.Seconds()/satFor.Seconds())), "rule_rate_ratio")
	b.ReportMetric(peakLag, "peak_sampling_lag")
	b.ReportMetric(final.lag, "final_sampling_lag")
	b.ReportMetric(peakRSS, "peak_rss_MB")
	b.ReportMetric(final.at.Seconds(), "drained_s")
	b.ReportMetric(0, "ns/op")
	if err := consumer.Stop(b, syscall.SIGTERM, wait); err != nil {
		b.Logf("consumer stop: %v", err)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// metrics is a scrape of Prometheus text: each sample line's name and
// labels, and its value.
type metrics []struct {
	series string
	value  float64
}

// sum adds the values of the series named name whose labels contain
// label (any, when empty).
func (m metrics) sum(name, label string) float64 {
	total := 0.0
	for _, s := range m {
		n, rest, _ := strings.Cut(s.series, "{")
		if n == name && strings.Contains(rest, label) {
			total += s.value
		}
	}
	return total
}

func scrape(b *testing.B, addr string) metrics {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var m metrics
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m = append(m, struct {
			series string
			value  float64
		}{line[:i], v})
	}
	return m
}
