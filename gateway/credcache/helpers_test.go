package credcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/gateway/metrics"
	"github.com/authgate/authgate/gateway/store"

	"github.com/authgate/authgate/gateway/clocktest"
)

func newFakeClock() *clocktest.Clock {
	return clocktest.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
}

// hashOf returns the SHA-256 of s, standing in for a credential hash.
func hashOf(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// hashN returns a distinct hash for each n.
func hashN(n int) [32]byte { return hashOf("key-" + strconv.Itoa(n)) }

// newCache returns a cache or fails the test.
func newCache(t testing.TB, opts Options) *Cache[string] {
	t.Helper()
	c, err := New[string](opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// replica is one gateway replica's cache and invalidator, with its own
// metrics registry.
type replica struct {
	cache *Cache[string]
	inv   *Invalidator
	reg   *prometheus.Registry
	m     *metrics.Metrics
	// stop ends Run and waits for it (at most once; the cleanup calls it too).
	stop func()
}

// startReplica builds a replica on st, runs its Invalidator until the test
// ends, and waits until it is subscribed. The cleanup checks that Run
// returns promptly once its context is cancelled.
func startReplica(t testing.TB, st store.Store, opts Options, iopts InvalidatorOptions) *replica {
	t.Helper()
	return startReplicaWrapped(t, st, opts, iopts, nil)
}

// startReplicaWrapped is startReplica with the Invalidator acting on wrap(cache) when wrap
// is not nil.
func startReplicaWrapped(t testing.TB, st store.Store, opts Options, iopts InvalidatorOptions, wrap func(target) target) *replica {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	opts.Metrics = m
	iopts.Metrics = m
	c := newCache(t, opts)
	inv, err := NewInvalidator(c, st, iopts)
	if err != nil {
		t.Fatalf("NewInvalidator: %v", err)
	}
	if wrap != nil {
		inv.c = wrap(inv.c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- inv.Run(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return within 5s of cancel")
		}
	})
	t.Cleanup(stop)
	select {
	case <-inv.Ready():
	case err := <-done:
		t.Fatalf("Run returned before subscribing: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatalf("Invalidator not subscribed within 10s")
	}
	// Trusted once its first message is heard back (see Invalidator.trust).
	if !iopts.mute && !waitFor(10*time.Second, c.Trusted) {
		t.Fatalf("cache not trusted within 10s of subscribing")
	}
	return &replica{cache: c, inv: inv, reg: reg, m: m, stop: stop}
}

// trustNow makes the cache of inv, whose Run is not running, trusted as Run would: the
// replica hears the channel again (a subscription) and then its own message saying it
// confirms invalidations, heard back.
func trustNow(t testing.TB, inv *Invalidator) {
	t.Helper()
	inv.regate()
	hearOwn(t, inv)
}

// hearOwn sends a heartbeat from inv and hands it to inv as if heard back.
func hearOwn(t testing.TB, inv *Invalidator) {
	t.Helper()
	if _, err := inv.send(context.Background(), message{}, false); err != nil {
		t.Fatalf("send: %v", err)
	}
	raw, err := json.Marshal(message{From: inv.id, Seq: inv.seq.Load(), Acks: inv.hears() || inv.c.keepsStale()})
	if err != nil {
		t.Fatal(err)
	}
	inv.apply(raw)
}

// waitFor polls cond every millisecond until it holds or within passes,
// and reports whether it held.
func waitFor(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
}

// histogramCount returns the sample count of the unlabelled histogram name
// in reg, or 0 if it has none.
func histogramCount(t testing.TB, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	return 0
}

// cutStore is a store whose subscriptions can be cut, as a replica's subscription is when
// the Redis node holding it fails: cut closes them and refuses new ones until heal.
// With mute, its publishes fail too (the replica cannot reach the channel at all).
// failTags makes that many publishes of invalidations fail, as when the store is briefly
// unreachable.
type cutStore struct {
	store.Store
	mu       sync.Mutex
	cut      bool
	mute     bool
	failTags int
	refused  int // subscriptions refused while cut
	subs     []*store.Subscription
}

func (s *cutStore) Subscribe(ctx context.Context, channel string) (*store.Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cut {
		s.refused++
		return nil, errors.New("cutStore: cut")
	}
	sub, err := s.Store.Subscribe(ctx, channel)
	if err == nil {
		s.subs = append(s.subs, sub)
	}
	return sub, err
}

func (s *cutStore) Publish(ctx context.Context, channel string, msg []byte) error {
	s.mu.Lock()
	fail := s.mute
	if !fail && s.failTags > 0 && bytes.Contains(msg, []byte(`"tag":`)) {
		s.failTags--
		fail = true
	}
	s.mu.Unlock()
	if fail {
		return errors.New("cutStore: publish refused")
	}
	return s.Store.Publish(ctx, channel, msg)
}

// sever cuts the subscriptions; with mute, publishes fail too. It returns once the
// replica has tried to subscribe again, so it has handled every message delivered
// before the cut.
func (s *cutStore) sever(t testing.TB, mute bool) {
	t.Helper()
	s.mu.Lock()
	s.cut, s.mute = true, mute
	for _, sub := range s.subs {
		_ = sub.Close()
	}
	s.subs = nil
	s.refused = 0
	s.mu.Unlock()
	if !waitFor(5*time.Second, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.refused > 0
	}) {
		t.Fatal("cutStore: the replica did not try to subscribe again within 5s of the cut")
	}
}

// failsLeft is how many invalidation publishes are still to be refused.
func (s *cutStore) failsLeft() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failTags
}

// heal lets subscriptions and publishes through again.
func (s *cutStore) heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cut, s.mute = false, false
}
