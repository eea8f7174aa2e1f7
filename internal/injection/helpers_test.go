package injection_test

import (
	"os"
	"testing"

	"github.com/triage-dev/triage/internal/injection"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/rules"
)

// eachRulesFile runs test once for each shipped file with a document type,
// as a subtest named after the file: the default policy and the example
// that extends it. rules/examples_test.go keeps their document types equal;
// both are run so that a fix to one cannot hide a defect in the other.
func eachRulesFile(t *testing.T, test func(t *testing.T, set *rules.Set)) {
	t.Helper()
	example, err := os.ReadFile("../../examples/tickets.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"rules/default.yaml", rules.Default}, {"examples/tickets.yaml", example}} {
		// The transaction type hashes device ids; documents hash nothing,
		// so any key does.
		set, err := rules.Parse(f.name, f.data, rules.WithMaskKey(rules.RandomMaskKey()))
		if err != nil {
			t.Fatalf("parse %s: %v", f.name, err)
		}
		t.Run(f.name, func(t *testing.T) { test(t, set) })
	}
}

// decoded decodes a record as the consumer does and evaluates the rules.
func decoded(t *testing.T, set *rules.Set, record []byte) (map[string]any, *rules.Type, rules.Result) {
	t.Helper()
	fields, typ, err := pipeline.Decode(set, record)
	if err != nil {
		t.Fatalf("decode %s: %v", record, err)
	}
	return fields, typ, set.Eval(typ.Name, fields)
}

// documentType is the document type of set.
func documentType(t *testing.T, set *rules.Set) *rules.Type {
	t.Helper()
	typ, ok := set.Type(injection.TypeDocument)
	if !ok {
		t.Fatalf("no %s type", injection.TypeDocument)
	}
	return typ
}
