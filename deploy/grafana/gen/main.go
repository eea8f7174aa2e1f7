// Command gen writes the Grafana dashboard generated from the ClickHouse
// queries (see package grafana) to its file. go generate runs it in
// deploy/grafana; its argument, if any, is the output path.
package main

import (
	"fmt"
	"os"

	"github.com/triage-dev/triage/deploy/grafana"
)

func main() {
	out := grafana.DashboardFile
	if len(os.Args) > 1 {
		out = os.Args[1]
	}
	data, err := grafana.Generate()
	if err == nil {
		err = os.WriteFile(out, data, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
