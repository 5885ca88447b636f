package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store/redistest"
)

// keyLoop sends GET /api/v1/reports/ with key from a goroutine until stop is called, and
// counts the answers by status. A request that fails at the network level counts as
// status 0.
type keyLoop struct {
	mu     sync.Mutex
	counts map[int]int
	total  atomic.Int64
	stop   func()
}

func startKeyLoop(t *testing.T, g *liveGW, key string) *keyLoop {
	t.Helper()
	l := &keyLoop{counts: map[int]int{}}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			default:
			}
			status := 0
			req, err := http.NewRequest("GET", g.base+"/api/v1/reports/", nil)
			if err == nil {
				req.Header.Set("X-API-Key", key)
				if resp, err := g.client.Do(req); err == nil {
					status = resp.StatusCode
					_ = resp.Body.Close()
				}
			}
			l.mu.Lock()
			l.counts[status]++
			l.mu.Unlock()
			l.total.Add(1)
		}
	}()
	var once sync.Once
	l.stop = func() { once.Do(func() { close(done); <-finished }) }
	t.Cleanup(l.stop)
	return l
}

// failed is the number of answers that were not 200.
func (l *keyLoop) failed() (int, map[int]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for s, c := range l.counts {
		if s != http.StatusOK {
			n += c
		}
	}
	return n, l.counts
}

// TestFault03_NoStoreUnavailableAfterRestart: with serve_cached, a good key used in a loop
// sees no 5xx while Redis is killed and restarted with its data. Before the fix the
// re-established subscription flushed the cache while the store was still marked down
// until the next health ping, and every miss in that window was answered 503 without
// trying the store. Now a flush keeps each credential as a fallback and the subscription
// triggers a probe at once. The periodic health ping is made rare here so that the old
// window would be long; the outage is made known at once through /readyz, which pings.
func TestFault03_NoStoreUnavailableAfterRestart(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	g := serveLive(t, rs, liveOpts{probeInterval: time.Hour})
	api := g.ups["api"]
	k := g.createKey(g.adminKey, map[string]any{"name": "restart", "scopes": []string{"reports:read"}})
	wantStatus(t, "cache the key", g.report(k.Secret), http.StatusOK)

	loop := startKeyLoop(t, g, k.Secret)
	waitFor(t, "the loop running", func() bool { return loop.total.Load() >= 10 })

	stopRedisKeepingData(t, rs)
	// /readyz pings: the outage is known without waiting for the (rare) health ping.
	waitFor(t, "/readyz degraded with Redis stopped", func() bool {
		a, err := httpGet(t, g.ops+"/readyz")
		return err == nil && a.status == http.StatusOK && strings.Contains(string(a.body), "degraded")
	})
	lost := strings.Count(g.logs.String(), "messages may have been lost")

	rs.Restart(t)
	waitFor(t, "the subscriptions re-established (cache flushed)", func() bool {
		return strings.Count(g.logs.String(), "messages may have been lost") >= lost+2
	})
	// The cache is empty now: the loop's next requests are misses that need the store.
	after := loop.total.Load()
	waitFor(t, "requests after the flush", func() bool { return loop.total.Load() >= after+50 })
	loop.stop()
	if n, counts := loop.failed(); n != 0 {
		t.Fatalf("%d of %d requests with a good key failed around the restart (by status: %v)", n, loop.total.Load(), counts)
	}
	api.reset()
	wantStatus(t, "the key after the restart", g.report(k.Secret), http.StatusOK)
	if c := api.count(); c != 1 {
		t.Fatalf("upstream saw %d requests for one request", c)
	}
	if up := metricValue(t, g.reg, "authgate_store_up", nil); up != 1 {
		t.Errorf("authgate_store_up = %v after the subscription came back, want 1", up)
	}
}

// TestFault04_PartitionCostsNoStall: with Redis behind a partition (packets dropped, no
// RST) and rate_limits.mode: redis, requests with a good cached key still complete with
// 200 and an unknown key gets 503 store_unavailable, each within a generous 2 s (before
// the fix each waited about 10 s for go-redis's timeouts and retries); the outage becomes
// known (authgate_store_up 0, the rate-limit fallback on), and service returns when the
// partition heals.
func TestFault04_PartitionCostsNoStall(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	px := redistest.NewProxy(t, rs.Addr())
	g := serveLive(t, rs, liveOpts{redisAddr: px.Addr(), env: map[string]string{"RL_MODE": "redis", "REDIS_TIMEOUT": "200ms"}})
	api := g.ups["api"]
	k := g.createKey(g.adminKey, map[string]any{"name": "partition", "scopes": []string{"reports:read"}})
	wantStatus(t, "cache the key", g.report(k.Secret), http.StatusOK)

	// A request that does not complete within the bound is a failure, not a slow pass.
	const bound = 2 * time.Second
	bounded := &http.Client{Transport: &http.Transport{}, Timeout: bound}
	t.Cleanup(bounded.CloseIdleConnections)
	get := func(key string) (answer, error) {
		req, err := http.NewRequest("GET", g.base+"/api/v1/reports/", nil)
		if err != nil {
			return answer{}, err
		}
		req.Header.Set("X-API-Key", key)
		resp, err := bounded.Do(req)
		if err != nil {
			return answer{}, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return answer{status: resp.StatusCode, header: resp.Header, body: b}, err
	}

	px.Blackhole(true)
	unknown := unknownKey(t, "live")
	for i := range 8 {
		api.reset()
		a, err := get(k.Secret)
		if err != nil {
			t.Fatalf("request %d with a good cached key during the partition did not complete within %s: %v", i, bound, err)
		}
		wantStatus(t, "good cached key during the partition", a, http.StatusOK)
		if c := api.count(); c != 1 {
			t.Fatalf("upstream saw %d requests for one request", c)
		}
		api.reset()
		a, err = get(unknown)
		if err != nil {
			t.Fatalf("request %d with an unknown key during the partition did not complete within %s: %v", i, bound, err)
		}
		assertUnavailable(t, "unknown key during the partition", a)
		assertNoRequests(t, api)
	}
	waitFor(t, "authgate_store_up 0 during the partition", func() bool {
		return metricValue(t, g.reg, "authgate_store_up", nil) == 0
	})
	waitFor(t, "the rate-limit fallback during the partition", func() bool {
		return metricValue(t, g.reg, "authgate_rate_limit_fallback", nil) == 1
	})

	px.Blackhole(false)
	waitWithin(t, recoveryBound, "full service after the partition healed", func() bool {
		return metricValue(t, g.reg, "authgate_store_up", nil) == 1 &&
			g.report(unknownKey(t, "live")).status == http.StatusUnauthorized &&
			g.report(k.Secret).status == http.StatusOK
	})
}

// TestRestartEmpty_BootstrapBackAtOnce: Redis restarted without its data. The bootstrap
// admin key and user are put back as soon as the invalidation subscription comes back,
// not at the next periodic check (30 s here, the default); until then the key is refused
// 401 (the store answers that it does not know it), never 5xx, and so is every other key.
func TestRestartEmpty_BootstrapBackAtOnce(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	o := issuerOpts(t.TempDir(), nil)
	g := serveLive(t, rs, o)
	api := g.ups["api"]
	k := g.createKey(g.adminKey, map[string]any{"name": "lost", "scopes": []string{"reports:read"}})
	wantStatus(t, "the key before the restart", g.report(k.Secret), http.StatusOK)
	flushed := strings.Count(g.logs.String(), "messages may have been lost")

	rs.Stop(t) // no SAVE: the restart comes back empty
	rs.Restart(t)
	waitFor(t, "the subscriptions re-established", func() bool {
		return strings.Count(g.logs.String(), "messages may have been lost") >= flushed+2
	})
	// A subscription coming back only asks for a probe; the probe marks the store up (see
	// Server.subscribed). Until it has answered the store is known down and 503 is right.
	waitFor(t, "the probe to find the store back", func() bool {
		return metricValue(t, g.reg, "authgate_store_up", nil) == 1
	})
	waitWithin(t, 5*time.Second, "the bootstrap admin key back after an empty restart", func() bool {
		a := g.call("GET", keysAPI, g.adminKey, nil)
		if a.status >= 500 {
			t.Fatalf("bootstrap admin key after the restart: %d %s, want 401 until restored, then 200; log:\n%s", a.status, a.body, g.logs.String())
		}
		return a.status == http.StatusOK
	})
	waitForUser(t, rs, adminEmail) // polling logins instead would trip the login limits
	g.loginAs(adminEmail, adminPass, "")
	api.reset()
	assertRejected(t, g.report(k.Secret), http.StatusUnauthorized, "invalid_api_key")
	assertNoRequests(t, api)
	if up := metricValue(t, g.reg, "authgate_credential_cache_trusted", map[string]string{"cache": "keys"}); up != 1 {
		t.Errorf("authgate_credential_cache_trusted{cache=keys} = %v after the restart, want 1", up)
	}
}

// TestFlushKeepsFallback (found by the fault suite: cut_all and latency_blackhole with
// serve_cached): a resubscription flushes the cache, and when the store fails again before
// a good key is re-read, the key is still served from the flushed cache with serve_cached
// (200, not 503), and refused 503 with fail_closed. Before the fix the flush deleted the
// entries, so every good key got 503 until the store answered again.
func TestFlushKeepsFallback(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"serve_cached", "fail_closed"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			rs := redistest.Start(t)
			g := serveLive(t, rs, liveOpts{onStoreError: mode, probeInterval: time.Hour})
			api := g.ups["api"]
			k := g.createKey(g.adminKey, map[string]any{"name": "fallback", "scopes": []string{"reports:read"}})
			wantStatus(t, "cache the key", g.report(k.Secret), http.StatusOK)

			flushed := strings.Count(g.logs.String(), "messages may have been lost")
			stopRedisKeepingData(t, rs)
			rs.Restart(t)
			waitFor(t, "the subscriptions back (caches flushed)", func() bool {
				return strings.Count(g.logs.String(), "messages may have been lost") >= flushed+2
			})
			stopRedisKeepingData(t, rs) // down again before the key is read again
			api.reset()
			a := g.report(k.Secret)
			if mode == "fail_closed" {
				assertRejected(t, a, http.StatusServiceUnavailable, "store_unavailable")
				assertNoRequests(t, api)
				return
			}
			wantStatus(t, "a good key after a flush, with the store down", a, http.StatusOK)
			if c := api.count(); c != 1 {
				t.Fatalf("upstream saw %d requests, want 1", c)
			}
		})
	}
}

// TestFallbackFollowsStore (found by the fault suite): with rate_limits.mode: redis the
// fallback to local limits, and authgate_rate_limit_fallback, follow the store's known
// state, also when no request reaches the limiter (fail_closed refuses every credential
// before it): 1 once the outage is known, 0 once the store answers again.
func TestFallbackFollowsStore(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	g := serveLive(t, rs, liveOpts{onStoreError: "fail_closed", env: map[string]string{"RL_MODE": "redis"}})
	fallback := func() float64 { return metricValue(t, g.reg, "authgate_rate_limit_fallback", nil) }
	if v := fallback(); v != 0 {
		t.Fatalf("authgate_rate_limit_fallback = %v with Redis up, want 0", v)
	}
	stopRedisKeepingData(t, rs)
	waitFor(t, "the fallback on with Redis down and no traffic", func() bool { return fallback() == 1 })
	if up := metricValue(t, g.reg, "authgate_store_up", nil); up != 0 {
		t.Errorf("authgate_store_up = %v with the fallback on, want 0", up)
	}
	rs.Restart(t)
	waitFor(t, "the fallback off once Redis answers", func() bool { return fallback() == 0 })
}
