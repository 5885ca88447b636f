package pwhash

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/user"
)

// gate blocks every hash until release is closed, telling entered first.
type gate struct {
	entered chan struct{}
	release chan struct{}
}

func (g *gate) Hash(string, user.Params) (string, error) {
	g.entered <- struct{}{}
	<-g.release
	return "h", nil
}
func (g *gate) Verify(string, string) (bool, error) {
	g.entered <- struct{}{}
	<-g.release
	return true, nil
}

func wantBusy(t *testing.T, err error) {
	t.Helper()
	var he *httperr.Error
	if !errors.Is(err, ErrBusy) || !errors.As(err, &he) || he.Status != http.StatusServiceUnavailable ||
		he.Code != "server_busy" || he.RetryAfter <= 0 {
		t.Fatalf("err = %v, want 503 server_busy with Retry-After wrapping ErrBusy", err)
	}
}

// TestPoolBounds: one slot and one place in the queue: the third hash is refused at once;
// the queued one runs when the slot frees; a cancelled wait is refused too.
func TestPoolBounds(t *testing.T) {
	g := &gate{entered: make(chan struct{}, 4), release: make(chan struct{})}
	busy := 0
	p := New(Options{Hasher: g, Concurrency: 1, Queue: 1, MaxWait: time.Hour, OnBusy: func() { busy++ }})
	ctx := context.Background()
	done := make(chan error, 2)
	go func() { _, err := p.Verify(ctx, "e", "pw"); done <- err }()
	<-g.entered
	go func() { _, err := p.Hash(ctx, "pw", user.TestParams); done <- err }()
	for p.waiting.Load() != 1 { // the second is in the queue
		time.Sleep(time.Millisecond)
	}
	_, err := p.Verify(ctx, "e", "pw")
	wantBusy(t, err)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	// The queue is full: refused without waiting, whatever ctx.
	_, err = p.Hash(cctx, "pw", user.TestParams)
	wantBusy(t, err)
	if busy != 2 {
		t.Errorf("OnBusy told %d times, want 2", busy)
	}
	close(g.release)
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("a hash within the bounds: %v", err)
		}
	}
}

// TestPoolWaitEnds: a wait ends with the context (or MaxWait) as busy.
func TestPoolWaitEnds(t *testing.T) {
	g := &gate{entered: make(chan struct{}, 4), release: make(chan struct{})}
	defer close(g.release)
	p := New(Options{Hasher: g, Concurrency: 1, Queue: 1, MaxWait: time.Hour})
	go func() { _, _ = p.Verify(context.Background(), "e", "pw") }()
	<-g.entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.Verify(ctx, "e", "pw")
	wantBusy(t, err)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want it to wrap context.Canceled", err)
	}
}

// TestArgon2id: the default hasher is package user's.
func TestArgon2id(t *testing.T) {
	p := New(Options{})
	h, err := p.Hash(context.Background(), "a long enough password", user.TestParams)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := p.Verify(context.Background(), h, "a long enough password"); !ok || err != nil {
		t.Errorf("Verify = %v, %v", ok, err)
	}
	if ok, _ := p.Verify(context.Background(), h, "another password!"); ok {
		t.Error("a wrong password verified")
	}
}
