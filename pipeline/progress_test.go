package pipeline

import (
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/cenkalti/backoff/v5"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TestProgressFollowsOutOfOrderCompletion: the done ranges above the
// watermark are what a crash would otherwise decide twice; they include
// what was inherited and not yet passed, and they survive the metadata
// encoding exactly.
func TestProgressFollowsOutOfOrderCompletion(t *testing.T) {
	o := NewOffsets()
	tp := TopicPartition{"events", 0}
	o.Inherit(tp, 100, []Range{{90, 95}, {104, 106}, {120, 121}}) // a range below committed is stale
	decided := func(off int64) bool { in, _ := o.Decided(tp, off); return in }
	if !decided(105) || decided(103) || decided(92) {
		t.Fatal("Decided does not follow the inherited ranges above the committed offset")
	}
	got := o.Progress()[tp]
	if want := (Progress{Mark{100, -1}, []Range{{104, 106}, {120, 121}}}); got.Mark != want.Mark || !slices.Equal(got.Done, want.Done) {
		t.Fatalf("before any record: %+v, want %+v", got, want)
	}

	tickets := map[int64]*Ticket{}
	for _, off := range []int64{100, 101, 102, 103, 107, 108, 109} { // 104..106 skipped by the poll loop
		tickets[off] = o.Track(tp, off, 2)
	}
	for _, off := range []int64{101, 102, 108} {
		tickets[off].Done()
	}
	got = o.Progress()[tp]
	want := Progress{Mark{100, -1}, []Range{{101, 102}, {104, 106}, {108, 108}, {120, 121}}}
	if got.Mark != want.Mark || !slices.Equal(got.Done, want.Done) {
		t.Fatalf("out of order: %+v, want %+v", got, want)
	}
	tickets[100].Done()
	tickets[103].Done() // 103 joins 101..102 and the inherited 104..106
	got = o.Progress()[tp]
	want = Progress{Mark{103 + 1, 2}, []Range{{104, 106}, {108, 108}, {120, 121}}}
	if got.Mark != want.Mark || !slices.Equal(got.Done, want.Done) {
		t.Fatalf("after the head: %+v, want %+v", got, want)
	}

	meta := encodeProgress(got.Mark.Offset, got.Done)
	if !strings.HasPrefix(meta, progressPrefix) {
		t.Fatalf("metadata %q lacks the prefix", meta)
	}
	back, err := decodeProgress(got.Mark.Offset, meta)
	if err != nil || !slices.Equal(back, got.Done) {
		t.Fatalf("decode(encode) = %v, %v; want %v", back, err, got.Done)
	}
}

func TestDecodeProgress(t *testing.T) {
	for _, meta := range []string{"", "member-1234", "triage/0:AAAA"} {
		if done, err := decodeProgress(5, meta); err != nil || done != nil {
			t.Errorf("%q: %v, %v; want no ranges and no error", meta, done, err)
		}
	}
	for _, meta := range []string{progressPrefix + "!!", progressPrefix + "gA", progressPrefix + "AQ",
		progressPrefix + "_____________w"} {
		if done, err := decodeProgress(5, meta); err == nil {
			t.Errorf("%q: decoded %v, want an error", meta, done)
		}
	}
	// The bound holds for the default pool: with 64 workers and a queue
	// of 256, at most 321 events of a partition are unfinished, so it
	// has at most 322 done ranges, here with far apart offsets.
	var done []Range
	for i := range int64(322) {
		done = append(done, Range{1_000_000 + i*100_000, 1_000_000 + i*100_000 + 50_000})
	}
	if meta := encodeProgress(0, done); len(meta) > MaxProgressBytes {
		t.Errorf("322 ranges encode to %d bytes, more than %d", len(meta), MaxProgressBytes)
	}
}

// A broker that restarts while a member loads its partitions' progress is
// waited for; only errors no retry can cure end the load.
func TestLoadRetriesBrokerRestarts(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		err   error
		retry bool
	}{
		{io.EOF, true},
		{io.ErrUnexpectedEOF, true},
		{refused, true},
		{kerr.UnstableOffsetCommit, true},
		{kerr.CoordinatorNotAvailable, true},
		{kerr.GroupAuthorizationFailed, false},
		{errors.New("bad metadata"), false},
	} {
		_, err := retriable(0, tc.err)
		var perm *backoff.PermanentError
		if got := !errors.As(err, &perm); got != tc.retry {
			t.Errorf("%v: retried %v, want %v", tc.err, got, tc.retry)
		}
	}
}
