package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/time/rate"
)

// ProduceOptions controls a Produce run. The zero value produces as fast as
// possible until ctx ends, without progress callbacks or tracking.
type ProduceOptions struct {
	// Events stops the run after this many events; 0 means no limit.
	Events int
	// Duration stops the run after this long; 0 means no limit. With
	// neither Events nor Duration, Produce runs until ctx ends.
	Duration time.Duration
	// Rate is the target in events per second; 0 means as fast as the
	// client accepts records (it blocks once kgo.MaxBufferedRecords or
	// kgo.MaxBufferedBytes are buffered, which bounds memory).
	Rate float64
	// Progress, if set, is called about once a second from Produce's own
	// goroutine; it must not block for long, since it delays producing.
	Progress func(Progress)
	// Track keeps one Sent per acknowledged event in Report.Produced, which
	// Measure needs; it costs about 150 bytes per event, so leave it off for
	// long soak runs.
	Track bool
	// Clock stamps Sent.ProducedAt and the record timestamps; nil means
	// time.Now. Pacing always uses the real clock.
	Clock func() time.Time
	// FlushTimeout bounds how long records already buffered may still be
	// delivered after ctx ends; the rest are aborted and counted as errors.
	// 0 means 10s.
	FlushTimeout time.Duration
}

// Progress is a snapshot passed to ProduceOptions.Progress.
type Progress struct {
	Elapsed             time.Duration
	Sent, Acked, Errors int
	// Rate is acknowledged events per second since the previous snapshot.
	Rate float64
}

// Sent records one acknowledged event: where it landed and what it was meant
// to be, so Measure can find its decision or DLQ record.
type Sent struct {
	EventID, Type, Topic string
	Partition            int32
	Offset               int64
	// Bad is the malformed kind ("" for a valid event), Ambiguous whether it
	// was crafted to be sampled.
	Bad       string
	Ambiguous bool
	// ProducedAt is when the record was handed to the client; it is also the
	// record's timestamp.
	ProducedAt time.Time
}

// Report summarises a Produce run. Sent counts records handed to the
// client; by the time Produce returns each is Acked or counted in Errors
// (unless even aborting the buffered records timed out, which leaves
// Sent > Acked + Errors).
type Report struct {
	Sent, Acked, Errors int
	// Bytes is the total size of the record values sent.
	Bytes int64
	// ByType and ByBad count sent events per type and per malformed kind.
	ByType, ByBad map[string]int
	// Ambiguous counts sent events crafted to be sampled.
	Ambiguous int
	// Duration runs from the first record to the end of the final flush;
	// Rate is Acked per second over it.
	Duration time.Duration
	Rate     float64
	// Stopped says why producing ended: "events", "duration" or "canceled".
	Stopped string
	// FirstError is the first delivery error, "" if there was none.
	FirstError string
	// Produced holds a Sent per acknowledged event, in acknowledgement
	// order, when ProduceOptions.Track is set.
	Produced []Sent
}

const defaultFlushTimeout = 10 * time.Second

// ProducerClientOpts returns the kgo options a client needs to produce the
// generator's records: topic auto-creation, so a fresh broker works; a batch
// limit just above TooLargeBytes, without which kgo fails BadTooLarge records
// itself (their repetitive text compresses far below a broker's default 1 MiB
// message.max.bytes, and kgo compresses with snappy by default); a bound on
// buffered bytes, which matters once large records are in the mix; and a
// delivery timeout, so an unreachable broker fails records rather than
// blocking a run forever.
func ProducerClientOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.AllowAutoTopicCreation(),
		kgo.ProducerBatchMaxBytes(TooLargeBytes + 64<<10),
		kgo.MaxBufferedBytes(256 << 20),
		kgo.RecordDeliveryTimeout(30 * time.Second),
	}
}

// Produce generates events with g and produces them with cl asynchronously,
// paced to opts.Rate, until opts.Events or opts.Duration is reached or ctx
// ends; ending ctx is a normal way to stop and not an error. It then waits
// for every buffered record to be acknowledged (bounded by FlushTimeout
// once ctx has ended). Delivery failures are counted in the Report, not
// returned: the error is only for options it cannot run with.
//
// cl should be built with ProducerClientOpts; Produce uses g from its own
// goroutine only.
func Produce(ctx context.Context, cl *kgo.Client, g *Generator, opts ProduceOptions) (Report, error) {
	if cl == nil || g == nil {
		return Report{}, errors.New("loadgen: produce: nil client or generator")
	}
	if opts.Events < 0 || opts.Duration < 0 || opts.Rate < 0 || opts.FlushTimeout < 0 {
		return Report{}, fmt.Errorf("loadgen: produce: events, duration, rate and flush timeout must be >= 0")
	}
	p := &producer{cl: cl, g: g, o: opts, clock: opts.Clock,
		rep: Report{ByType: map[string]int{}, ByBad: map[string]int{}}}
	if p.clock == nil {
		p.clock = time.Now
	}
	flushTimeout := opts.FlushTimeout
	if flushTimeout == 0 {
		flushTimeout = defaultFlushTimeout
	}

	// Records outlive ctx so that stopping flushes what is buffered instead
	// of failing it; recCtx is cancelled FlushTimeout after ctx ends, which
	// fails whatever is still buffered then.
	recCtx, abort := context.WithCancel(context.WithoutCancel(ctx))
	defer abort()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		t := time.NewTimer(flushTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			abort()
		case <-done:
		}
	})
	defer wg.Wait()
	defer close(done)

	p.start = time.Now()
	p.rep.Stopped = p.loop(ctx, recCtx)
	if err := cl.Flush(recCtx); err != nil {
		// Aborting fails the remaining records through their promises, so
		// the counts below are final.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
		_ = cl.AbortBufferedRecords(actx)
		cancel()
	}
	return p.report(), nil
}

type producer struct {
	cl    *kgo.Client
	g     *Generator
	o     ProduceOptions
	clock func() time.Time
	start time.Time
	rep   Report // Sent, Bytes, ByType, ByBad, Ambiguous: loop goroutine only

	acked, errs atomic.Int64
	mu          sync.Mutex // guards the fields below, written by promises
	firstErr    string
	produced    []Sent
	closed      bool // set when the report is taken; late promises are ignored

	lastProgress time.Time
	lastAcked    int64
}

// loop produces until a stop condition and returns which one.
func (p *producer) loop(ctx, recCtx context.Context) string {
	var deadline time.Time
	if p.o.Duration > 0 {
		deadline = p.start.Add(p.o.Duration)
	}
	pace := newPacer(p.o.Rate, p.start)
	p.lastProgress = p.start
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if p.o.Events > 0 && p.rep.Sent >= p.o.Events {
			return "events"
		}
		now := time.Now()
		if ctx.Err() != nil {
			return "canceled"
		}
		if !deadline.IsZero() && !now.Before(deadline) {
			return "duration"
		}
		p.maybeProgress(now)
		// Wait for the pacer, waking for progress, the deadline and ctx.
		for until := pace.reserve(now); now.Before(until); now = time.Now() {
			wake := until
			if p.o.Progress != nil {
				wake = earliest(wake, p.lastProgress.Add(time.Second))
			}
			if !deadline.IsZero() {
				wake = earliest(wake, deadline)
			}
			timer.Reset(wake.Sub(now))
			select {
			case <-ctx.Done():
				return "canceled"
			case <-timer.C:
			}
			p.maybeProgress(time.Now())
			if !deadline.IsZero() && !time.Now().Before(deadline) {
				return "duration"
			}
		}
		p.send(recCtx, p.g.Next())
	}
}

func (p *producer) send(ctx context.Context, ev Event) {
	at := p.clock()
	p.rep.Sent++
	p.rep.Bytes += int64(len(ev.Value))
	p.rep.ByType[ev.Type]++
	if ev.Bad != "" {
		p.rep.ByBad[ev.Bad]++
	}
	if ev.Ambiguous {
		p.rep.Ambiguous++
	}
	rec := &kgo.Record{Topic: ev.Topic, Key: ev.Key, Value: ev.Value, Timestamp: at}
	id, typ, bad, amb := ev.EventID, ev.Type, ev.Bad, ev.Ambiguous
	p.cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
		if err != nil {
			p.errs.Add(1)
			p.mu.Lock()
			if p.firstErr == "" {
				p.firstErr = err.Error()
			}
			p.mu.Unlock()
			return
		}
		p.acked.Add(1)
		if p.o.Track {
			p.mu.Lock()
			if !p.closed {
				p.produced = append(p.produced, Sent{EventID: id, Type: typ, Topic: r.Topic,
					Partition: r.Partition, Offset: r.Offset, Bad: bad, Ambiguous: amb, ProducedAt: at})
			}
			p.mu.Unlock()
		}
	})
}

func (p *producer) maybeProgress(now time.Time) {
	if p.o.Progress == nil || now.Sub(p.lastProgress) < time.Second {
		return
	}
	acked := p.acked.Load()
	p.o.Progress(Progress{
		Elapsed: now.Sub(p.start), Sent: p.rep.Sent, Acked: int(acked), Errors: int(p.errs.Load()),
		Rate: float64(acked-p.lastAcked) / now.Sub(p.lastProgress).Seconds(),
	})
	p.lastProgress, p.lastAcked = now, acked
}

func (p *producer) report() Report {
	r := p.rep
	r.Duration = time.Since(p.start)
	r.Acked, r.Errors = int(p.acked.Load()), int(p.errs.Load())
	if s := r.Duration.Seconds(); s > 0 {
		r.Rate = float64(r.Acked) / s
	}
	p.mu.Lock()
	r.FirstError, r.Produced, p.closed = p.firstErr, p.produced, true
	p.mu.Unlock()
	return r
}

// pacer spaces events 1/rate apart with a token bucket
// (golang.org/x/time/rate) that holds at most 100 ms worth of events, so a
// sender that fell behind catches up by at most that much rather than with an
// unbounded spike.
type pacer struct{ lim *rate.Limiter }

func newPacer(r float64, start time.Time) *pacer {
	if r <= 0 {
		return nil
	}
	burst := max(1, int(r/10))
	lim := rate.NewLimiter(rate.Limit(r), burst)
	lim.AllowN(start, burst-1) // start with one token: no burst at the start
	return &pacer{lim: lim}
}

// reserve books the next send and returns the time it may happen.
func (p *pacer) reserve(now time.Time) time.Time {
	if p == nil {
		return now
	}
	return now.Add(p.lim.ReserveN(now, 1).DelayFrom(now))
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
