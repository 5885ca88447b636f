package credcache

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store"
)

func TestNewInvalidatorValidates(t *testing.T) {
	c := newCache(t, Options{MaxEntries: 10, TTL: time.Second})
	st := store.NewMemory(nil)
	tests := []struct {
		name      string
		heartbeat time.Duration
		wantErr   bool
	}{
		{"default", 0, false},
		{"short", 10 * time.Millisecond, false},
		{"half ttl", 500 * time.Millisecond, true},
		{"negative", -time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewInvalidator(c, st, InvalidatorOptions{Heartbeat: tt.heartbeat})
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error: %v", err, tt.wantErr)
			}
		})
	}
	if _, err := NewInvalidator[string](nil, st, InvalidatorOptions{}); err == nil {
		t.Fatal("nil cache: got no error")
	}
}

func TestInvalidationReachesOtherReplica(t *testing.T) {
	st := store.NewMemory(nil)
	opts := Options{MaxEntries: 100, TTL: time.Minute}
	iopts := InvalidatorOptions{Heartbeat: 10 * time.Millisecond}
	a := startReplica(t, st, opts, iopts)
	b := startReplica(t, st, opts, iopts)
	for _, r := range []*replica{a, b} {
		r.cache.Put(hashN(1), "k1", "key:1", "user:u")
		r.cache.Put(hashN(2), "k2", "key:2", "user:u")
		r.cache.Put(hashN(3), "k3", "key:3", "user:v")
	}

	if err := a.inv.Publish(context.Background(), "user:u"); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	// The publisher's own cache is invalidated before Publish returns.
	if _, res := a.cache.Get(hashN(1)); res != Miss {
		t.Fatalf("publisher: got %s right after Publish, want miss", res)
	}
	if !waitFor(time.Second, func() bool { return b.cache.Len() == 1 }) {
		t.Fatalf("other replica: got Len %d, want 1 within 1s", b.cache.Len())
	}
	if _, res := b.cache.Get(hashN(3)); res != Hit {
		t.Fatalf("untagged entry on other replica: got %s, want hit", res)
	}
	for _, r := range []*replica{a, b} { // each applies the message from its subscription
		if !waitFor(time.Second, func() bool {
			return histogramCount(t, r.reg, "authgate_invalidation_lag_seconds") >= 1
		}) {
			t.Errorf("authgate_invalidation_lag_seconds: no observation within 1s")
		}
	}
}

func TestPublishRejectsEmptyTag(t *testing.T) {
	c := newCache(t, Options{MaxEntries: 10, TTL: time.Minute})
	inv, err := NewInvalidator(c, store.NewMemory(nil), InvalidatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := inv.Publish(context.Background(), ""); err == nil {
		t.Fatal("got no error for an empty tag")
	}
}

func TestPublishFailureStillInvalidatesLocally(t *testing.T) {
	st := store.NewMemory(nil)
	c := newCache(t, Options{MaxEntries: 10, TTL: time.Minute})
	inv, err := NewInvalidator(c, st, InvalidatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.Put(hashN(1), "v", "key:1")
	_ = st.Close()
	if err := inv.Publish(context.Background(), "key:1"); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("got error %v, want store.ErrClosed", err)
	}
	if got := c.Len(); got != 0 {
		t.Fatalf("got Len %d, want 0", got)
	}
}

func TestTrustLapsesWithoutSubscription(t *testing.T) {
	clk := newFakeClock()
	const ttl = 30 * time.Second
	// The default heartbeat is 250ms (TTL/4, at most 250ms); the trust window is four
	// heartbeats: a second.
	const window = time.Second
	c := newCache(t, Options{MaxEntries: 10, TTL: ttl, NegativeTTL: time.Hour, StaleTTL: time.Hour, Now: clk.Now})
	inv, err := NewInvalidator(c, store.NewMemory(clk.Now), InvalidatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Run is never called: nothing is heard, as when the subscription is down.
	if inv.Trusted() {
		t.Fatal("got trusted right after NewInvalidator, before anything was heard")
	}
	trustNow(t, inv) // as on subscribing
	clk.Advance(window - time.Millisecond)
	c.Put(hashN(1), "v", "key:1")
	c.PutNegative(hashN(2))
	if _, res := c.Get(hashN(1)); res != Hit {
		t.Fatalf("got %s while trusted, want hit", res)
	}
	clk.Advance(time.Millisecond)
	if inv.Trusted() {
		t.Fatal("got trusted after one trust window without hearing the subscription")
	}
	if v, res := c.Get(hashN(1)); res != Stale || v != "v" {
		t.Fatalf("got (%q, %s) while untrusted, want (v, stale)", v, res)
	}
	if _, res := c.Get(hashN(2)); res != NegativeHit {
		t.Fatalf("negative entry: got %s while untrusted, want negative_hit", res)
	}
}

// A short TTL bounds the trust window too: four heartbeats, at most one TTL.
func TestTrustWindowAtMostTTL(t *testing.T) {
	clk := newFakeClock()
	const ttl = 400 * time.Millisecond
	c := newCache(t, Options{MaxEntries: 10, TTL: ttl, StaleTTL: time.Hour, Now: clk.Now})
	inv, err := NewInvalidator(c, store.NewMemory(clk.Now), InvalidatorOptions{Heartbeat: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	trustNow(t, inv)
	clk.Advance(ttl - time.Millisecond)
	if !inv.Trusted() {
		t.Fatal("got untrusted before one TTL")
	}
	clk.Advance(time.Millisecond)
	if inv.Trusted() {
		t.Fatal("got trusted after one TTL (four heartbeats would be 600ms)")
	}
}

func TestRunRestoresTrustAndFlushes(t *testing.T) {
	clk := newFakeClock()
	st := store.NewMemory(clk.Now)
	c := newCache(t, Options{MaxEntries: 10, TTL: 100 * time.Millisecond, StaleTTL: time.Hour, Now: clk.Now})
	inv, err := NewInvalidator(c, st, InvalidatorOptions{Heartbeat: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c.Put(hashN(1), "v", "key:1")
	clk.Advance(time.Second)
	if inv.Trusted() {
		t.Fatal("got trusted before Run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- inv.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	<-inv.Ready()
	if !inv.Trusted() {
		t.Fatal("got untrusted after subscribing")
	}
	if v, res := c.Get(hashN(1)); res != Stale || v != "v" {
		t.Fatalf("got (%q, %s) after subscribing, want (v, stale): to be verified again, kept for serve_cached", v, res)
	}
	// Heartbeats keep it trusted as the (fake) time passes.
	clk.Advance(time.Hour)
	if !waitFor(5*time.Second, inv.Trusted) {
		t.Fatal("heartbeats did not restore trust within 5s")
	}
}

func TestMalformedMessageFlushes(t *testing.T) {
	st := store.NewMemory(nil)
	r := startReplica(t, st, Options{MaxEntries: 10, TTL: time.Minute}, InvalidatorOptions{})
	r.cache.Put(hashN(1), "v", "key:1")
	if err := st.Publish(context.Background(), DefaultChannel, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if !waitFor(time.Second, func() bool { _, res := r.cache.Get(hashN(1)); return res != Hit }) {
		t.Fatal("cache not flushed (entry still a hit) within 1s of a malformed message")
	}
}

func TestRunReturnsErrorWhenStoreCloses(t *testing.T) {
	st := store.NewMemory(nil)
	c := newCache(t, Options{MaxEntries: 10, TTL: time.Minute})
	inv, err := NewInvalidator(c, st, InvalidatorOptions{Heartbeat: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- inv.Run(context.Background()) }()
	<-inv.Ready()
	_ = st.Close()
	select {
	case err := <-done:
		if !errors.Is(err, store.ErrClosed) || !strings.HasPrefix(err.Error(), "credcache:") {
			t.Fatalf("got %v, want a credcache error wrapping store.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of the store closing")
	}
}

func TestRunLeaksNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	st := store.NewMemory(nil)
	for range 5 {
		c := newCache(t, Options{MaxEntries: 10, TTL: time.Minute})
		inv, err := NewInvalidator(c, st, InvalidatorOptions{Heartbeat: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- inv.Run(ctx) }()
		<-inv.Ready()
		if err := inv.Publish(ctx, "key:1"); err != nil {
			t.Fatal(err)
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return within 5s of cancel")
		}
	}
	_ = st.Close()
	if !waitFor(5*time.Second, func() bool { return runtime.NumGoroutine() <= before }) {
		buf := make([]byte, 1<<16)
		t.Fatalf("got %d goroutines, want <= %d\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
	}
}

// lossyStore drops the next published message while reporting success, as a connection
// that loses a message in transit does.
type lossyStore struct {
	store.Store
	drop atomic.Bool
}

func (l *lossyStore) Publish(ctx context.Context, channel string, msg []byte) error {
	if l.drop.CompareAndSwap(true, false) {
		return nil
	}
	return l.Store.Publish(ctx, channel, msg)
}

// A lost invalidation is noticed by the gap in its sender's numbering, at the sender's
// next message (here a heartbeat), and the receiver flushes its cache: the revoked entry
// does not stay a Hit.
func TestLostMessageFlushes(t *testing.T) {
	mem := store.NewMemory(nil)
	lossy := &lossyStore{Store: mem}
	opts := Options{MaxEntries: 100, TTL: time.Minute}
	a := startReplica(t, lossy, opts, InvalidatorOptions{Heartbeat: 10 * time.Millisecond})
	b := startReplica(t, mem, opts, InvalidatorOptions{Heartbeat: 10 * time.Millisecond})
	// B has heard from A at least once, so A's numbering is known to it.
	if !waitFor(time.Second, func() bool { return b.inv.Trusted() }) {
		t.Fatal("B not trusted")
	}
	time.Sleep(50 * time.Millisecond) // a few of A's heartbeats reach B (each is numbered)
	b.cache.Put(hashN(1), "k1", "key:1")
	b.cache.Put(hashN(2), "k2", "key:2")

	lossy.drop.Store(true)
	if err := a.inv.Publish(context.Background(), "key:1"); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if lossy.drop.Load() {
		t.Fatal("the invalidation was not the dropped message")
	}
	if !waitFor(time.Second, func() bool { _, res := b.cache.Get(hashN(1)); return res == Miss }) {
		t.Fatal("B: the entry whose invalidation was lost is still cached 1s later")
	}
	if _, res := b.cache.Get(hashN(2)); res != Miss {
		t.Fatalf("B: got %s for another entry, want miss (the whole cache is flushed: the lost message could have been anything)", res)
	}
}

// Messages from the same sender in order, and messages without numbering (from an older
// replica), flush nothing.
func TestNumberedMessagesInOrderKeepCache(t *testing.T) {
	c := newCache(t, Options{MaxEntries: 10, TTL: time.Minute})
	inv, err := NewInvalidator(c, store.NewMemory(nil), InvalidatorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	trustNow(t, inv)
	c.Put(hashN(1), "v", "key:1")
	for _, m := range []string{`{"at":1,"from":"a","seq":7}`, `{"at":2,"from":"a","seq":8}`, `{"at":3,"from":"b","seq":1}`,
		`{"at":4}`, `{"at":5,"from":"a","seq":8}`, `{"at":6,"from":"a","seq":9}`} {
		inv.apply([]byte(m))
		if _, res := c.Get(hashN(1)); res != Hit {
			t.Fatalf("after %s: got %s, want hit", m, res)
		}
	}
	inv.apply([]byte(`{"at":7,"from":"a","seq":11}`)) // 10 is missing
	if _, res := c.Get(hashN(1)); res != Miss {
		t.Fatalf("after a gap: got %s, want miss", res)
	}
}

// A Local invalidator (the memory store: one process, no lost messages) keeps its cache
// trusted however long nothing is heard, even before Run.
func TestLocalInvalidatorAlwaysTrusted(t *testing.T) {
	clk := newFakeClock()
	c := newCache(t, Options{MaxEntries: 10, TTL: time.Minute, Now: clk.Now})
	inv, err := NewInvalidator(c, store.NewMemory(clk.Now), InvalidatorOptions{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	c.Put(hashN(1), "v", "key:1")
	clk.Advance(59 * time.Second)
	if !inv.Trusted() {
		t.Fatal("a local invalidator's cache: untrusted after a silent minute")
	}
	if _, res := c.Get(hashN(1)); res != Hit {
		t.Fatalf("got %s, want hit", res)
	}
	if err := inv.Publish(context.Background(), "key:1"); err != nil {
		t.Fatal(err)
	}
	if _, res := c.Get(hashN(1)); res != Miss {
		t.Fatalf("after Publish: got %s, want miss", res)
	}
}
