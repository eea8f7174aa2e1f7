package loadgen

import (
	"maps"
	"strings"
	"testing"
)

func TestParseShares(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]float64
		wantErr string
	}{
		{in: "transaction=0.8,document=0.2", want: map[string]float64{TypeTransaction: 0.8, TypeDocument: 0.2}},
		{in: " transaction = 4 , document=1 ", want: map[string]float64{TypeTransaction: 4, TypeDocument: 1}},
		{in: "0.1", want: map[string]float64{AllTypes: 0.1}},
		{in: "", wantErr: "empty"},
		{in: "transaction", wantErr: "not type=share"},
		{in: "=0.3", wantErr: "not type=share"},
		{in: "transaction=abc", wantErr: "invalid syntax"},
		{in: "transaction=-1", wantErr: ">= 0"},
		{in: "-0.5", wantErr: ">= 0"},
		{in: "transaction=NaN", wantErr: "finite"},
		{in: "transaction=1,transaction=2", wantErr: "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseShares(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseShares(%q) error = %v, want it to mention %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || !maps.Equal(got, tt.want) {
				t.Fatalf("ParseShares(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestNewGeneratorRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"unknown mix type", Config{Mix: map[string]float64{"wire": 1}}, `unknown type "wire"`},
		{"all-type mix", Config{Mix: map[string]float64{AllTypes: 1}}, "unknown type"},
		{"zero mix", Config{Mix: map[string]float64{TypeTransaction: 0}}, "no type has a share"},
		{"negative mix", Config{Mix: map[string]float64{TypeTransaction: -1}}, ">= 0"},
		{"ambiguous above 1", Config{Ambiguous: map[string]float64{TypeDocument: 1.5}}, "[0, 1]"},
		{"unknown ambiguous type", Config{Ambiguous: map[string]float64{"ticket": 0.1}}, "unknown type"},
		{"bad above 1", Config{Bad: 2}, "bad share"},
		{"negative accounts", Config{Accounts: -1}, ">= 0"},
		{"unknown topic type", Config{Topics: map[string]string{"ticket": "t"}}, "unknown type"},
		{"empty topic", Config{Topics: map[string]string{TypeDocument: ""}}, "empty topic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewGenerator(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewGenerator error = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigTopicsAndSizes(t *testing.T) {
	g := mustGenerator(t, Config{Accounts: 1, Tenants: 1, Documents: 1,
		Topics: map[string]string{TypeDocument: "docs.custom"}})
	for range 200 {
		ev := g.Next()
		want := map[string]string{TypeTransaction: DefaultTransactionsTopic, TypeDocument: "docs.custom"}[ev.Type]
		if ev.Topic != want {
			t.Fatalf("%s on topic %q, want %q", ev.Type, ev.Topic, want)
		}
		if k := string(ev.Key); k != "acc-0000000" && k != "doc-0000000" {
			t.Fatalf("key %q outside a population of one", k)
		}
	}
}
