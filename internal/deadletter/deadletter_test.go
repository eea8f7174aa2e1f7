package deadletter_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/internal/deadletter"
	"github.com/triage-dev/triage/internal/kafkatest"
)

func TestNew(t *testing.T) {
	src := &kgo.Record{Topic: "audit", Partition: 3, Offset: 42, Key: []byte("k"), Value: []byte("not json"),
		Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("x")}}}
	d := deadletter.New("audit.dlq", src, "invalid_json", "invalid character")
	if d.Topic != "audit.dlq" || !bytes.Equal(d.Key, src.Key) || !bytes.Equal(d.Value, src.Value) {
		t.Fatalf("dead letter %+v", d)
	}
	for k, want := range map[string]string{
		"origin": "x", deadletter.HeaderReason: "invalid_json", deadletter.HeaderError: "invalid character",
		deadletter.HeaderTopic: "audit", deadletter.HeaderPartition: "3", deadletter.HeaderOffset: "42",
	} {
		if got := kafkatest.Header(d, k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if len(src.Headers) != 1 {
		t.Errorf("the original's headers changed: %v", src.Headers)
	}
}

func TestTruncated(t *testing.T) {
	big := bytes.Repeat([]byte("x"), deadletter.TruncateTo+10)
	d := deadletter.New("dlq", &kgo.Record{Topic: "in", Value: big}, "too_large", "")
	for _, err := range []error{nil, errors.New("broker down"), kerr.NotLeaderForPartition} {
		if r := deadletter.Truncated(d, err); r != nil {
			t.Errorf("%v: replacement %d bytes, want none", err, len(r.Value))
		}
	}
	for _, err := range []error{kerr.MessageTooLarge, fmt.Errorf("produce: %w", kerr.RecordListTooLarge)} {
		r := deadletter.Truncated(d, err)
		sum := sha256.Sum256(big)
		if r == nil || len(r.Value) != deadletter.TruncateTo || r.Topic != "dlq" ||
			kafkatest.Header(r, deadletter.HeaderTruncated) != fmt.Sprint(len(big)) ||
			kafkatest.Header(r, deadletter.HeaderSHA256) != hex.EncodeToString(sum[:]) ||
			kafkatest.Header(r, deadletter.HeaderReason) != "too_large" {
			t.Errorf("%v: replacement %+v", err, r)
		}
	}
}
