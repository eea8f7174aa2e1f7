package chtest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/triage-dev/triage/internal/testrun"
)

// recorder is a testing.TB that records how a test would have ended.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()                        {}
func (r *recorder) Fatalf(format string, a ...any) { r.fatal = fmt.Sprintf(format, a...) }
func (r *recorder) Skipf(format string, a ...any)  { r.skip = fmt.Sprintf(format, a...) }

// A test that cannot get a server fails and says what to run; it never
// skips, whether CI is set or not.
func TestUnavailableFailsNotSkips(t *testing.T) {
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		r := &recorder{TB: t}
		need(r, &testrun.UnavailableError{Script: "clickhouse", Reason: "/usr/sbin/clickhouse-server is missing"})
		if r.skip != "" {
			t.Errorf("CI=%q: skipped: %s", ci, r.skip)
		}
		if !strings.Contains(r.fatal, "clickhouse-server is missing") || !strings.Contains(r.fatal, "./scripts/test") {
			t.Errorf("CI=%q: failure message %q does not give the reason and what to run", ci, r.fatal)
		}
	}
}
