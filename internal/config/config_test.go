package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestPrecedenceFileEnvFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "triage.yaml")
	if err := os.WriteFile(file, []byte("group: from-file\nworkers: 8\ntopics: [a, b]\ndrain_timeout: 5s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TRIAGE_WORKERS": "16", "TRIAGE_DLQ_TOPIC": "dead"}
	c, err := Load("consumer", []string{"--config", file, "--workers", "32", "--brokers", "k1:9092, k2:9092"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Group != "from-file" || c.Workers != 32 || c.DLQTopic != "dead" || c.DrainTimeout != 5*time.Second {
		t.Fatalf("got %+v", c)
	}
	if !reflect.DeepEqual(c.Topics, []string{"a", "b"}) || !reflect.DeepEqual(c.Brokers, []string{"k1:9092", "k2:9092"}) {
		t.Fatalf("topics %v brokers %v", c.Topics, c.Brokers)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	unknown := filepath.Join(dir, "unknown.yaml")
	if err := os.WriteFile(unknown, []byte("grup: typo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	none := func(string) string { return "" }
	cases := []struct {
		name string
		args []string
		env  func(string) string
	}{
		{"unknown key in file", []string{"--config", unknown}, none},
		{"missing file", []string{"--config", filepath.Join(dir, "nope.yaml")}, none},
		{"bad flag value", []string{"--workers", "many"}, none},
		{"zero workers", []string{"--workers", "0"}, none},
		{"bad env value", nil, func(k string) string {
			if k == "TRIAGE_WORKERS" {
				return "x"
			}
			return ""
		}},
		{"stray argument", []string{"extra"}, none},
		{"bad log format", []string{"--log-format", "xml"}, none},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Load("consumer", c.args, c.env); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestEmptyFileMeansDefaults(t *testing.T) {
	file := filepath.Join(t.TempDir(), "empty.yaml")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load("consumer", []string{"--config=" + file}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Fatalf("got %+v, want defaults", c)
	}
}
