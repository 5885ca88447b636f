package gateway_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/store/redistest"
)

// limitHeaders checks the limit headers every answer of a limited route carries, and
// returns X-RateLimit-Remaining.
func limitHeaders(t *testing.T, a answer, limit int, policy string, per string) (remaining int) {
	t.Helper()
	h := a.header
	if got := h.Get("X-RateLimit-Limit"); got != strconv.Itoa(limit) {
		t.Errorf("X-RateLimit-Limit = %q, want %d", got, limit)
	}
	rem, err := strconv.Atoi(h.Get("X-RateLimit-Remaining"))
	if err != nil || rem < 0 {
		t.Errorf("X-RateLimit-Remaining = %q", h.Get("X-RateLimit-Remaining"))
	}
	reset, err := strconv.Atoi(h.Get("X-RateLimit-Reset"))
	if err != nil || reset < 0 {
		t.Errorf("X-RateLimit-Reset = %q", h.Get("X-RateLimit-Reset"))
	}
	if got, want := h.Get("RateLimit-Policy"), `"`+policy+`";q=`+strconv.Itoa(limit)+";w="+per; got != want {
		t.Errorf("RateLimit-Policy = %q, want %q", got, want)
	}
	if got, want := h.Get("RateLimit"), `"`+policy+`";r=`+strconv.Itoa(rem)+";t="+strconv.Itoa(reset); got != want {
		t.Errorf("RateLimit = %q, want %q", got, want)
	}
	return rem
}

// TestRateLimits: API keys and JWTs have their own defaults; a route's limit beats the
// default and a key's own limit beats both; every answer has the headers; a 429 has an
// honest Retry-After and never reaches the upstream.
func TestRateLimits(t *testing.T) {
	rs := redistest.Start(t)
	o := issuerOpts(t.TempDir(), map[string]string{"RL_KEY": "3", "RL_JWT": "5", "RL_ROUTE": "4", "RL_PER": "2s"})
	g := serveLive(t, rs, o)
	waitForUser(t, rs, adminEmail)
	api := g.ups["api"]
	both := []string{"reports:read", "reports:generate"}

	// API key default: 3 per 2 s.
	k1 := g.createKey(g.adminKey, map[string]any{"name": "k1", "scopes": both}).Secret
	for i := range 3 {
		a := g.report(k1)
		wantStatus(t, "key request", a, http.StatusOK)
		if rem := limitHeaders(t, a, 3, "api_key", "2"); rem != 2-i {
			t.Errorf("request %d: remaining %d, want %d", i+1, rem, 2-i)
		}
	}
	n := api.count()
	refused := g.report(k1)
	assertRejected(t, refused, http.StatusTooManyRequests, "rate_limited")
	if !strings.Contains(string(refused.body), "rate limit of 3 requests per 2s reached") {
		t.Errorf("429 body %s: want it to say the limit as configured (3 requests per 2s)", refused.body)
	}
	limitHeaders(t, refused, 3, "api_key", "2")
	ra, err := strconv.Atoi(refused.header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 2 {
		t.Fatalf("Retry-After = %q, want 1 (2s / 3, rounded up)", refused.header.Get("Retry-After"))
	}
	// Refusals do not use up the allowance: after Retry-After, one request passes.
	assertRejected(t, g.report(k1), http.StatusTooManyRequests, "rate_limited")
	time.Sleep(time.Duration(ra) * time.Second)
	wantStatus(t, "after Retry-After", g.report(k1), http.StatusOK)
	if got := api.count() - n; got != 1 {
		t.Errorf("upstream saw %d requests around the refusals, want only the 1 allowed", got)
	}

	// JWT default: 5 per 2 s, counted per subject.
	tok := g.loginAs(adminEmail, adminPass, "").Access
	for range 5 {
		a := g.call("GET", "/api/v1/reports/", "", nil, bearer(tok))
		wantStatus(t, "jwt request", a, http.StatusOK)
		limitHeaders(t, a, 5, "jwt", "2")
	}
	assertRejected(t, g.call("GET", "/api/v1/reports/", "", nil, bearer(tok)), http.StatusTooManyRequests, "rate_limited")

	// A route's limit (4) beats the default (3), in a bucket of its own.
	k2 := g.createKey(g.adminKey, map[string]any{"name": "k2", "scopes": both}).Secret
	for range 4 {
		a := g.call("POST", "/api/v1/reports/generate/", k2, nil)
		wantStatus(t, "route-limited request", a, http.StatusOK)
		limitHeaders(t, a, 4, "reports-generate", "2")
	}
	assertRejected(t, g.call("POST", "/api/v1/reports/generate/", k2, nil), http.StatusTooManyRequests, "rate_limited")
	wantStatus(t, "the default bucket is another", g.report(k2), http.StatusOK)

	// A key's own limit (2) beats the route's, on every route, in one bucket.
	k3 := g.createKey(g.adminKey, map[string]any{"name": "k3", "scopes": both, "rate_limit": map[string]any{"requests": 2, "per": "2s"}}).Secret
	a := g.call("POST", "/api/v1/reports/generate/", k3, nil)
	wantStatus(t, "own limit", a, http.StatusOK)
	limitHeaders(t, a, 2, "credential", "2")
	wantStatus(t, "own limit, other route", g.report(k3), http.StatusOK)
	assertRejected(t, g.call("POST", "/api/v1/reports/generate/", k3, nil), http.StatusTooManyRequests, "rate_limited")
	assertRejected(t, g.report(k3), http.StatusTooManyRequests, "rate_limited")
}

// TestRateLimitAcrossReplicas: with mode redis, three gateways on one Redis allow one
// limit in total, within 2 %.
func TestRateLimitAcrossReplicas(t *testing.T) {
	rs := redistest.Start(t)
	admin := newAdminKey(t)
	o := liveOpts{adminKey: admin, env: map[string]string{"RL_MODE": "redis", "RL_KEY": "200", "RL_PER": "1h"}}
	gws := []*liveGW{serveLive(t, rs, o), serveLive(t, rs, o), serveLive(t, rs, o)}
	key := gws[0].createKey(admin, map[string]any{"name": "shared", "scopes": []string{"reports:read"}}).Secret
	var allowed, refused, other atomic.Int64
	var wg sync.WaitGroup
	for _, g := range gws {
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 40 {
					switch g.report(key).status {
					case http.StatusOK:
						allowed.Add(1)
					case http.StatusTooManyRequests:
						refused.Add(1)
					default:
						other.Add(1)
					}
				}
			}()
		}
	}
	wg.Wait()
	t.Logf("3 replicas, limit 200: %d allowed, %d refused, %d other", allowed.Load(), refused.Load(), other.Load())
	if a := allowed.Load(); a < 200 || a > 204 || other.Load() != 0 {
		t.Errorf("allowed %d (other %d), want 200..204 and no other status", a, other.Load())
	}
}

// TestRateLimitRedisOutage: with mode redis and Redis gone, limits fall back to local ones
// without a 5xx, authgate_rate_limit_fallback says so, and shared limits come back with Redis.
func TestRateLimitRedisOutage(t *testing.T) {
	rs := redistest.Start(t)
	admin := newAdminKey(t)
	o := liveOpts{adminKey: admin, env: map[string]string{"RL_MODE": "redis", "RL_KEY": "5", "RL_PER": "1h"}}
	a, b := serveLive(t, rs, o), serveLive(t, rs, o)
	kv := a.createKey(admin, map[string]any{"name": "k", "scopes": []string{"reports:read"}})
	key := kv.Secret
	// The two replicas share the limits: each hears the other, and A's limiter has read
	// the replica count (it does at most once a second).
	for _, g := range []*liveGW{a, b} {
		waitFor(t, "the replicas to hear each other", func() bool {
			return metricValue(t, g.reg, "authgate_invalidation_peers", map[string]string{"cache": "keys"}) == 1
		})
	}
	time.Sleep(1100 * time.Millisecond)
	for range 2 {
		wantStatus(t, "before the outage", a.report(key), http.StatusOK) // also caches the key on A
	}
	rs.Stop(t)
	// Local limits: 3 of the 5 were left when Redis went; A goes on from its share of
	// them (one of two replicas: 1), not from a fresh 5.
	var codes []int
	for range 4 {
		codes = append(codes, a.report(key).status)
	}
	want := []int{200, 429, 429, 429}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("during the outage: statuses %v, want %v", codes, want)
		}
	}
	if v := metricValue(t, a.reg, "authgate_rate_limit_fallback", nil); v != 1 {
		t.Errorf("authgate_rate_limit_fallback = %v during the outage, want 1", v)
	}
	if !strings.Contains(a.logs.String(), "rate limit redis unavailable, using local limits") {
		t.Errorf("no log line about falling back to local limits")
	}
	rs.Restart(t)
	// The test's redis-server keeps nothing on disk: put the key back, as a persistent
	// Redis would have kept it.
	if err := keyStore(t, rs).Create(context.Background(), kv.Key, apikey.NewHasher("").Hash(key)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs of A:\n%s", a.logs.String())
		}
	})
	waitFor(t, "shared limits again", func() bool {
		a.report(key)
		return metricValue(t, a.reg, "authgate_rate_limit_fallback", nil) == 0
	})
	// Redis lost its data with the restart: the shared bucket starts anew. What A uses, B
	// no longer has.
	used := 0
	for a.report(key).status == http.StatusOK {
		used++
		if used > 10 {
			t.Fatal("no limit on A after Redis came back")
		}
	}
	assertRejected(t, b.report(key), http.StatusTooManyRequests, "rate_limited")
}
