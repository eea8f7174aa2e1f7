// Package latency is triage's one latency histogram. The demo's summary and
// the producer's --measure both record into it, so that their percentiles
// mean the same thing and their memory stays fixed however many events a
// run decides.
package latency

import (
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// The range and precision every Histogram records with. Durations are
// recorded in whole microseconds (Resolution) from 0 to Highest, with Digits
// significant decimal digits: a quantile is within 0.1 % of the true value.
// A duration below 0 or above Highest is clamped into the range and counted
// by Clamped.
const (
	Resolution = time.Microsecond
	Highest    = time.Hour
	Digits     = 3
)

// Histogram is a latency distribution of fixed size (about 190 KB, taken on
// the first Record or Merge), backed by an HDR histogram.
//
// The zero value is an empty histogram ready to use, and a nil *Histogram
// reads as empty. A Histogram is safe for concurrent use; it must not be
// copied after first use.
type Histogram struct {
	mu      sync.Mutex
	h       *hdrhistogram.Histogram // nil until something is recorded
	max     time.Duration
	clamped int64
}

// Record adds one duration.
func (h *Histogram) Record(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if d < 0 || d > Highest {
		h.clamped++
		d = min(max(d, 0), Highest)
	}
	h.max = max(h.max, d)
	// In range, so it cannot fail.
	_ = h.hist().RecordValue(int64(d / Resolution))
}

// hist returns the HDR histogram, creating it on first use; h.mu is held.
func (h *Histogram) hist() *hdrhistogram.Histogram {
	if h.h == nil {
		h.h = hdrhistogram.New(1, int64(Highest/Resolution), Digits)
	}
	return h.h
}

// Quantile returns the duration at quantile q (0.5 is the median, 0.99 the
// 99th percentile, 1 the maximum): the largest value in the HDR bucket that
// holds the q-th value, but never more than Max. It is 0 when nothing was
// recorded.
func (h *Histogram) Quantile(q float64) (d time.Duration) {
	h.read(func(hh *hdrhistogram.Histogram) {
		d = min(time.Duration(hh.ValueAtPercentile(100*q))*Resolution, h.max)
	})
	return d
}

// Count returns how many durations were recorded.
func (h *Histogram) Count() (n int64) {
	h.read(func(hh *hdrhistogram.Histogram) { n = hh.TotalCount() })
	return n
}

// Max returns the largest duration recorded, exactly (after clamping), or
// 0 when nothing was recorded.
func (h *Histogram) Max() (d time.Duration) {
	h.read(func(*hdrhistogram.Histogram) { d = h.max })
	return d
}

// Clamped returns how many recorded durations were outside [0, Highest].
func (h *Histogram) Clamped() (n int64) {
	h.read(func(*hdrhistogram.Histogram) { n = h.clamped })
	return n
}

// read calls f with h locked, unless h is nil or nothing was recorded (so
// every reading of an empty histogram is zero).
func (h *Histogram) read(f func(*hdrhistogram.Histogram)) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.h != nil {
		f(h.h)
	}
}

// Merge adds everything recorded in from to h. from may be nil or h itself.
func (h *Histogram) Merge(from *Histogram) {
	if from == nil {
		return
	}
	// Copy from under its own lock first, so that two histograms merging
	// into each other cannot deadlock.
	from.mu.Lock()
	var snap *hdrhistogram.Histogram
	if from.h != nil {
		snap = from.h.Clone()
	}
	fmax, fclamped := from.max, from.clamped
	from.mu.Unlock()
	if snap == nil {
		return
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	// Same geometry, so nothing is dropped.
	_ = h.hist().Merge(snap)
	h.max = max(h.max, fmax)
	h.clamped += fclamped
}
