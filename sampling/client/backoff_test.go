package client

import (
	"context"
	"testing"
	"time"
)

func TestPauseEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if pause(ctx, time.Hour) {
		t.Fatal("pause ran to the end despite a cancelled context")
	}
}
