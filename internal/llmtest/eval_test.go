package llmtest_test

import (
	"flag"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/internal/injection"
	"github.com/triage-dev/triage/internal/llmtest"
	"github.com/triage-dev/triage/internal/loadgen"
	"github.com/triage-dev/triage/llm"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
	"github.com/triage-dev/triage/sampling"
)

var (
	evalEvents    = flag.Int("events", 200, "BenchmarkLocalModel: ambiguous events per configuration")
	evalInjection = flag.Bool("injection", true, "BenchmarkLocalModel: also count the injection corpus's flips")
)

// BenchmarkLocalModel is an evaluation, not a speed test: the real local
// model decides the same real ambiguous events (the load generator's,
// through the shipped policy) in direct mode, with structured output (the
// decision schema as a grammar) and without, and reports the share of
// events whose first answer was valid, valid after the corrective
// follow-up, and those that fell back, with the seconds per decision. Run
// it with -benchtime 1x (scripts/bench llm); -events sets the count.
func BenchmarkLocalModel(b *testing.B) {
	url, model := llmtest.BaseURL(b)
	set, err := rules.Load(llmtest.PolicyFile(b), rules.WithMaskKey(rules.RandomMaskKey()))
	if err != nil {
		b.Fatal(err)
	}
	if *evalInjection {
		b.Run("injection", func(b *testing.B) { injectionFlips(b, set, url, model) })
	}
	items := ambiguousItems(b, set, *evalEvents)
	for _, structured := range []string{llm.StructuredJSONObject, llm.StructuredNone} {
		b.Run("structured="+structured, func(b *testing.B) {
			prov, err := llm.New("openai", llm.Options{BaseURL: url, Model: model, Structured: structured, APIKey: "none"})
			if err != nil {
				b.Fatal(err)
			}
			d := sampling.NewDirect(prov, sampling.DirectOptions{Logger: slog.New(slog.DiscardHandler)})
			for b.Loop() {
				var c evalCounts
				start := time.Now()
				for _, it := range items {
					v, err := d.Decide(b.Context(), it)
					c.add(v, err)
					if testing.Verbose() {
						for _, a := range v.Attempts {
							b.Logf("%s %s: %s %q -> %q", it.Type.Name, it.Event.ID, a.Status, a.Reason, a.ResponseSummary)
						}
						if err != nil {
							b.Logf("%s %s: fallback: %v", it.Type.Name, it.Event.ID, err)
						}
					}
				}
				n := float64(len(items))
				b.ReportMetric(100*float64(c.first)/n, "%valid_first")
				b.ReportMetric(100*float64(c.corrected)/n, "%valid_corrected")
				b.ReportMetric(100*float64(c.invalid)/n, "%fallback_invalid")
				b.ReportMetric(100*float64(c.failed)/n, "%fallback_other")
				b.ReportMetric(time.Since(start).Seconds()/n, "s/decision")
				b.Logf("%s: %d events: %+v; outcomes %v", structured, len(items), c, c.outcomes)
			}
		})
	}
}

// evalCounts sorts the verdicts of an evaluation.
type evalCounts struct {
	first, corrected, invalid, failed int
	outcomes                          map[string]int
}

func (c *evalCounts) add(v pipeline.Verdict, err error) {
	if c.outcomes == nil {
		c.outcomes = map[string]int{}
	}
	switch {
	case err == nil && len(v.Attempts) > 0 && v.Attempts[0].Status == audit.StatusOK:
		c.first++
	case err == nil:
		c.corrected++
	case pipeline.FallbackReason(err) == string(audit.StatusInvalidAnswer):
		c.invalid++
	default:
		c.failed++
	}
	if err == nil {
		c.outcomes[v.Outcome]++
	}
}

// ambiguousItems decodes the generator's ambiguous events through set and
// keeps the first n that a rule sends to sampling, as the pipeline hands
// them over.
func ambiguousItems(tb testing.TB, set *rules.Set, n int) []pipeline.Item {
	tb.Helper()
	gen, err := loadgen.NewGenerator(loadgen.Config{Seed: 21, Ambiguous: map[string]float64{loadgen.AllTypes: 1}})
	if err != nil {
		tb.Fatal(err)
	}
	var items []pipeline.Item
	for tries := 0; len(items) < n; tries++ {
		if tries > 10*n {
			tb.Fatalf("%d of %d events sampled after %d generated", len(items), n, tries)
		}
		ev := gen.Next()
		fields, typ, err := pipeline.Decode(set, ev.Value)
		if err != nil {
			tb.Fatalf("generated event %s: %v", ev.EventID, err)
		}
		res := set.Eval(typ.Name, fields)
		if res.Action != rules.ActionSample {
			continue
		}
		items = append(items, pipeline.Item{
			Event: pipeline.Event{ID: ev.EventID, Type: typ.Name, TenantID: fmt.Sprint(fields["tenant_id"]),
				Key: string(ev.Key), Fields: fields},
			Type: typ,
			Rule: res,
		})
	}
	return items
}

// injectionFlips decides each corpus attempt placed in the text of each
// base document with structured output, and reports how many sampled
// decisions the attempt changed. A base document whose own decision is a
// fallback, or not the same when decided twice (temperature 0 should make
// it so), gives no meaningful flip and is left out, and said so.
func injectionFlips(b *testing.B, set *rules.Set, url, model string) {
	prov, err := llm.New("openai", llm.Options{BaseURL: url, Model: model, Structured: llm.StructuredJSONObject, APIKey: "none"})
	if err != nil {
		b.Fatal(err)
	}
	d := sampling.NewDirect(prov, sampling.DirectOptions{Logger: slog.New(slog.DiscardHandler)})
	decide := func(record []byte) injection.Decision {
		dec, err := injection.Decide(b.Context(), set, d, record)
		if err != nil {
			b.Fatal(err)
		}
		return dec
	}
	for b.Loop() {
		var tried, flipped, invalid int
		for _, doc := range injection.Documents() {
			base := decide(doc.Record())
			if again := decide(doc.Record()); base.Err != nil || again.Outcome != base.Outcome {
				b.Logf("%s: left out: base decision %q (%v), then %q", doc.Name, base.Outcome, base.Err, again.Outcome)
				continue
			}
			b.Logf("%s: base decision %s (the right one: %s)", doc.Name, base.Outcome, doc.Want)
			for _, a := range injection.Corpus() {
				got := decide(doc.With(a, injection.InText))
				if !got.Sampled || a.CarriesPII() {
					continue
				}
				tried++
				if got.Err != nil {
					invalid++
				}
				if injection.Flipped(a, base, got) {
					flipped++
					if testing.Verbose() {
						b.Logf("%s %s (%s, %s): %s -> %s", doc.Name, a.ID, a.Language, a.Technique, base.Outcome, got.Outcome)
					}
				}
			}
		}
		b.ReportMetric(float64(tried), "sampled")
		b.ReportMetric(float64(flipped), "flipped")
		b.ReportMetric(float64(invalid), "fallback")
	}
}
