package rules

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// toolsFile is samplingFile with tools: and max_tool_rounds: appended to
// its sampling: block, whose last line is 29.
func toolsFile(extra string) []byte { return []byte(samplingFile + extra) }

func TestParseTools(t *testing.T) {
	tests := []struct {
		name   string
		extra  string
		tools  []string
		rounds int
	}{
		{"none", "", nil, 0},
		{"default rounds", "      tools: [transaction_history]\n", []string{ToolTransactionHistory}, DefaultMaxToolRounds},
		{"rounds set", "      tools: [transaction_history]\n      max_tool_rounds: 5\n", []string{ToolTransactionHistory}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := mustParse(t, "test.yaml", toolsFile(tt.extra))
			typ, _ := set.Type("t")
			if got := typ.Sampling.Tools; !reflect.DeepEqual(got, tt.tools) {
				t.Errorf("Tools = %v, want %v", got, tt.tools)
			}
			if got := typ.Sampling.MaxToolRounds; got != tt.rounds {
				t.Errorf("MaxToolRounds = %d, want %d", got, tt.rounds)
			}
			pr, err := typ.Prompt(validated(t, set, "t", map[string]any{"id": "x", "n": 7}, nil), "r1")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(pr.Tools, tt.tools) || pr.MaxToolRounds != tt.rounds {
				t.Errorf("Prompt tools = %v/%d, want %v/%d", pr.Tools, pr.MaxToolRounds, tt.tools, tt.rounds)
			}
		})
	}
}

func TestParseToolsErrors(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		line  int
		want  string
	}{
		{"unknown", "      tools: [transaction_history, wire_money]\n", 30, `unknown tool "wire_money"`},
		{"twice", "      tools: [transaction_history, transaction_history]\n", 30, "listed twice"},
		{"not a list", "      tools: transaction_history\n", 30, "want a list of strings"},
		{"rounds zero", "      tools: [transaction_history]\n      max_tool_rounds: 0\n", 31, "want 1 to 5"},
		{"rounds too many", "      tools: [transaction_history]\n      max_tool_rounds: 6\n", 31, "want 1 to 5"},
		{"rounds without tools", "      max_tool_rounds: 2\n", 30, "offers no tools"},
		{"metadata without fields", "      tools: [document_metadata]\n", 30, "sampling.fields has none of them"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test.yaml", toolsFile(tt.extra), WithMaskKey(testKey))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ParseError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to say %q", err, tt.want)
			}
			if pe.Line != tt.line {
				t.Errorf("line = %d, want %d (%v)", pe.Line, tt.line, err)
			}
		})
	}
}

// TestMasked: what Masked keeps is the allow-list, masked, and nothing else.
func TestMasked(t *testing.T) {
	set := mustParse(t, "default.yaml", Default)
	typ, _ := set.Type("transaction")
	ev := validated(t, set, "transaction", cleanTxn, nil)
	got := typ.Masked(ev)
	for _, name := range []string{"account_id", "user_id", "event_id", "tenant_id"} {
		if _, ok := got[name]; ok {
			t.Errorf("Masked kept %s, which is not allow-listed", name)
		}
	}
	if d, _ := got["device_id"].(string); !strings.HasPrefix(d, "h:") {
		t.Errorf("device_id = %v, want a pseudonym", got["device_id"])
	}
	if got["merchant"] != "Corner Shop" || len(got) != len(typ.Sampling.Fields) {
		t.Errorf("Masked = %v", got)
	}
	pr, err := typ.Prompt(ev, "sample_velocity_spike")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pr.Context, got) {
		t.Errorf("Prompt.Context = %v, want Masked's %v", pr.Context, got)
	}
	if !typ.HasTool(ToolTransactionHistory) || typ.HasTool(ToolDocumentMetadata) {
		t.Errorf("default transaction tools = %v", typ.Sampling.Tools)
	}
}
