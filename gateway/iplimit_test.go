package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/store/redistest"
)

// ipLimitGateway builds a gateway in rate_limits.mode (local, or redis on rs) trusting
// 10.0.0.0/8 as proxies, with an external HS256 issuer, a protected route reports, a
// public route health and rateLimits appended to the rate_limits block. It returns the
// YAML too, so a second replica can be built from it.
func ipLimitGateway(t *testing.T, mode string, rs *redistest.Server, rateLimits, routes string) (*harness, string) {
	t.Helper()
	store := ""
	if mode == "redis" {
		store = fmt.Sprintf("store:\n  type: redis\n  redis: {addrs: [%q], key_prefix: %q}\n", rs.Addr(), "iplimit:"+t.Name()+":")
	}
	body := store + `client_ip:
  trusted_proxies: ["10.0.0.0/8"]
jwt:
  issuers:
    - issuer: "https://hs.example.com/"
      audiences: ["api"]
      hmac_secret: "` + hmacSecret + `"
      algorithms: ["HS256"]
rate_limits:
  mode: ` + mode + `
` + rateLimits + `routes:
  - name: reports
    match: ["GET /api/v1/reports/{$}"]
    upstream: api
    scopes: ["reports:read"]
` + routes
	h := newGateway(t, body, "api")
	return h, body
}

// fromClient sends GET target as the client at addr: directly when via is "", else
// through the proxy via (a trusted peer) with X-Forwarded-For: addr. headers are added.
func fromClient(h *harness, target, addr, via string, headers ...string) answer {
	h.t.Helper()
	if via == "" {
		return h.do("GET", target, addrPort(addr), headers...)
	}
	return h.do("GET", target, addrPort(via), append([]string{"X-Forwarded-For: " + addr}, headers...)...)
}

// addrPort is addr with a port, bracketed when IPv6.
func addrPort(addr string) string {
	if strings.Contains(addr, ":") {
		return "[" + addr + "]:4444"
	}
	return addr + ":4444"
}

func forEachLimitMode(t *testing.T, f func(t *testing.T, mode string, rs *redistest.Server)) {
	t.Run("local", func(t *testing.T) { f(t, "local", nil) })
	t.Run("redis", func(t *testing.T) { f(t, "redis", redistest.Start(t)) })
}

// A public route's rate_limit counts per client address after the trusted-proxy walk: an
// X-Forwarded-For from an untrusted peer does not change the address, one through a
// trusted proxy does, and IPv6 counts per /64. Refusals are 429 rate_limited with
// Retry-After and the limit headers, counted as rate_limited, and never reach the upstream.
func TestPublicRouteRateLimitPerClientIP(t *testing.T) {
	forEachLimitMode(t, func(t *testing.T, mode string, rs *redistest.Server) {
		h, _ := ipLimitGateway(t, mode, rs, "", `  - name: health
    match: ["GET /health"]
    upstream: api
    public: true
    rate_limit: {requests: 2, per: 1h}
`)
		api := h.ups["api"]
		for _, tc := range []struct {
			name                     string
			attacker, via, neighbour string // neighbour: another address counted as the attacker
			stranger                 string
		}{
			{"ipv4 direct", "203.0.113.7", "", "203.0.113.7", "203.0.113.8"},
			{"ipv4 through a trusted proxy", "198.51.100.20", "10.1.2.3", "198.51.100.20", "198.51.100.21"},
			{"ipv6 per /64", "2001:db8:1:2::1", "", "2001:db8:1:2:ffff::9", "2001:db8:1:3::1"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				api.reset()
				for i := range 2 {
					a := fromClient(h, "/health", tc.attacker, tc.via)
					wantStatus(t, "within the limit", a, http.StatusOK)
					if rem := limitHeaders(t, a, 2, "health", "3600"); rem != 1-i {
						t.Errorf("request %d: remaining %d, want %d", i+1, rem, 1-i)
					}
				}
				refused := fromClient(h, "/health", tc.neighbour, tc.via)
				wantRateLimited(t, "past the limit", refused)
				limitHeaders(t, refused, 2, "health", "3600")
				// An untrusted peer's X-Forwarded-For names no other client.
				if tc.via == "" {
					wantRateLimited(t, "spoofed X-Forwarded-For", fromClient(h, "/health", tc.attacker, "", "X-Forwarded-For: "+tc.stranger))
				}
				if n := api.count(); n != 2 {
					t.Errorf("upstream saw %d requests, want the 2 allowed", n)
				}
				wantStatus(t, "another address", fromClient(h, "/health", tc.stranger, tc.via), http.StatusOK)
			})
		}
		if got := metricValue(t, h.reg, "authgate_rejected_requests_total", map[string]string{"reason": "rate_limited", "route": "health", "auth": "none"}); got != 5 {
			t.Errorf("rate_limited rejections on health = %v, want 5", got)
		}
	})
}

// rate_limits.per_ip counts every request on a route, public or not, per client address
// before authentication: bad credentials use up the address's allowance, and a valid
// credential from there is then refused too, without being checked; other addresses are
// not affected. XFF from an untrusted peer does not move the count elsewhere.
func TestPerIPLimitBeforeAuthentication(t *testing.T) {
	forEachLimitMode(t, func(t *testing.T, mode string, rs *redistest.Server) {
		h, _ := ipLimitGateway(t, mode, rs, "  per_ip: {requests: 4, per: 1h}\n", `  - name: health
    match: ["GET /health"]
    upstream: api
    public: true
`)
		api := h.ups["api"]
		good := "Authorization: Bearer " + orgToken(t)
		const bad = "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
		for _, tc := range []struct{ name, attacker, neighbour, stranger string }{
			{"ipv4", "203.0.113.7", "203.0.113.7", "203.0.113.8"},
			{"ipv6 per /64", "2001:db8:1:2::1", "2001:db8:1:2:ffff::9", "2001:db8:1:3::1"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				api.reset()
				for range 3 {
					assertRejected(t, fromClient(h, "/api/v1/reports/", tc.attacker, "", bad), http.StatusUnauthorized, "invalid_token")
				}
				wantStatus(t, "public route, last one within the limit", fromClient(h, "/health", tc.attacker, ""), http.StatusOK)
				before := metricValue(t, h.reg, "authgate_rejected_requests_total", map[string]string{"reason": "rate_limited", "route": "reports", "auth": "none"})
				a := fromClient(h, "/api/v1/reports/", tc.neighbour, "", good)
				wantRateLimited(t, "valid credential past the limit", a)
				limitHeaders(t, a, 4, "per_ip", "3600")
				wantRateLimited(t, "bad credential past the limit", fromClient(h, "/api/v1/reports/", tc.attacker, "", bad))
				wantRateLimited(t, "public route past the limit", fromClient(h, "/health", tc.attacker, ""))
				wantRateLimited(t, "spoofed X-Forwarded-For", fromClient(h, "/api/v1/reports/", tc.attacker, "", good, "X-Forwarded-For: "+tc.stranger))
				if got := metricValue(t, h.reg, "authgate_rejected_requests_total", map[string]string{"reason": "rate_limited", "route": "reports", "auth": "none"}); got != before+3 {
					t.Errorf("rate_limited rejections on reports = %v, want %v (before authentication: auth none)", got, before+3)
				}
				if n := api.count(); n != 1 {
					t.Errorf("upstream saw %d requests, want only the public one within the limit", n)
				}
				wantStatus(t, "another address", fromClient(h, "/api/v1/reports/", tc.stranger, "", good), http.StatusOK)
			})
		}
	})
}

// In redis mode the per-address limits are one limit across replicas: two gateways on one
// Redis share the allowance of an address.
func TestPerIPLimitSharedAcrossReplicas(t *testing.T) {
	rs := redistest.Start(t)
	h1, body := ipLimitGateway(t, "redis", rs, "  per_ip: {requests: 3, per: 1h}\n", `  - name: health
    match: ["GET /health"]
    upstream: api
    public: true
    rate_limit: {requests: 100, per: 1h}
`)
	h2 := newGatewayYAML(t, gatewayHeader+"upstreams:\n  api: {url: \"${UP_api}\", timeout: 5s}\n"+body, h1.ups, env(h1.ups, nil), "")
	wantStatus(t, "replica 1", fromClient(h1, "/health", "203.0.113.7", ""), http.StatusOK)
	wantStatus(t, "replica 2", fromClient(h2, "/health", "203.0.113.7", ""), http.StatusOK)
	wantStatus(t, "replica 1 again", fromClient(h1, "/health", "203.0.113.7", ""), http.StatusOK)
	wantRateLimited(t, "replica 2 past the shared limit", fromClient(h2, "/health", "203.0.113.7", ""))
	if n := h1.ups["api"].count(); n != 3 {
		t.Errorf("upstream saw %d requests, want 3", n)
	}
	keys, err := rs.Client(t).Keys(context.Background(), "*iplimit:*rl:ip:*").Result()
	if err != nil || len(keys) == 0 {
		t.Errorf("no per-address bucket in Redis (keys %v, err %v)", keys, err)
	}
}

// Forward-auth decisions count against the per-address limits like proxied requests, by
// the client address the trusted proxy names: a client past rate_limits.per_ip is refused
// 429 before its credential is checked, and a public route's rate_limit counts per
// client. Another client behind the same proxy is not affected.
func TestPerIPLimitForwardAuth(t *testing.T) {
	h := newGateway(t, `client_ip:
  trusted_proxies: ["10.0.0.0/8"]
forward_auth: {enabled: true, path: /authz, headers: traefik}
rate_limits:
  per_ip: {requests: 3, per: 1h}
routes:
  - {name: reports, match: ["GET /api/v1/reports/{$}"], upstream: api, scopes: ["reports:read"]}
  - {name: health, match: ["GET /health"], upstream: api, public: true, rate_limit: {requests: 1, per: 1h}}
`, "api")
	ask := func(uri, client string, headers ...string) answer {
		t.Helper()
		hs := append([]string{"X-Forwarded-Method: GET", "X-Forwarded-Uri: " + uri, "X-Forwarded-Host: api.example.com",
			"X-Forwarded-For: " + client}, headers...)
		return h.do("GET", "/authz", proxyPeer, hs...)
	}
	const bad = "X-API-Key: sk_live_notakeyatall"
	wantStatus(t, "public, first", ask("/health", "198.51.100.7"), http.StatusOK)
	wantRateLimited(t, "public, second from the same client", ask("/health", "198.51.100.7"))
	assertRejected(t, ask("/api/v1/reports/", "198.51.100.7", bad), http.StatusUnauthorized, "invalid_api_key")
	wantRateLimited(t, "past per_ip", ask("/api/v1/reports/", "198.51.100.7", bad))
	wantStatus(t, "public, another client", ask("/health", "198.51.100.8"), http.StatusOK)
	assertRejected(t, ask("/api/v1/reports/", "198.51.100.8", bad), http.StatusUnauthorized, "invalid_api_key")
	assertNoRequests(t, h.ups["api"])
}
