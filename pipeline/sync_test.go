package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/triage-dev/triage/audit"
	"github.com/triage-dev/triage/internal/kafkatest"
	"github.com/triage-dev/triage/internal/testrun"
	"github.com/triage-dev/triage/pipeline"
	"github.com/triage-dev/triage/sampling"
)

func syncEvent(id string) []byte {
	return fmt.Appendf(nil, `{"type":"transaction","event_id":%q,"tenant_id":"t1","occurred_at":"2026-12-02T10:00:00Z",`+
		`"account_id":"a1","user_id":"u1","amount":12.5,"currency":"EUR","country":"DE","ip_country":"DE","merchant":"m",`+
		`"mcc":"5411","channel":"ecommerce","device_id":"d1","txn_count_24h":1,"avg_amount_30d":50,"account_age_days":400,"chargebacks_90d":0}`, id)
}

func newSync(t *testing.T, brokers []string, cfg pipeline.SyncConfig) *pipeline.Sync {
	t.Helper()
	cfg.Brokers, cfg.Rules, cfg.Logger = brokers, defaultRules(t), testLogger(t)
	s, err := pipeline.NewSync(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func auditRecords(t *testing.T, brokers []string) []audit.Record {
	t.Helper()
	return kafkatest.ReadJSON[audit.Record](t, brokers, "audit")
}

// TestSyncConcurrentRetriesDecideOnce: requests for one event that arrive
// together get one decision, which the later ones replay.
func TestSyncConcurrentRetriesDecideOnce(t *testing.T) {
	brokers := startBroker(t)
	s := newSync(t, brokers, pipeline.SyncConfig{})
	const n = 20
	resps := make([]pipeline.SyncResponse, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resps[i], errs[i] = s.Decide(context.Background(), pipeline.SyncRequest{Channel: audit.ChannelHTTP, Caller: "c", Event: syncEvent("same")})
		})
	}
	wg.Wait()
	var made int
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !resps[i].Replayed {
			made++
		}
		if resps[i].AuditID != resps[0].AuditID {
			t.Fatalf("two audit ids for one event: %s, %s", resps[i].AuditID, resps[0].AuditID)
		}
	}
	if made != 1 {
		t.Fatalf("%d decisions made for %d identical requests, want 1", made, n)
	}
	if got := len(kafkatest.ReadTopic(t, brokers, "decisions")); got != 1 {
		t.Fatalf("%d decision records, want 1", got)
	}
}

// TestSyncWindowEnds: past the window a request is decided again; its
// records keep their audit ids and join the chain after the first ones,
// which verifies.
func TestSyncWindowEnds(t *testing.T) {
	brokers := startBroker(t)
	s := newSync(t, brokers, pipeline.SyncConfig{Window: 50 * time.Millisecond})
	req := pipeline.SyncRequest{Channel: audit.ChannelMCP, Caller: "c", Event: syncEvent("w")}
	first, err := s.Decide(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	again, err := s.Decide(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if again.Replayed || again.AuditID != first.AuditID {
		t.Fatalf("after the window: replayed %v, audit ids %s %s: want a new decision with the same audit id", again.Replayed, first.AuditID, again.AuditID)
	}
	recs := auditRecords(t, brokers)
	if len(recs) != 2 || recs[0].Seq != 0 || recs[1].Seq != 1 || recs[1].PrevHash != recs[0].Hash {
		t.Fatalf("audit records %+v: want two linked decisions", recs)
	}
	if b := audit.Verify(recs, nil); len(b) > 0 {
		t.Fatalf("chain breaks: %+v", b)
	}
}

// TestSyncCheckpointsSigned: with a signer, the channels' chains are
// closed by signed checkpoints, and verify with the key.
func TestSyncCheckpointsSigned(t *testing.T) {
	brokers := startBroker(t)
	signer, err := audit.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	s := newSync(t, brokers, pipeline.SyncConfig{Signer: signer, Instance: "i-1"})
	for i := range 3 {
		for _, ch := range []string{audit.ChannelHTTP, audit.ChannelMCP} {
			if _, err := s.Decide(context.Background(), pipeline.SyncRequest{Channel: ch, Caller: "c", Event: syncEvent(fmt.Sprintf("%s-%d", ch, i))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A checkpoint may also fall between the decisions (every second):
	// wait for each chain to end with one.
	chain := func(recs []audit.Record, ch string) (rows []audit.Record, decisions int) {
		for _, r := range recs {
			if r.Chain == audit.SyncChain(ch, "i-1") {
				rows = append(rows, r)
				if r.Kind == audit.KindDecision {
					decisions++
				}
			}
		}
		sort.Slice(rows, func(i, j int) bool { return rows[i].Seq < rows[j].Seq })
		return rows, decisions
	}
	var recs []audit.Record
	testrun.Until(t, "a checkpoint closing each channel's chain", waitTimeout, 100*time.Millisecond, func() bool {
		recs = auditRecords(t, brokers)
		for _, ch := range []string{audit.ChannelHTTP, audit.ChannelMCP} {
			rows, n := chain(recs, ch)
			if n != 3 || rows[len(rows)-1].Kind != audit.KindCheckpoint {
				return false
			}
		}
		return true
	})
	for _, ch := range []string{audit.ChannelHTTP, audit.ChannelMCP} {
		rows, _ := chain(recs, ch)
		for _, r := range rows {
			if r.Kind == audit.KindDecision && (r.Channel != ch || r.Caller != "c" || r.Partition != -1 || r.Offset != -1) {
				t.Fatalf("record %+v: want channel %s, caller c, no source position", r, ch)
			}
		}
		if b := audit.Verify(rows, signer); len(b) > 0 {
			t.Fatalf("chain %s breaks: %+v", ch, b)
		}
	}
}

// TestSyncBusy: past MaxInFlight requests are refused, not queued; the
// one in flight is decided (here, by its timeout's fallback: no sampler
// serves the pool).
func TestSyncBusy(t *testing.T) {
	brokers := startBroker(t)
	pool := sampling.NewPool(sampling.Options{QueueWait: time.Minute, Logger: testLogger(t)})
	t.Cleanup(func() { _ = pool.Close() })
	s := newSync(t, brokers, pipeline.SyncConfig{Decider: pool, MaxInFlight: 1})
	ambiguous := bytes.Replace(syncEvent("busy-1"), []byte(`"amount":12.5,"currency":"EUR","country":"DE"`), []byte(`"amount":9000,"currency":"EUR","country":"NG"`), 1)
	first := make(chan error, 1)
	var resp pipeline.SyncResponse
	go func() {
		var err error
		for { // the probes below may hold the one slot for a moment
			resp, err = s.Decide(context.Background(), pipeline.SyncRequest{Channel: audit.ChannelHTTP, Event: ambiguous, Timeout: 2 * time.Second})
			if !errors.Is(err, pipeline.ErrSyncBusy) {
				break
			}
		}
		first <- err
	}()
	testrun.Until(t, "the first request with the pool", waitTimeout, 5*time.Millisecond, func() bool {
		_, err := s.Decide(context.Background(), pipeline.SyncRequest{Channel: audit.ChannelHTTP, Event: syncEvent("busy-2")})
		return errors.Is(err, pipeline.ErrSyncBusy)
	})
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if resp.Decision.Path != pipeline.PathFallback || resp.Decision.Reason != pipeline.FallbackTimeout {
		t.Fatalf("the first request: %+v, want the timeout fallback", resp.Decision)
	}
	if _, err := s.Decide(context.Background(), pipeline.SyncRequest{Channel: audit.ChannelHTTP, Event: syncEvent("busy-2")}); err != nil {
		t.Fatalf("after the first is done: %v", err)
	}
}
