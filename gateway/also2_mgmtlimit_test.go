package gateway_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/store/redistest"
)

// activeKeys is how many keys the store holds.
func activeKeys(t *testing.T, st *apikey.Store) int {
	t.Helper()
	p, err := st.List(context.Background(), apikey.Query{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return len(p.Keys)
}

// wantRateLimited asserts a 429 rate_limited answer with a positive Retry-After.
func wantRateLimited(t *testing.T, what string, a answer) {
	t.Helper()
	assertRejected(t, a, http.StatusTooManyRequests, "rate_limited")
	if s, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || s <= 0 {
		t.Errorf("%s: Retry-After = %q, want a positive number of seconds", what, a.header.Get("Retry-After"))
	}
}

// Issue 10, Also item 2: the management API is limited per credential (after
// authentication), in Redis mode; one credential's limit does not touch another's.
func TestFaultAlso2_ManagementPerCredentialLimit(t *testing.T) {
	rs := redistest.Start(t)
	// per 1h: no refill worth a request during the test.
	g := serveLive(t, rs, liveOpts{env: map[string]string{"RL_MODE": "redis", "RL_MGMT": "4", "RL_MGMT_PER": "1h"}})
	st := keyStore(t, rs)
	// The admin key has used one call (serveLive's check); this is its second.
	other := g.createKey(g.adminKey, map[string]any{"name": "other", "scopes": []string{"keys:manage"}, "expires_in_days": 90})
	wantStatus(t, "admin list 3", g.call("GET", keysAPI, g.adminKey, nil), http.StatusOK)
	wantStatus(t, "admin list 4", g.call("GET", keysAPI, g.adminKey, nil), http.StatusOK)
	before := activeKeys(t, st)
	rejected := metricValue(t, g.reg, "authgate_rejected_requests_total", map[string]string{"reason": "rate_limited", "route": "authgate", "auth": "api_key"})

	// Past the limit: refused, nothing created, listing and self-refresh refused too.
	wantRateLimited(t, "create past the limit", g.call("POST", keysAPI, g.adminKey,
		map[string]any{"name": "late", "scopes": []string{"reports:read"}, "expires_in_days": 30}))
	wantRateLimited(t, "list past the limit", g.call("GET", keysAPI, g.adminKey, nil))
	wantRateLimited(t, "self-refresh past the limit", g.call("POST", "/api/refresh_token", g.adminKey, nil))
	if n := activeKeys(t, st); n != before {
		t.Errorf("keys = %d after refused calls, want %d", n, before)
	}
	if got := metricValue(t, g.reg, "authgate_rejected_requests_total", map[string]string{"reason": "rate_limited", "route": "authgate", "auth": "api_key"}); got != rejected+3 {
		t.Errorf("rate_limited rejections = %v, want %v", got, rejected+3)
	}

	// Another credential from the same address has its own allowance.
	wantStatus(t, "other credential list", g.call("GET", keysAPI, other.Secret, nil), http.StatusOK)
	g.createKey(other.Secret, map[string]any{"name": "mine", "scopes": []string{"keys:manage"}, "expires_in_days": 30})
	if n := activeKeys(t, st); n != before+1 {
		t.Errorf("keys = %d, want %d after the other credential's create", n, before+1)
	}
	// The gateway's own calls never reach an upstream.
	assertNoRequests(t, g.ups["api"], g.ups["live"], g.ups["test"])
}

// Issue 10, Also item 2: the management API is limited per client IP (after the
// trusted-proxy walk, IPv6 per /64) before authentication, so a 401 flood uses up the
// address's allowance and a valid credential from there is refused too; other addresses
// are not affected.
func TestFaultAlso2_ManagementPerIPLimitCountsFailures(t *testing.T) {
	rs := redistest.Start(t)
	g := serveLive(t, rs, liveOpts{env: map[string]string{"RL_MODE": "redis", "RL_MGMT_IP": "3", "RL_MGMT_PER": "1h"},
		extra: "client_ip: {trusted_proxies: [127.0.0.1/32]}\n"})
	st := keyStore(t, rs)
	before := activeKeys(t, st)
	bad, _ := apikey.Generate("sk", apikey.Live)
	create := map[string]any{"name": "flood", "scopes": []string{"reports:read"}, "expires_in_days": 30}

	for _, tc := range []struct{ name, attacker, neighbour, stranger string }{
		{"ipv4", "203.0.113.7", "203.0.113.7", "203.0.113.8"},
		{"ipv6 per /64", "2001:db8:1:2::1", "2001:db8:1:2:ffff::9", "2001:db8:1:3::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 3 {
				a := g.call("POST", keysAPI, bad, create, "X-Forwarded-For: "+tc.attacker)
				assertRejected(t, a, http.StatusUnauthorized, "invalid_api_key")
			}
			// The address's allowance is gone: refused before the credential is looked at,
			// valid or not, and from anywhere in the same /64.
			wantRateLimited(t, "bad key past the limit", g.call("POST", keysAPI, bad, create, "X-Forwarded-For: "+tc.attacker))
			wantRateLimited(t, "valid key past the limit", g.call("POST", keysAPI, g.adminKey, create, "X-Forwarded-For: "+tc.neighbour))
			wantRateLimited(t, "no key past the limit", g.call("GET", keysAPI, "", nil, "X-Forwarded-For: "+tc.attacker))
			if n := activeKeys(t, st); n != before {
				t.Errorf("keys = %d after refused calls, want %d", n, before)
			}
			// Another address is not affected.
			wantStatus(t, "another address", g.call("GET", keysAPI, g.adminKey, nil, "X-Forwarded-For: "+tc.stranger), http.StatusOK)
		})
	}
	if got := metricValue(t, g.reg, "authgate_rejected_requests_total", map[string]string{"reason": "rate_limited", "route": "authgate", "auth": "none"}); got < 6 {
		t.Errorf("rate_limited rejections before authentication = %v, want >= 6", got)
	}
	assertNoRequests(t, g.ups["api"], g.ups["live"], g.ups["test"])
}
