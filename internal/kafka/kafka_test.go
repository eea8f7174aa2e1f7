package kafka_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/internal/kafka"
)

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	l := kafka.Logger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), "sink: kafka: ")
	if l.Level() != kgo.LogLevelWarn {
		t.Errorf("level %v, want warn", l.Level())
	}
	l.Log(kgo.LogLevelError, "fetch failed", "broker", 1)
	l.Log(kgo.LogLevelWarn, "slow", "n", 2)
	out := buf.String()
	for _, want := range []string{`level=ERROR msg="sink: kafka: fetch failed" broker=1`, `level=WARN msg="sink: kafka: slow" n=2`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestNewClientNeedsAMember(t *testing.T) {
	settle := func(context.Context, *kgo.Client, map[string][]int32) {}
	ok := kafka.Member{Brokers: []string{"127.0.0.1:1"}, Group: "g", Topics: []string{"t"}, OnRevoked: settle, OnLost: settle}
	for name, edit := range map[string]func(*kafka.Member){
		"no brokers":   func(m *kafka.Member) { m.Brokers = nil },
		"no group":     func(m *kafka.Member) { m.Group = "" },
		"no topics":    func(m *kafka.Member) { m.Topics = nil },
		"no OnRevoked": func(m *kafka.Member) { m.OnRevoked = nil },
		"no OnLost":    func(m *kafka.Member) { m.OnLost = nil },
	} {
		m := ok
		edit(&m)
		if cl, err := kafka.NewClient(m); err == nil {
			cl.Close()
			t.Errorf("%s: no error", name)
		}
	}
	cl, err := kafka.NewClient(ok)
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()
}
