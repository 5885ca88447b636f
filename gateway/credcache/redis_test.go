package credcache

import (
	"context"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/redistest"
)

// newRedisStore returns a store.Redis on addr with short timeouts, so that
// an outage shows quickly, closed when the test ends.
func newRedisStore(t testing.TB, addr string) *store.Redis {
	t.Helper()
	st, err := store.NewRedis(store.RedisOptions{
		Addrs:       []string{addr},
		KeyPrefix:   "authgate-test:",
		DialTimeout: 250 * time.Millisecond,
		ReadTimeout: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// twoRedisReplicas starts two replicas, each with its own Redis client, on
// one real redis-server.
func twoRedisReplicas(t testing.TB, srv *redistest.Server, opts Options, iopts InvalidatorOptions) (a, b *replica) {
	t.Helper()
	a = startReplica(t, newRedisStore(t, srv.Addr()), opts, iopts)
	b = startReplica(t, newRedisStore(t, srv.Addr()), opts, iopts)
	return a, b
}

func TestRedisRevocationReachesOtherReplica(t *testing.T) {
	srv := redistest.Start(t)
	a, b := twoRedisReplicas(t, srv, Options{MaxEntries: 1000, TTL: time.Minute}, InvalidatorOptions{})
	for _, r := range []*replica{a, b} {
		r.cache.Put(hashN(1), "k1", "key:1", "user:u")
		r.cache.Put(hashN(2), "k2", "key:2", "user:u")
		if _, res := r.cache.Get(hashN(1)); res != Hit {
			t.Fatalf("got %s before revocation, want hit", res)
		}
	}

	if err := a.inv.Publish(context.Background(), "key:1"); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if _, res := a.cache.Get(hashN(1)); res != Miss {
		t.Fatalf("replica A: got %s right after Publish, want miss", res)
	}
	if !waitFor(time.Second, func() bool { _, res := b.cache.Get(hashN(1)); return res == Miss }) {
		t.Fatal("replica B: revoked entry still cached 1s after Publish")
	}
	if _, res := b.cache.Get(hashN(2)); res != Hit {
		t.Fatalf("replica B: got %s for an entry with another key tag, want hit", res)
	}
	if !waitFor(time.Second, func() bool {
		return histogramCount(t, b.reg, "authgate_invalidation_lag_seconds") >= 1
	}) {
		t.Fatal("replica B: authgate_invalidation_lag_seconds has no observation")
	}
}

func TestRedisReconnectFlushes(t *testing.T) {
	srv := redistest.Start(t)
	// A long TTL: what empties the cache here is the reconnect, not trust.
	a, b := twoRedisReplicas(t, srv, Options{MaxEntries: 1000, TTL: time.Minute}, InvalidatorOptions{Heartbeat: 50 * time.Millisecond})
	for _, r := range []*replica{a, b} {
		r.cache.Put(hashN(1), "k1", "key:1")
	}

	srv.Stop(t)
	// Messages published now are lost; the reconnect must make up for it.
	_ = a.inv.Publish(context.Background(), "key:1")
	srv.Restart(t)

	if !waitFor(10*time.Second, b.inv.Trusted) {
		t.Fatal("replica B: still untrusted 10s after reconnecting")
	}
	// Trusted again, yet the entry whose invalidation was lost is no hit: it is verified
	// again first (and stays a fallback while the store does not answer).
	if _, res := b.cache.Get(hashN(1)); res == Hit {
		t.Fatal("replica B: got hit after reconnecting, want the entry verified again (flushed on reconnect)")
	}

	// Invalidation works again after the reconnect. A may not have
	// resubscribed yet, so publish until B has seen it.
	b.cache.Put(hashN(2), "k2", "key:2")
	if !waitFor(10*time.Second, func() bool {
		if err := a.inv.Publish(context.Background(), "key:2"); err != nil {
			return false
		}
		return waitFor(200*time.Millisecond, func() bool { _, res := b.cache.Get(hashN(2)); return res == Miss })
	}) {
		t.Fatal("replica B: invalidation not applied within 10s after the reconnect")
	}
}

func TestRedisOutageLongerThanTTLDistrustsCache(t *testing.T) {
	srv := redistest.Start(t)
	const ttl = time.Second
	opts := Options{MaxEntries: 1000, TTL: ttl, StaleTTL: time.Minute}
	a, b := twoRedisReplicas(t, srv, opts, InvalidatorOptions{Heartbeat: 100 * time.Millisecond})

	// Heartbeats keep both trusted for well over one TTL while Redis is up.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for start := time.Now(); time.Since(start) < 2*ttl; <-tick.C {
		for _, r := range []*replica{a, b} {
			if !r.inv.Trusted() {
				t.Fatalf("got untrusted %s after start with Redis up", time.Since(start))
			}
		}
	}

	srv.Stop(t)
	for _, r := range []*replica{a, b} {
		if !waitFor(5*time.Second, func() bool { return !r.inv.Trusted() }) {
			t.Fatal("still trusted 5s after Redis stopped")
		}
	}

	// A freshly verified entry is no Hit while untrusted: Stale tells the
	// caller to re-read the store and keeps the value for serve_cached.
	hits := testutil.ToFloat64(b.m.CredentialCache.WithLabelValues("hit"))
	misses := testutil.ToFloat64(b.m.CredentialCache.WithLabelValues("miss"))
	b.cache.Put(hashN(1), "k1", "key:1")
	if v, res := b.cache.Get(hashN(1)); res != Stale || v != "k1" {
		t.Fatalf("got (%q, %s) while untrusted, want (k1, stale)", v, res)
	}
	if got := testutil.ToFloat64(b.m.CredentialCache.WithLabelValues("hit")); got != hits {
		t.Errorf("hit counter: got %v, want %v", got, hits)
	}
	if got := testutil.ToFloat64(b.m.CredentialCache.WithLabelValues("miss")); got != misses+1 {
		t.Errorf("miss counter: got %v, want %v", got, misses+1)
	}

	srv.Restart(t)
	for _, r := range []*replica{a, b} {
		if !waitFor(10*time.Second, r.inv.Trusted) {
			t.Fatal("not trusted again within 10s of Redis returning")
		}
	}
	if _, res := b.cache.Get(hashN(1)); res != Stale {
		t.Fatalf("got %s after reconnecting, want stale (flushed on reconnect)", res)
	}
	b.cache.Put(hashN(1), "k1", "key:1")
	if _, res := b.cache.Get(hashN(1)); res != Hit {
		t.Fatalf("got %s after recovery, want hit", res)
	}
}

func TestRedisInvalidationVisibility(t *testing.T) {
	srv := redistest.Start(t)
	a, b := twoRedisReplicas(t, srv, Options{MaxEntries: 1000, TTL: time.Minute}, InvalidatorOptions{})
	lat := measureVisibility(t, a, b, 200)
	p50, p99 := percentile(lat, 50), percentile(lat, 99)
	t.Logf("publish->visible on other replica over %d invalidations: p50 %s, p99 %s", len(lat), p50, p99)
	// SPEC section 3: revocation effective on every replica within 1 second.
	// (The 100ms target is measured by the benchmark, not asserted.)
	if p99 > time.Second {
		t.Fatalf("p99 %s, want <= 1s", p99)
	}
}

func BenchmarkInvalidationVisibility(b *testing.B) {
	srv := redistest.Start(b)
	ra, rb := twoRedisReplicas(b, srv, Options{MaxEntries: 1000, TTL: time.Minute}, InvalidatorOptions{})
	var lat []time.Duration
	for b.Loop() {
		lat = append(lat, measureVisibility(b, ra, rb, 200)...)
	}
	b.ReportMetric(float64(percentile(lat, 50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(percentile(lat, 99).Microseconds()), "p99-µs")
}

// measureVisibility publishes n invalidations through replica a and returns,
// for each, the time from the start of Publish until replica b no longer
// has a Hit for the entry. Each wait is bounded by 1s (the SPEC limit); a
// timeout fails the test.
func measureVisibility(tb testing.TB, a, b *replica, n int) []time.Duration {
	tb.Helper()
	ctx := context.Background()
	lat := make([]time.Duration, 0, n)
	for i := range n {
		h := hashN(i)
		tag := "key:vis-" + strconv.Itoa(i)
		b.cache.Put(h, "v", tag)
		start := time.Now()
		if err := a.inv.Publish(ctx, tag); err != nil {
			tb.Fatalf("Publish: %v", err)
		}
		deadline := start.Add(time.Second)
		for {
			if _, res := b.cache.Get(h); res != Hit {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("invalidation %d not visible on the other replica within 1s", i)
			}
			runtime.Gosched() // spin: a timer would round the latency up
		}
		lat = append(lat, time.Since(start))
	}
	return lat
}

// percentile returns the p-th percentile of d (nearest rank).
func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p+99)/100 - 1
	return s[max(0, min(i, len(s)-1))]
}

// A subscription that goes silent without an error (a partition that drops packets, no
// reset) is distrusted within the trust window, dropped and made again after two; while
// the partition lasts each new subscription's confirmation is bounded and retried; once it
// heals the cache is flushed (an invalidation was lost in it) and trusted again, and
// invalidations arrive again.
func TestRedisSilentSubscriptionRecovers(t *testing.T) {
	srv := redistest.Start(t)
	px := redistest.NewProxy(t, srv.Addr())
	opts := Options{MaxEntries: 1000, TTL: time.Minute, StaleTTL: time.Minute}
	iopts := InvalidatorOptions{Heartbeat: 50 * time.Millisecond} // trust window 200ms
	a := startReplica(t, newRedisStore(t, srv.Addr()), opts, iopts)
	b := startReplica(t, newRedisStore(t, px.Addr()), opts, iopts)
	b.cache.Put(hashN(1), "k1", "key:1")

	px.Blackhole(true)
	if err := a.inv.Publish(context.Background(), "key:1"); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if !waitFor(5*time.Second, func() bool { return !b.inv.Trusted() }) {
		t.Fatal("B: still trusted 5s into a silent partition")
	}
	if _, res := b.cache.Get(hashN(1)); res == Hit {
		t.Fatal("B: the revoked entry is a Hit during the partition")
	}
	time.Sleep(1500 * time.Millisecond) // several resubscriptions time out meanwhile
	px.Blackhole(false)

	if !waitFor(5*time.Second, b.inv.Trusted) {
		t.Fatal("B: not trusted again 5s after the partition healed")
	}
	if _, res := b.cache.Get(hashN(1)); res == Hit {
		t.Fatal("B: the entry whose invalidation was lost in the partition is a Hit again")
	}
	b.cache.Put(hashN(2), "k2", "key:2")
	if !waitFor(5*time.Second, func() bool {
		if err := a.inv.Publish(context.Background(), "key:2"); err != nil {
			return false
		}
		return waitFor(200*time.Millisecond, func() bool { _, res := b.cache.Get(hashN(2)); return res == Miss })
	}) {
		t.Fatal("B: invalidations not applied within 5s after the partition healed")
	}
}
