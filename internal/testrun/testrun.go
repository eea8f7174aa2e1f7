// Package testrun holds what triage's tests share for running things in the
// background: a runner with a stop function that returns the run's error, a
// bounded poll for state that offers nothing to wait on, a buffer that a
// running goroutine or child process can write while the test reads it, and
// the runner of the project's server scripts (Script).
package testrun

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// Background runs run(ctx) in a goroutine. stop cancels ctx and returns
// run's error, or an error when run does not return within timeout (a hang
// guard); it is idempotent and also called when the test ends.
func Background(t testing.TB, what string, timeout time.Duration, run func(context.Context) error) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(timeout):
				err = fmt.Errorf("%s did not stop within %s", what, timeout)
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// Until checks cond every interval until it holds, failing the test after
// timeout. It is for state that offers nothing to block on (a client's pause
// set, a remote server's counts); the timeout is a hang guard, not a
// performance assertion.
func Until(t testing.TB, what string, timeout, interval time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", timeout, what)
		}
		<-tick.C
	}
}

// Buffer is a bytes.Buffer safe for one writer and concurrent readers.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FreeAddr returns a loopback address that was free a moment ago: for a
// server a test starts later whose address it must know up front, or for a
// peer that refuses connections.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
