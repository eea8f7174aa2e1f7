package status

import (
	"time"

	"github.com/triage-dev/triage/internal/latency"
	"github.com/triage-dev/triage/pipeline"
)

// Counter indexes of the decision paths.
const (
	pathRule = iota
	pathSampled
	pathCache
	pathFallback
	pathOther // a path this package does not know: counted, not lost
	numPaths
)

var pathNames = [numPaths]string{pipeline.PathRule, pipeline.PathSampled, pipeline.PathCache, pipeline.PathFallback, Other}

func pathIndex(p string) int {
	switch p {
	case pipeline.PathRule:
		return pathRule
	case pipeline.PathSampled:
		return pathSampled
	case pipeline.PathCache:
		return pathCache
	case pipeline.PathFallback:
		return pathFallback
	}
	return pathOther
}

// The window's geometry: counts per second, latencies per 10 s slot. A
// latency.Histogram is about 190 KB once used, so a histogram per second
// and path would cost 45 MB; per 10 s slot it is at most 7 per path, and
// the percentiles cover the last 60 to 70 s.
const (
	seconds   = int(Window / time.Second)
	slotWidth = int64(10)
	slots     = seconds/int(slotWidth) + 1 // the current, partial slot and six full ones
)

// second counts the decisions of one wall-clock second.
type second struct {
	at     int64 // the Unix second counted
	byPath [numPaths]int64
	byType [maxTypes + 1]int64
}

// slot holds the latencies of slotWidth seconds. Only the current slot is
// written: a completed one is immutable, so readers may merge it without
// the aggregator's lock.
type slot struct {
	at  int64 // Unix second / slotWidth
	lat [numPaths]*latency.Histogram
}

// window is a ring of seconds and a ring of slots, advanced by the clock.
// Entries older than the window are overwritten, never freed one by one.
type window struct {
	cur   int64 // the current Unix second
	secs  [seconds]second
	slots [slots]slot
}

func newWindow(now time.Time) window {
	var w window
	w.cur = now.Unix()
	w.secs[mod(w.cur, seconds)].at = w.cur
	w.slots[mod(w.cur/slotWidth, slots)].at = w.cur / slotWidth
	return w
}

// advance moves the window to now. A clock that steps back keeps counting
// into the current second, so nothing lands in an entry already rolled.
func (w *window) advance(now time.Time) {
	sec := now.Unix()
	if sec <= w.cur {
		return
	}
	for s := max(w.cur+1, sec-int64(seconds)+1); s <= sec; s++ {
		w.secs[mod(s, seconds)] = second{at: s}
	}
	from, to := w.cur/slotWidth, sec/slotWidth
	for s := max(from+1, to-int64(slots)+1); s <= to; s++ {
		w.slots[mod(s, slots)] = slot{at: s}
	}
	w.cur = sec
}

// add counts a decision in the current second and slot.
func (w *window) add(path, typ int, lat time.Duration) {
	s := &w.secs[mod(w.cur, seconds)]
	s.byPath[path]++
	s.byType[typ]++
	sl := &w.slots[mod(w.cur/slotWidth, slots)]
	h := sl.lat[path]
	if h == nil {
		h = &latency.Histogram{}
		sl.lat[path] = h
	}
	h.Record(lat)
}

// counts sums the seconds within the window and lists decisions per
// second, oldest first, for the completed seconds.
func (w *window) counts() (byPath [numPaths]int64, byType [maxTypes + 1]int64, series []int64) {
	series = make([]int64, 0, seconds-1)
	for s := w.cur - int64(seconds) + 1; s <= w.cur; s++ {
		e := &w.secs[mod(s, seconds)]
		var n int64
		if e.at == s {
			for i, c := range e.byPath {
				byPath[i] += c
				n += c
			}
			for i, c := range e.byType {
				byType[i] += c
			}
		}
		if s < w.cur {
			series = append(series, n)
		}
	}
	return byPath, byType, series
}

// histograms returns the completed slots' histograms of the window and the
// current slot's, with the Unix second the oldest slot starts.
func (w *window) histograms() (full [][numPaths]*latency.Histogram, cur [numPaths]*latency.Histogram, from int64) {
	now := w.cur / slotWidth
	from = now
	for s := now - int64(slots) + 1; s < now; s++ {
		if e := &w.slots[mod(s, slots)]; e.at == s {
			full = append(full, e.lat)
			from = min(from, s)
		}
	}
	return full, w.slots[mod(now, slots)].lat, from * slotWidth
}

func mod(a int64, n int) int {
	m := int(a % int64(n))
	if m < 0 {
		m += n
	}
	return m
}
