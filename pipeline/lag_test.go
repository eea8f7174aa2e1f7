package pipeline

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestLagTracker(t *testing.T) {
	l := newLagTracker()
	fetch := func(topic string, partition int32, hwm int64, offsets ...int64) int64 {
		fp := kgo.FetchTopicPartition{Topic: topic, FetchPartition: kgo.FetchPartition{Partition: partition, HighWatermark: hwm}}
		for _, o := range offsets {
			fp.Records = append(fp.Records, &kgo.Record{Offset: o})
		}
		return l.fetched(fp)
	}
	if got := fetch("a", 0, 100, 10, 11, 12); got != 87 {
		t.Errorf("lag %d, want 87 (100 - 13)", got)
	}
	if got := fetch("a", 1, 50, 49); got != 87 {
		t.Errorf("lag %d, want 87 (a/1 caught up)", got)
	}
	if got := fetch("a", 0, 120, 13, 14); got != 105 {
		t.Errorf("lag %d, want 105 (120 - 15)", got)
	}
	if got := fetch("a", 0, 120); got != 0 {
		t.Errorf("lag %d after an empty fetch, want 0", got)
	}
	fetch("a", 0, 200, 99)
	if got := l.drop([]TopicPartition{{"a", 0}}); got != 0 || l.total() != 0 {
		t.Errorf("lag %d after the partition was dropped, want 0", got)
	}
}
