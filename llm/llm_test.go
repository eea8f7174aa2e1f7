package llm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestNew(t *testing.T) {
	tests := []struct {
		provider string
		opts     Options
		wantErr  string // "" = success
	}{
		{"offline", Options{}, ""},
		{"openai", Options{}, ""},
		{"openai", Options{BaseURL: "http://127.0.0.1:11434/v1", Model: "llama3.2"}, ""},
		{"anthropic", Options{APIKey: "k"}, ""},
		{"anthropic", Options{}, "no API key"},
		{"anthropic", Options{APIKey: " "}, "no API key"},
		{"gemini", Options{}, `unknown provider "gemini"`},
		{"Offline", Options{}, `unknown provider "Offline"`},
		{"openai", Options{BaseURL: "127.0.0.1:11434/v1"}, "base URL"},
		{"openai", Options{BaseURL: "ftp://host/v1"}, "base URL"},
		{"anthropic", Options{APIKey: "k", BaseURL: "http://"}, "base URL"},
		{"openai", Options{Models: []ModelRoute{{Hint: "x"}}}, "model route 0"},
		{"offline", Options{Latency: -time.Second}, "negative latency"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %+v", tt.provider, tt.opts), func(t *testing.T) {
			p, err := New(tt.provider, tt.opts)
			if tt.wantErr == "" {
				if err != nil || p == nil || p.Name() != tt.provider {
					t.Fatalf("New = %v, %v; want a %s provider", p, err, tt.provider)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestRetryableTransport(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"cancelled", fmt.Errorf("post: %w", context.Canceled), false},
		{"deadline", fmt.Errorf("post: %w", context.DeadlineExceeded), true},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{"connection refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{"cut short", fmt.Errorf("decode: %w", io.ErrUnexpectedEOF), true},
		{"timeout", timeoutError{}, true},
		{"bad JSON", errors.New("invalid character '<' looking for beginning of value"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := error(transportError("p", tt.err))
			if got := IsRetryable(err); got != tt.want {
				t.Errorf("IsRetryable(%v) = %v, want %v", err, got, tt.want)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("%v does not wrap %v", err, tt.err)
			}
		})
	}
	if IsRetryable(errors.New("plain")) || IsRetryable(nil) {
		t.Error("errors other than *Error must not be retryable")
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestRetryableStatus(t *testing.T) {
	for status, want := range map[int]bool{
		400: false, 401: false, 403: false, 404: false, 409: false, 413: false, 422: false,
		408: true, 429: true, 500: true, 502: true, 503: true, 504: true, 529: true,
	} {
		if got := retryableStatus(status); got != want {
			t.Errorf("retryableStatus(%d) = %v, want %v", status, got, want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"none", http.Header{}, 0},
		{"seconds", http.Header{"Retry-After": {"30"}}, 30 * time.Second},
		{"fractional seconds", http.Header{"Retry-After": {"1.5"}}, 1500 * time.Millisecond},
		{"milliseconds win", http.Header{"Retry-After": {"30"}, "Retry-After-Ms": {"250"}}, 250 * time.Millisecond},
		{"HTTP date", http.Header{"Retry-After": {"Thu, 26 Nov 2026 12:01:00 GMT"}}, time.Minute},
		{"date in the past", http.Header{"Retry-After": {"Thu, 26 Nov 2026 11:00:00 GMT"}}, 0},
		{"negative", http.Header{"Retry-After": {"-3"}}, 0},
		{"garbage", http.Header{"Retry-After": {"soon"}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryAfter(tt.header, now); got != tt.want {
				t.Errorf("retryAfter = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	err := &Error{Provider: "openai", Status: 429, Retryable: true, Err: errors.New("429 Too Many Requests: slow down")}
	if got, want := err.Error(), "llm: openai: 429 Too Many Requests: slow down"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
