package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/redistest"
)

// TestBreaker: while open, commands fail at once with ErrUnavailable and never reach the
// server, a Ping (the probe) and a subscription still do; a command that cannot reach the
// server opens it; Reset closes it.
func TestBreaker(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	var changes []bool
	b := store.NewBreaker(func(open bool, err error) { changes = append(changes, open) })
	st, err := store.NewRedis(store.RedisOptions{Addrs: []string{rs.Addr()}, KeyPrefix: "t:", Breaker: b,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx := context.Background()

	if err := st.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatalf("Set with the breaker closed: %v", err)
	}
	b.Trip(errors.New("test"))
	if !b.Open() || b.Since().IsZero() {
		t.Fatal("Trip did not open the breaker")
	}
	if _, err := st.Get(ctx, "k"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Get while open: %v, want ErrUnavailable", err)
	}
	if err := st.Delete(ctx, "k"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Delete (a pipeline) while open: %v, want ErrUnavailable", err)
	}
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("Ping while open must reach the server: %v", err)
	}
	sub, err := st.Subscribe(ctx, "c")
	if err != nil {
		t.Fatalf("Subscribe while open must reach the server: %v", err)
	}
	_ = sub.Close()
	b.Reset()
	if v, err := st.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get after Reset: %q, %v (the key must not have been deleted while open)", v, err)
	}

	// A command that cannot reach the server opens the breaker by itself.
	rs.Stop(t)
	if _, err := st.Get(ctx, "k"); err == nil || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Get with Redis stopped: %v, want a network error", err)
	}
	if !b.Open() {
		t.Fatal("a failed command did not open the breaker")
	}
	if want := []bool{true, false, true}; len(changes) != len(want) || changes[0] != want[0] || changes[1] != want[1] || changes[2] != want[2] {
		t.Fatalf("onChange calls %v, want %v", changes, want)
	}
}
