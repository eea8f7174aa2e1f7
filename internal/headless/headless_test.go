package headless

import (
	"errors"
	"testing"
)

// Without Chromium the tests that need it get an error that says how to
// install it, so that they fail with it rather than skip.
func TestFindWithoutChromium(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := Find(); !errors.Is(err, ErrNoChromium) {
		t.Fatalf("err = %v, want ErrNoChromium", err)
	}
}

func TestBrowserNeedsBinAndProfile(t *testing.T) {
	if _, err := (Browser{Bin: "chromium"}).DumpDOM(t.Context(), "about:blank"); err == nil {
		t.Fatal("a browser without a profile directory ran")
	}
}
