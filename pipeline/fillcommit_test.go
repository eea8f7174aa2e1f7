package pipeline

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFillCommitOnlyVouchedOffsets: the transaction's offset commit is
// exactly the member's progress. franz-go's own entries (polled positions)
// for partitions without bookkeeping leave the request; those with
// bookkeeping get the watermark and the done ranges; partitions with
// bookkeeping that franz-go left out join.
func TestFillCommitOnlyVouchedOffsets(t *testing.T) {
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	polled := func(topic string, parts map[int32]int64) {
		tt := kmsg.NewTxnOffsetCommitRequestTopic()
		tt.Topic = topic
		for part, off := range parts {
			p := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			p.Partition, p.Offset = part, off
			tt.Partitions = append(tt.Partitions, p)
		}
		req.Topics = append(req.Topics, tt)
	}
	// franz-go's view: every partition at its polled position. Partition
	// 1 of "tx" had its first records in a poll handed back untracked, and
	// "docs" likewise: neither has bookkeeping.
	polled("tx", map[int32]int64{0: 1000, 1: 1000})
	polled("docs", map[int32]int64{3: 700})
	progress := map[TopicPartition]Progress{
		{"tx", 0}: {Mark: Mark{Offset: 640, Epoch: 2}, Done: []Range{{650, 700}}},
		{"tx", 2}: {Mark: Mark{Offset: 10, Epoch: -1}},
	}
	meta := map[TopicPartition]string{}
	for tp, pr := range progress {
		meta[tp] = encodeProgress(pr.Mark.Offset, pr.Done)
	}
	(&Pipeline{}).fillCommit(req, progress, meta)

	got := map[TopicPartition]int64{}
	for _, tt := range req.Topics {
		for _, p := range tt.Partitions {
			tp := TopicPartition{tt.Topic, p.Partition}
			got[tp] = p.Offset
			if p.Metadata == nil || *p.Metadata != meta[tp] {
				t.Errorf("%v: metadata %v, want %q", tp, p.Metadata, meta[tp])
			}
		}
	}
	want := map[TopicPartition]int64{{"tx", 0}: 640, {"tx", 2}: 10}
	if len(got) != len(want) {
		t.Fatalf("committed %v, want exactly %v", got, want)
	}
	for tp, off := range want {
		if got[tp] != off {
			t.Errorf("%v committed at %d, want %d", tp, got[tp], off)
		}
	}
}
