package sampling_test

import (
	"fmt"
	"testing"

	"github.com/triage-dev/triage/internal/loadgen"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
	"github.com/triage-dev/triage/sampling"
)

// BenchmarkHistoryObserve is the history's cost on the polling goroutine,
// per generated transaction of the shipped policy (which offers
// transaction_history), against decoding and validating the event.
func BenchmarkHistoryObserve(b *testing.B) {
	set, err := rules.Parse("default.yaml", rules.Default, rules.WithMaskKey(rules.RandomMaskKey()))
	if err != nil {
		b.Fatal(err)
	}
	typ, _ := set.Type("transaction")
	gen, err := loadgen.NewGenerator(loadgen.Config{Mix: map[string]float64{loadgen.TypeTransaction: 1}})
	if err != nil {
		b.Fatal(err)
	}
	evs := make([]pipeline.Event, 4096)
	for i := range evs {
		g := gen.Next()
		fields, _, err := pipeline.Decode(set, g.Value)
		if err != nil {
			b.Fatal(err)
		}
		evs[i] = pipeline.Event{ID: fmt.Sprint(i), Type: "transaction", TenantID: fields["tenant_id"].(string), Key: string(g.Key), Fields: fields}
	}
	h := sampling.NewHistory(sampling.HistoryOptions{})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Observe(typ, evs[i%len(evs)])
	}
}
