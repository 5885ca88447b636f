package gateway_test

import (
	"context"
	"github.com/authgate/authgate/gateway/admin"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store/redistest"
)

// recoveryBound is how soon full service must be back after Redis returns.
const recoveryBound = 5 * time.Second

// stopRedisKeepingData saves the data set (as a persistent Redis would keep it) and stops
// the server; Restart loads it again from the server's directory.
func stopRedisKeepingData(t *testing.T, rs *redistest.Server) {
	t.Helper()
	if err := rs.Client(t).Save(context.Background()).Err(); err != nil {
		t.Fatalf("SAVE: %v", err)
	}
	rs.Stop(t)
}

// waitStoreDown waits until authgate_store_up is 0 and /readyz gives what SPEC section 9
// asks with the store down: 200 "degraded" while serve_cached serves cached keys, 503
// with fail_closed.
func waitStoreDown(t *testing.T, g *liveGW, serveCached bool) {
	t.Helper()
	waitFor(t, "authgate_store_up 0", func() bool { return metricValue(t, g.reg, "authgate_store_up", nil) == 0 })
	waitFor(t, "/readyz with Redis stopped", func() bool {
		a, err := httpGet(t, g.ops+"/readyz")
		if err != nil {
			return false
		}
		if serveCached {
			return a.status == http.StatusOK && strings.Contains(string(a.body), "degraded")
		}
		return a.status == http.StatusServiceUnavailable
	})
}

// assertUnavailable checks a 503 store_unavailable with a whole-second Retry-After.
func assertUnavailable(t *testing.T, what string, a answer) {
	t.Helper()
	if a.status != http.StatusServiceUnavailable {
		t.Fatalf("%s: status %d, want 503 (a store outage is never 200, 401 or 403): %s", what, a.status, a.body)
	}
	assertRejected(t, a, http.StatusServiceUnavailable, "store_unavailable")
	if ra := a.header.Get("Retry-After"); ra != "1" {
		t.Errorf("%s: Retry-After = %q, want 1", what, ra)
	}
}

// TestAPIKeyOutageServeCached: with Redis stopped, a cached good key keeps working (past
// the cache TTL, from the stale copy), an unknown key gets 503, never a verdict; when Redis
// returns, full service is back within 5 s.
func TestAPIKeyOutageServeCached(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	g := serveLive(t, rs, liveOpts{cacheTTL: "2s"})
	api := g.ups["api"]
	k := g.createKey(g.adminKey, map[string]any{"name": "cached", "scopes": []string{"reports:read"}})
	wantStatus(t, "cache the key", g.report(k.Secret), http.StatusOK)
	seenUnknown := unknownKey(t, "live")
	assertRejected(t, g.report(seenUnknown), http.StatusUnauthorized, "invalid_api_key")

	stopRedisKeepingData(t, rs)
	waitStoreDown(t, g, true)

	// Past the 2 s cache TTL: the heartbeat has stopped, so the cache is not trusted, and
	// the cached key is served from its stale copy.
	fresh := unknownKey(t, "live")
	start := time.Now()
	n := 0
	for time.Since(start) < 3*time.Second { // a span of time to cover, not a wait
		api.reset()
		wantStatus(t, "cached key during the outage", g.report(k.Secret), http.StatusOK)
		if c := api.count(); c != 1 {
			t.Fatalf("upstream saw %d requests for one cached-key request", c)
		}
		api.reset()
		assertUnavailable(t, "unknown key during the outage", g.report(fresh))
		switch a := g.report(seenUnknown); a.status {
		case http.StatusUnauthorized: // refused from the negative cache: it was verified unknown
			assertRejected(t, a, http.StatusUnauthorized, "invalid_api_key")
		default:
			assertUnavailable(t, "recently refused key during the outage", a)
		}
		assertRejected(t, g.report(badChecksum(k.Secret)), http.StatusUnauthorized, "invalid_api_key")
		assertNoRequests(t, api)
		n++
	}
	t.Logf("%d rounds during the outage", n)
	// By now the cache is untrusted (no heartbeat for longer than its TTL): the key is
	// served from its stale copy, not as a cache hit.
	hits := metricValue(t, g.reg, "authgate_credential_cache_total", map[string]string{"result": "hit"})
	wantStatus(t, "stale cached key", g.report(k.Secret), http.StatusOK)
	if h := metricValue(t, g.reg, "authgate_credential_cache_total", map[string]string{"result": "hit"}); h != hits {
		t.Errorf("cache hits went from %v to %v: the cache was still trusted, the stale path not exercised", hits, h)
	}
	assertUnavailable(t, "management call during the outage",
		g.call("POST", keysAPI, g.adminKey, map[string]any{"name": "during", "scopes": []string{"reports:read"}}))

	rs.Restart(t)
	restarted := time.Now()
	var created admin.KeyView
	waitWithin(t, recoveryBound, "full service after Redis returned", func() bool {
		if g.report(k.Secret).status != http.StatusOK {
			return false
		}
		if a := g.report(unknownKey(t, "live")); a.status != http.StatusUnauthorized {
			return false
		}
		if created.Secret == "" {
			a := g.call("POST", keysAPI, g.adminKey, map[string]any{"name": "after", "scopes": []string{"reports:read"}})
			if a.status != http.StatusCreated {
				return false
			}
			created = decodeJSON[admin.KeyView](t, a)
		}
		if g.report(created.Secret).status != http.StatusOK {
			return false
		}
		r, err := httpGet(t, g.ops+"/readyz")
		return err == nil && r.status == http.StatusOK && metricValue(t, g.reg, "authgate_store_up", nil) == 1
	})
	t.Logf("full service %s after Redis returned", time.Since(restarted))
	assertRejected(t, g.report(unknownKey(t, "live")), http.StatusUnauthorized, "invalid_api_key")
	wantStatus(t, "revoke after recovery", g.call("DELETE", keysAPI+k.ID+"/", g.adminKey, nil), http.StatusOK)
	assertRejected(t, g.report(k.Secret), http.StatusUnauthorized, "revoked_api_key")
}

// TestAPIKeyOutageFailClosed: with on_store_error fail_closed, once the store is known to be
// down every key gets 503, cached or not, and nothing reaches the upstream.
func TestAPIKeyOutageFailClosed(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	g := serveLive(t, rs, liveOpts{onStoreError: "fail_closed"})
	api := g.ups["api"]
	k := g.createKey(g.adminKey, map[string]any{"name": "cached", "scopes": []string{"reports:read"}})
	wantStatus(t, "cache the key", g.report(k.Secret), http.StatusOK)

	stopRedisKeepingData(t, rs)
	waitStoreDown(t, g, false)
	api.reset()
	for range 5 {
		assertUnavailable(t, "cached key, fail_closed", g.report(k.Secret))
		assertUnavailable(t, "unknown key, fail_closed", g.report(unknownKey(t, "live")))
	}
	assertRejected(t, g.report(badChecksum(k.Secret)), http.StatusUnauthorized, "invalid_api_key")
	wantStatus(t, "public route needs no store", g.call("GET", "/health", "", nil), http.StatusOK)
	api.reset()
	assertUnavailable(t, "cached key, fail_closed", g.report(k.Secret))
	assertNoRequests(t, api)

	rs.Restart(t)
	waitWithin(t, recoveryBound, "the cached key after Redis returned", func() bool { return g.report(k.Secret).status == http.StatusOK })
}
