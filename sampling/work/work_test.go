package work_test

import (
	"encoding/json"
	"testing"

	"github.com/triage-dev/triage/sampling/work"
)

func TestResultSchema(t *testing.T) {
	s, err := work.ResultSchema()
	if err != nil {
		t.Fatal(err)
	}
	resolved, err := s.Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	valid := func(r any) error {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return resolved.Validate(v)
	}
	for _, st := range work.Statuses {
		if err := valid(work.Result{Status: st, EventID: "ev-1", Outcome: "allow", Reason: "why"}); err != nil {
			t.Errorf("status %q: %v", st, err)
		}
	}
	for _, bad := range []any{
		work.Result{Status: "correcting"},
		map[string]any{"event_id": "ev-1"},
	} {
		if valid(bad) == nil {
			t.Errorf("%v passes the schema", bad)
		}
	}
}
