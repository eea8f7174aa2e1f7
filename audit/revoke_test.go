package audit_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/internal/kafkatest"
)

// holdFirstPoll is a franz-go hook that stops the sink's first poll on the
// polling goroutine, after the records are taken from the client and before
// PollRecords returns them, until release is closed.
type holdFirstPoll struct {
	once    sync.Once
	held    chan struct{}
	release chan struct{}
}

func (h *holdFirstPoll) OnFetchRecordUnbuffered(_ *kgo.Record, polled bool) {
	if !polled {
		return
	}
	h.once.Do(func() {
		close(h.held)
		<-h.release
	})
}

// ownership watches the broker's OffsetCommit requests for commits by any
// member other than owner of a partition the group has assigned to owner.
type ownership struct {
	names  map[[16]byte]string // topic names by id: OffsetCommit v10+ names topics by id
	mu     sync.Mutex
	member string                    // the owner's member id, once assigned
	parts  map[string]map[int32]bool // the owner's partitions
	stray  []string                  // another member's commits for them
}

func (o *ownership) assigned(cl *kgo.Client, parts map[string][]int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.member, _ = cl.GroupMetadata()
	for t, ps := range parts {
		if o.parts[t] == nil {
			o.parts[t] = map[int32]bool{}
		}
		for _, p := range ps {
			o.parts[t][p] = true
		}
	}
}

func (o *ownership) watch(c *kfake.Cluster) {
	c.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.OffsetCommitRequest)
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.member == "" || r.MemberID == o.member {
			return nil, nil, false
		}
		for _, t := range r.Topics {
			topic := t.Topic
			if topic == "" {
				topic = o.names[t.TopicID]
			}
			for _, p := range t.Partitions {
				if o.parts[topic][p.Partition] {
					o.stray = append(o.stray, fmt.Sprintf("%s/%d@%d by %s", topic, p.Partition, p.Offset, r.MemberID))
				}
			}
		}
		return nil, nil, false
	})
}

// TestSinkRevokeSettlesPolledRecords: member A has polled records and not
// yet added them to its batch when member B joins. The rebalance must wait
// for A (or A must settle what it polled) so that A never commits, after
// the fact, offsets of partitions B now owns, and no record is inserted by
// both members.
func TestSinkRevokeSettlesPolledRecords(t *testing.T) {
	conn, _ := audit.MigratedDB(t)
	cluster, brokers := startCluster(t)
	recs := audit.LinkedRecords(8, 50)
	produceAudit(t, brokers, recs)

	topics, err := kadm.NewClient(kafkatest.Client(t, brokers)).ListTopics(t.Context(), "audit", "decisions")
	if err != nil {
		t.Fatal(err)
	}
	own := &ownership{names: map[[16]byte]string{}, parts: map[string]map[int32]bool{}}
	for _, d := range topics {
		own.names[d.ID] = d.Topic
	}
	own.watch(cluster)

	hold := &holdFirstPoll{held: make(chan struct{}), release: make(chan struct{})}
	blocked := make(chan struct{})
	var blockedOnce sync.Once
	regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
	mA, err := audit.NewSinkMetrics(regA)
	if err != nil {
		t.Fatal(err)
	}
	mB, err := audit.NewSinkMetrics(regB)
	if err != nil {
		t.Fatal(err)
	}
	const group = "revoke"
	opts := audit.SinkOptions{Brokers: brokers, Group: group, FlushInterval: 50 * time.Millisecond}

	a := opts
	a.Metrics = mA
	a.ClientOpts = []kgo.Opt{
		kgo.WithHooks(hold), kgo.HeartbeatInterval(100 * time.Millisecond),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) {
			blockedOnce.Do(func() { close(blocked) })
		}),
	}
	_, stopA := runSink(t, conn, a)
	select {
	case <-hold.held:
	case <-time.After(audit.WaitTimeout):
		t.Fatalf("sink A polled nothing in %s", audit.WaitTimeout)
	}

	assignedB := make(chan struct{})
	var assignedOnce sync.Once
	b := opts
	b.Metrics = mB
	b.ClientOpts = []kgo.Opt{
		kgo.HeartbeatInterval(100 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, cl *kgo.Client, parts map[string][]int32) {
			if len(parts) > 0 {
				own.assigned(cl, parts)
				assignedOnce.Do(func() { close(assignedB) })
			}
		}),
	}
	sinkB, stopB := runSink(t, conn, b)

	// Either the rebalance waits for A's poll (it calls back "blocked"), or
	// it goes ahead and B is assigned partitions A has just polled.
	select {
	case <-blocked:
		t.Log("the rebalance waited for A's poll")
	case <-assignedB:
		t.Log("B was assigned partitions while A held records polled from them")
	case <-time.After(audit.WaitTimeout):
		t.Fatalf("no rebalance in %s", audit.WaitTimeout)
	}
	close(hold.release)
	select {
	case <-assignedB:
	case <-time.After(audit.WaitTimeout):
		t.Fatalf("B was not assigned partitions in %s", audit.WaitTimeout)
	}
	waitCaughtUp(t, sinkB)

	own.mu.Lock()
	stray := append([]string(nil), own.stray...)
	own.mu.Unlock()
	for _, stop := range []func() error{stopA, stopB} {
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	if len(stray) > 0 {
		t.Errorf("a member committed offsets of partitions assigned to another: %v", stray)
	}
	inserted := gauge(t, regA, "triage_sink_rows_inserted_total") + gauge(t, regB, "triage_sink_rows_inserted_total")
	if want := float64(2 * len(recs)); inserted != want {
		t.Errorf("the two members inserted %v rows, want %v: records were stored by both", inserted, want)
	}
	auditRows, decisions, err := countStored(conn)
	if err != nil {
		t.Fatal(err)
	}
	if auditRows != uint64(len(recs)) || decisions != uint64(len(recs)) {
		t.Fatalf("stored %d audit rows and %d decisions, want %d of each", auditRows, decisions, len(recs))
	}
}
