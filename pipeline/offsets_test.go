package pipeline

import (
	"context"
	"testing"
	"time"
)

func TestOffsetsWatermarkFollowsContiguousCompletion(t *testing.T) {
	o := NewOffsets()
	tp := TopicPartition{"events", 0}
	var tickets []*Ticket
	for off := int64(10); off < 15; off++ {
		tickets = append(tickets, o.Track(tp, off, 3))
	}
	steps := []struct {
		done     int // index into tickets
		advanced bool
		mark     int64 // expected committable offset, 0 = none yet
	}{
		{done: 2, advanced: false, mark: 0},  // 12 done, 10 and 11 still pending
		{done: 1, advanced: false, mark: 0},  // 11 done, 10 pending
		{done: 0, advanced: true, mark: 13},  // 10 done: 10..12 contiguous
		{done: 4, advanced: false, mark: 13}, // 14 done, 13 pending
		{done: 3, advanced: true, mark: 15},  // all done
		{done: 3, advanced: false, mark: 15}, // Done twice is harmless
	}
	for i, s := range steps {
		if got := tickets[s.done].Done(); got != s.advanced {
			t.Fatalf("step %d: Done advanced = %v, want %v", i, got, s.advanced)
		}
		m, ok := o.Marks()[tp]
		if s.mark == 0 {
			if ok {
				t.Fatalf("step %d: mark %v before the first record completed", i, m)
			}
			continue
		}
		if !ok || m.Offset != s.mark || m.Epoch != 3 {
			t.Fatalf("step %d: mark = %+v (ok %v), want offset %d epoch 3", i, m, ok, s.mark)
		}
	}
	if n := o.InFlight(nil); n != 0 {
		t.Fatalf("in flight = %d, want 0", n)
	}
}

func TestOffsetsAbandonHoldsWatermarkButIsNotWaitedFor(t *testing.T) {
	o := NewOffsets()
	tp := TopicPartition{"events", 1}
	a := o.Track(tp, 0, 0)
	b := o.Track(tp, 1, 0)
	b.Done()
	a.Abandon()
	if _, ok := o.Marks()[tp]; ok {
		t.Fatal("an abandoned record must never become committable")
	}
	if a.Done() {
		t.Fatal("Done after Abandon must not advance")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := o.Wait(ctx, nil); err != nil {
		t.Fatalf("Wait with only an abandoned record left: %v", err)
	}
}

func TestOffsetsWaitReturnsWhenPartitionsComplete(t *testing.T) {
	o := NewOffsets()
	p0 := TopicPartition{"events", 0}
	p1 := TopicPartition{"events", 1}
	a := o.Track(p0, 0, 0)
	o.Track(p1, 0, 0) // never completes
	errc := make(chan error, 1)
	go func() { errc <- o.Wait(context.Background(), []TopicPartition{p0}) }()
	a.Done()
	if err := <-errc; err != nil {
		t.Fatalf("Wait(p0) = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := o.Wait(ctx, nil); err == nil {
		t.Fatal("Wait(all) returned nil with p1 in flight")
	}
}

func TestOffsetsDropIgnoresLateCompletions(t *testing.T) {
	o := NewOffsets()
	tp := TopicPartition{"events", 2}
	a := o.Track(tp, 7, 0)
	o.Drop([]TopicPartition{tp})
	a.Done()
	if _, ok := o.Marks()[tp]; ok {
		t.Fatal("a completion after Drop re-created a mark for a partition no longer owned")
	}
	b := o.Track(tp, 8, 1) // reassigned later
	b.Done()
	if m := o.Marks()[tp]; m.Offset != 9 {
		t.Fatalf("mark after reassignment = %+v, want offset 9", m)
	}
}
