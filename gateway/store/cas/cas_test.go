package cas

import (
	"context"
	"errors"
	"testing"
)

func TestPause(t *testing.T) {
	if err := Pause(context.Background(), 1); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Pause(ctx, 1000); !errors.Is(err, context.Canceled) {
		t.Fatalf("Pause on an ended context = %v, want context.Canceled", err)
	}
}
