package pipeline_test

import (
	"testing"

	"github.com/triage-dev/triage/internal/loadgen"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
)

// BenchmarkDecode is the polling goroutine's cost to parse and validate a
// generated event of the shipped policy (80 % transactions).
func BenchmarkDecode(b *testing.B) {
	set, err := rules.Parse("default.yaml", rules.Default, rules.WithMaskKey(rules.RandomMaskKey()))
	if err != nil {
		b.Fatal(err)
	}
	gen, err := loadgen.NewGenerator(loadgen.Config{})
	if err != nil {
		b.Fatal(err)
	}
	values := make([][]byte, 1024)
	for i := range values {
		values[i] = gen.Next().Value
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, _, err := pipeline.Decode(set, values[i%len(values)]); err != nil {
			b.Fatal(err)
		}
	}
}
