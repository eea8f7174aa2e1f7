// Package deadletter builds the dead-letter records of triage: a record
// that cannot be processed goes to a DLQ topic with its original key, bytes
// and headers, plus headers that say why and where it came from, so that it
// can be fixed and replayed as it was. The pipeline (events.dlq) and the
// audit sink (audit.dlq) share it.
package deadletter

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Headers a dead letter carries besides the original's own.
const (
	HeaderReason    = "triage.dlq.reason"    // a stable code, e.g. invalid_json
	HeaderError     = "triage.dlq.error"     // the error in words
	HeaderTopic     = "triage.dlq.topic"     // the original's topic,
	HeaderPartition = "triage.dlq.partition" // partition
	HeaderOffset    = "triage.dlq.offset"    // and offset
	// HeaderTruncated and HeaderSHA256 are set only on a dead letter that
	// its topic refused as too large and that was sent truncated: the
	// original size in bytes and the SHA-256 of the original value.
	HeaderTruncated = "triage.dlq.truncated"
	HeaderSHA256    = "triage.dlq.sha256"
)

// TruncateTo bounds the value of a dead letter sent again by Truncated.
const TruncateTo = 64 << 10

// New returns the dead letter of src for topic: src's key, value and
// headers, and the headers naming reason, detail and src's topic,
// partition and offset.
func New(topic string, src *kgo.Record, reason, detail string) *kgo.Record {
	return &kgo.Record{
		Topic: topic,
		Key:   src.Key,
		Value: src.Value,
		Headers: append(append(make([]kgo.RecordHeader, 0, len(src.Headers)+5), src.Headers...),
			kgo.RecordHeader{Key: HeaderReason, Value: []byte(reason)},
			kgo.RecordHeader{Key: HeaderError, Value: []byte(detail)},
			kgo.RecordHeader{Key: HeaderTopic, Value: []byte(src.Topic)},
			kgo.RecordHeader{Key: HeaderPartition, Value: strconv.AppendInt(nil, int64(src.Partition), 10)},
			kgo.RecordHeader{Key: HeaderOffset, Value: strconv.AppendInt(nil, src.Offset, 10)},
		),
	}
}

// Truncated returns what to send instead of dead, a dead letter whose
// produce failed with err, or nil when err is not the DLQ topic refusing it
// as too large. The DLQ topic may take smaller records than the source
// topic did: the replacement keeps the first TruncateTo bytes with the
// original's size and digest. The whole original stays in the source topic
// at the offset the headers name.
func Truncated(dead *kgo.Record, err error) *kgo.Record {
	if !errors.Is(err, kerr.MessageTooLarge) && !errors.Is(err, kerr.RecordListTooLarge) {
		return nil
	}
	sum := sha256.Sum256(dead.Value)
	return &kgo.Record{
		Topic: dead.Topic,
		Key:   dead.Key,
		Value: dead.Value[:min(len(dead.Value), TruncateTo)],
		Headers: append(append(make([]kgo.RecordHeader, 0, len(dead.Headers)+2), dead.Headers...),
			kgo.RecordHeader{Key: HeaderTruncated, Value: strconv.AppendInt(nil, int64(len(dead.Value)), 10)},
			kgo.RecordHeader{Key: HeaderSHA256, Value: []byte(hex.EncodeToString(sum[:]))}),
	}
}
