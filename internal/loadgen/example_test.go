package loadgen_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/internal/loadgen"
)

func ExampleParseShares() {
	mix, _ := loadgen.ParseShares("transaction=0.8,document=0.2")
	all, _ := loadgen.ParseShares("0.1")
	fmt.Println(mix[loadgen.TypeTransaction], mix[loadgen.TypeDocument], all[loadgen.AllTypes])
	// Output: 0.8 0.2 0.1
}

// Produce a tracked run, then measure it end to end. (Not run: it needs a
// broker and a consumer.)
func ExampleMeasure() {
	ctx := context.Background()
	g, err := loadgen.NewGenerator(loadgen.Config{Seed: 1, Bad: 0.01})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	brokers := kgo.SeedBrokers("127.0.0.1:9092")
	pcl, err := kgo.NewClient(append(loadgen.ProducerClientOpts(), brokers)...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer pcl.Close()
	start := time.Now()
	rep, err := loadgen.Produce(ctx, pcl, g, loadgen.ProduceOptions{Events: 10_000, Rate: 2000, Track: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	_ = rep.WriteTable(os.Stdout)

	opts := loadgen.MeasureOptions{Sent: rep.Produced, Grace: 30 * time.Second, Since: start.Add(-time.Second)}
	mcl, err := kgo.NewClient(append(loadgen.MeasureClientOpts(opts), brokers)...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer mcl.Close()
	m, err := loadgen.Measure(ctx, mcl, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	_ = m.WriteTable(os.Stdout)
}
