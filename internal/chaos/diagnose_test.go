package chaos

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/triage-dev/triage/internal/kafkatest"
)

// TestDiagnose leaves a transaction open with offsets of a group in it, on
// Apache Kafka, and checks that the diagnosis names the transaction, its
// partitions, and the stable offset fetch it blocks.
func TestDiagnose(t *testing.T) {
	brokers := kafkatest.ApacheKafka(t)
	topic, group := kafkatest.Name(t, "diagnose"), kafkatest.Name(t, "group")
	kafkatest.CreateTopics(t, brokers, 1, topic)
	txnID := kafkatest.Name(t, "txn")
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID(txnID), kgo.TransactionTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cl.EndTransaction(context.WithoutCancel(ctx), kgo.TryAbort) }()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Offsets of the group in the open transaction, as a group member's
	// session commits them: a stable fetch must wait for its end.
	id, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = txnID, id, epoch, group
	addResp, err := add.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(addResp.ErrorCode)
	}
	if err != nil {
		t.Fatalf("add offsets to the transaction: %v", err)
	}
	commit := kmsg.NewPtrTxnOffsetCommitRequest()
	commit.TransactionalID, commit.Group, commit.ProducerID, commit.ProducerEpoch = txnID, group, id, epoch
	commit.Generation = -1
	ct := kmsg.NewTxnOffsetCommitRequestTopic()
	topics, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	ct.Topic, ct.TopicID = topic, topics[topic].ID
	cp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	cp.Partition, cp.Offset = 0, 1
	ct.Partitions = append(ct.Partitions, cp)
	commit.Topics = append(commit.Topics, ct)
	commitResp, err := commit.RequestWith(ctx, cl)
	if err == nil {
		for _, t := range commitResp.Topics {
			for _, p := range t.Partitions {
				err = errors.Join(err, kerr.ErrorForCode(p.ErrorCode))
			}
		}
	}
	if err != nil {
		t.Fatalf("commit offsets in the transaction: %v", err)
	}

	var out bytes.Buffer
	diagnose(ctx, Config{Brokers: brokers}, slog.New(slog.NewTextHandler(&out, nil)), group, topic)
	t.Log(out.String())
	for _, want := range []string{"txn_id=" + txnID, "state=Ongoing", topic, "unstable=[" + topic + "/0]"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("diagnosis lacks %q", want)
		}
	}
}
