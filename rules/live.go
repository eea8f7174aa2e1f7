package rules

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// debounce is how long the file must be quiet before a change is reloaded:
// editors and config management write in bursts (truncate, write, rename,
// chmod), and reloading the half-written file would only log an error.
const debounce = 100 * time.Millisecond

// Live holds the current Set of a rules file and replaces it when the file
// changes. Readers call Current on every event; it is one atomic load. A
// reload that fails (unreadable file, parse error) keeps the previous Set,
// so a bad edit never takes the pipeline's policy away.
type Live struct {
	path string
	opts []Option // Parse's, for every reload
	log  *slog.Logger
	cur  atomic.Pointer[Set]
	done chan struct{}

	mu      sync.Mutex // serialises reloads; guards the fields below
	changed chan struct{}
	lastErr error
	ok      uint64
	failed  uint64
}

// Watch loads the rules file at path, failing if it is bad, then watches it
// until ctx ends, reloading after each burst of changes. It watches the
// file's directory rather than the file, so editors' write-to-temp-and-
// rename and Kubernetes ConfigMap symlink swaps (..data) are seen. log
// receives one line per reload; nil discards them. opts are Parse's, used
// for the first load and every reload, so the mask key stays the same.
//
// The watching goroutine ends when ctx does; Done reports when.
func Watch(ctx context.Context, path string, log *slog.Logger, opts ...Option) (*Live, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("rules: watch %s: %w", path, err)
	}
	// Watch before the first load, so a change made in between is not missed.
	if err := w.Add(filepath.Dir(path)); err != nil {
		w.Close()
		return nil, fmt.Errorf("rules: watch %s: %w", path, err)
	}
	s, err := Load(path, opts...)
	if err != nil {
		w.Close()
		return nil, err
	}
	l := &Live{path: path, opts: slices.Clone(opts), log: log, done: make(chan struct{}), changed: make(chan struct{})}
	l.cur.Store(s)
	go l.watch(ctx, w)
	return l, nil
}

// Static returns a Live that always holds s and never reloads: for tests,
// and for a policy compiled into the binary.
func Static(s *Set) *Live {
	l := &Live{log: slog.New(slog.DiscardHandler), done: make(chan struct{}), changed: make(chan struct{})}
	l.cur.Store(s)
	close(l.done)
	return l
}

// Current returns the Set in force. Hold on to it for the length of one
// event (or batch) so that one decision uses one policy.
func (l *Live) Current() *Set { return l.cur.Load() }

// Reload reads the file now, as on SIGHUP, and returns what went wrong, if
// anything; on error the current Set stays. A file whose content has not
// changed keeps the current Set and its counters. Reload on a Static Live
// does nothing.
func (l *Live) Reload() error {
	if l.path == "" {
		return nil
	}
	return l.reload()
}

// Changed returns a channel that is closed after the next reload attempt
// (by the watcher or by Reload), whatever its outcome. To wait for a
// condition without sleeping, take the channel, check the condition, and
// wait on the channel if it does not hold yet. For a Static Live it never
// closes.
func (l *Live) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// Err returns the error of the latest reload attempt, nil if it succeeded
// or none has been made. A non-nil Err means the file on disk is not the
// policy in force.
func (l *Live) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastErr
}

// Reloads returns how many reloads replaced the Set and how many failed,
// for metrics.
func (l *Live) Reloads() (ok, failed uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok, l.failed
}

// Done is closed when the watching goroutine has stopped (at once for a
// Static Live), so shutdown can wait for it.
func (l *Live) Done() <-chan struct{} { return l.done }

func (l *Live) watch(ctx context.Context, w *fsnotify.Watcher) {
	defer close(l.done)
	defer w.Close()
	timer := time.NewTimer(debounce)
	timer.Stop()
	defer timer.Stop()
	base := filepath.Base(l.path)
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			// Chmod alone changes nothing we read; ..data is the symlink a
			// Kubernetes ConfigMap volume swaps to publish a new version.
			name := filepath.Base(ev.Name)
			if ev.Op == fsnotify.Chmod || (name != base && name != "..data") {
				continue
			}
			timer.Reset(debounce) // since Go 1.23 Reset drops a pending fire
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			l.log.Warn("rules: watching rules file", "path", l.path, "err", err)
		case <-timer.C:
			_ = l.reload() // reload logs and records the error itself
		}
	}
}

func (l *Live) reload() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer func() {
		close(l.changed)
		l.changed = make(chan struct{})
	}()
	old := l.cur.Load()
	data, err := readFile(l.path)
	var s *Set
	if err == nil && sha256.Sum256(data) != old.sum {
		s, err = Parse(l.path, data, l.opts...)
	}
	l.lastErr = err
	switch {
	case err != nil:
		l.failed++
		l.log.Error("rules: reload failed; keeping the previous rules",
			"path", l.path, "version", old.Version(), "err", err)
	case s == nil:
		l.log.Debug("rules: rules file unchanged", "path", l.path, "version", old.Version())
	default:
		l.ok++
		l.cur.Store(s)
		l.log.Info("rules: reloaded", "path", l.path, "version", s.Version(),
			"previous", old.Version(), "types", s.Types())
	}
	return err
}
