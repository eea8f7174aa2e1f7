package pipeline

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// lagTracker keeps each owned partition's fetch lag: the records between
// the end of its last fetch and the partition's high watermark, as the
// broker reported it with that fetch. It is a lower bound of the group's
// lag (records fetched but not yet decided and committed are not in it)
// and is not refreshed for a paused partition, whose fetches stop: read it
// beside triage_paused_partitions.
type lagTracker struct {
	mu  sync.Mutex
	lag map[TopicPartition]int64
	sum int64
}

func newLagTracker() *lagTracker { return &lagTracker{lag: map[TopicPartition]int64{}} }

// fetched records the lag of a fetched partition.
func (l *lagTracker) fetched(fp kgo.FetchTopicPartition) int64 {
	n := int64(0)
	if k := len(fp.Records); k > 0 {
		n = max(0, fp.HighWatermark-(fp.Records[k-1].Offset+1))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	tp := TopicPartition{fp.Topic, fp.Partition}
	l.sum += n - l.lag[tp]
	l.lag[tp] = n
	return l.sum
}

// drop forgets partitions this member no longer owns.
func (l *lagTracker) drop(tps []TopicPartition) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, tp := range tps {
		l.sum -= l.lag[tp]
		delete(l.lag, tp)
	}
	return l.sum
}

func (l *lagTracker) total() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sum
}

// Lag is the fetch lag of the partitions this member owns: records behind
// each partition's high watermark as of its last fetch (see
// triage_consumer_fetch_lag_records).
func (p *Pipeline) Lag() int64 { return p.lag.total() }
