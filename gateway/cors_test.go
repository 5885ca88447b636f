package gateway_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// corsGateway: a protected route reports (GET list, DELETE one) with a credentialed CORS
// policy for one origin and the subdomains of another, a public route open for every
// origin, and a protected route plain without cors that takes every method. The upstream
// sets CORS headers of its own, which the gateway must replace.
func corsGateway(t *testing.T) (*harness, *upstream) {
	t.Helper()
	up := startUpstream(t, "api", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Methods", "PUT")
		w.Header().Set("Vary", "Accept-Encoding")
		fmt.Fprint(w, "upstream api")
	})
	ups := map[string]*upstream{"api": up}
	yaml := gatewayHeader + `upstreams:
  api: {url: "${UP_api}", timeout: 5s}
jwt:
  issuers:
    - issuer: "https://hs.example.com/"
      audiences: ["api"]
      hmac_secret: "` + hmacSecret + `"
      algorithms: ["HS256"]
routes:
  - name: reports
    match: ["GET /api/v1/reports/{$}", "DELETE /api/v1/reports/{id}"]
    upstream: api
    scopes: ["reports:read"]
    cors:
      allowed_origins: ["https://app.example.com", "https://*.example.org"]
      allowed_methods: [GET, DELETE]
      allowed_headers: [Authorization, Content-Type]
      expose_headers: [X-Request-Id]
      allow_credentials: true
      max_age: 10m
  - name: open
    match: ["GET /open"]
    upstream: api
    public: true
    cors: {allowed_origins: ["*"]}
  - name: upload
    match: ["POST /upload"]
    upstream: api
    public: true
    max_body_bytes: 10
    rate_limit: {requests: 1, per: 1h}
    cors: {allowed_origins: ["https://app.example.com"]}
  - name: plain
    match: ["/plain"]
    upstream: api
    scopes: ["reports:read"]
`
	return newGatewayYAML(t, yaml, ups, env(ups, nil), ""), up
}

// preflight sends a CORS preflight for method target from origin.
func preflight(h *harness, target, origin, method string, headers ...string) answer {
	h.t.Helper()
	return h.do("OPTIONS", target, "", append([]string{"Origin: " + origin, "Access-Control-Request-Method: " + method}, headers...)...)
}

// wantHeaders checks exact header values; "" means absent.
func wantHeaders(t *testing.T, what string, a answer, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := strings.Join(a.header.Values(k), ", "); got != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got, v)
		}
	}
}

// noCORS is every Access-Control-* answer header, absent.
var noCORS = map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Credentials": "",
	"Access-Control-Allow-Methods": "", "Access-Control-Allow-Headers": "", "Access-Control-Max-Age": "",
	"Access-Control-Expose-Headers": ""}

func varies(a answer, name string) bool {
	return slices.ContainsFunc(a.header.Values("Vary"), func(v string) bool { return strings.Contains(v, name) })
}

// The gateway answers a preflight itself, without a credential and without the upstream:
// 204 with the route's policy for an allowed origin, 204 without any CORS header for
// another (the browser then refuses), matched by the method the preflight announces. A
// preflight for a route without cors is an ordinary OPTIONS request, which a protected
// route refuses for want of a credential: it never reaches the upstream either.
func TestCORSPreflight(t *testing.T) {
	h, up := corsGateway(t)
	allowed := map[string]string{"Access-Control-Allow-Credentials": "true", "Access-Control-Allow-Methods": "GET, DELETE",
		"Access-Control-Allow-Headers": "Authorization, Content-Type", "Access-Control-Max-Age": "600", "Access-Control-Expose-Headers": ""}
	for _, tc := range []struct{ name, target, origin, method string }{
		{"exact origin, list", "/api/v1/reports/", "https://app.example.com", "GET"},
		{"delete one: matched as DELETE, not OPTIONS", "/api/v1/reports/7", "https://app.example.com", "DELETE"},
		{"subdomain", "/api/v1/reports/", "https://eu.app.example.org", "GET"},
		{"origin in other case", "/api/v1/reports/", "HTTPS://APP.example.com", "GET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := preflight(h, tc.target, tc.origin, tc.method, "Access-Control-Request-Headers: authorization")
			wantStatus(t, "preflight", a, http.StatusNoContent)
			allowed["Access-Control-Allow-Origin"] = tc.origin
			wantHeaders(t, "preflight", a, allowed)
			if !varies(a, "Origin") {
				t.Errorf("Vary = %q, want Origin in it", a.header.Values("Vary"))
			}
		})
	}
	for _, origin := range []string{"https://evil.com", "https://example.org", "https://app.example.com.evil.com",
		"https://x.example.org.evil.com", "https://x.example.org:8443", "http://app.example.com", "null"} {
		t.Run("refused "+origin, func(t *testing.T) {
			a := preflight(h, "/api/v1/reports/", origin, "GET")
			wantStatus(t, "preflight from "+origin, a, http.StatusNoContent)
			wantHeaders(t, "preflight from "+origin, a, noCORS)
		})
	}
	a := preflight(h, "/open", "https://anyone.example.net", "GET")
	wantStatus(t, "public preflight", a, http.StatusNoContent)
	wantHeaders(t, "public preflight", a, map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Credentials": "",
		"Access-Control-Allow-Methods": "GET, HEAD, PUT, PATCH, POST, DELETE"})

	// No cors on the route: an OPTIONS like any other, refused without a credential.
	assertRejected(t, preflight(h, "/plain", "https://app.example.com", "GET"), http.StatusUnauthorized, "missing_credentials")
	// A method no pattern of the route takes: no route to ask about, routed as OPTIONS.
	assertRejected(t, preflight(h, "/api/v1/reports/", "https://app.example.com", "PATCH"), http.StatusMethodNotAllowed, "method_not_allowed")
	assertNoRequests(t, up)
}

// Actual requests from an allowed origin get Access-Control-Allow-Origin (and the rest of
// the policy) on the upstream's answer, replacing the upstream's own, and on the gateway's
// refusals, so a page can read a 401; another origin gets none. Vary: Origin always.
func TestCORSActualRequests(t *testing.T) {
	h, up := corsGateway(t)
	good := "Authorization: Bearer " + orgToken(t)
	policy := map[string]string{"Access-Control-Allow-Origin": "https://app.example.com", "Access-Control-Allow-Credentials": "true",
		"Access-Control-Expose-Headers": "X-Request-Id", "Access-Control-Allow-Methods": "", "Access-Control-Max-Age": ""}

	refused := h.do("GET", "/api/v1/reports/", "", "Origin: https://app.example.com")
	assertRejected(t, refused, http.StatusUnauthorized, "missing_credentials")
	wantHeaders(t, "401", refused, policy)
	if !varies(refused, "Origin") {
		t.Errorf("401: Vary = %q, want Origin", refused.header.Values("Vary"))
	}
	assertNoRequests(t, up)

	a := h.do("GET", "/api/v1/reports/", "", "Origin: https://app.example.com", good)
	wantStatus(t, "allowed origin", a, http.StatusOK)
	wantHeaders(t, "allowed origin", a, policy)
	if !varies(a, "Origin") || !varies(a, "Accept-Encoding") {
		t.Errorf("Vary = %q, want the upstream's Accept-Encoding and Origin", a.header.Values("Vary"))
	}

	a = h.do("GET", "/api/v1/reports/", "", "Origin: https://evil.com", good)
	wantStatus(t, "other origin", a, http.StatusOK)
	wantHeaders(t, "other origin (the upstream's own CORS headers removed too)", a, noCORS)
	if !varies(a, "Origin") {
		t.Errorf("other origin: Vary = %q, want Origin", a.header.Values("Vary"))
	}

	a = h.do("GET", "/open", "", "Origin: https://anyone.example.net")
	wantStatus(t, "public route", a, http.StatusOK)
	wantHeaders(t, "public route", a, map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Credentials": "",
		"Access-Control-Allow-Methods": ""})
	if n := up.count(); n != 3 {
		t.Errorf("upstream saw %d requests, want the 3 allowed", n)
	}
}

// The gateway's refusals before authentication (413, 429) carry the CORS headers too.
func TestCORSOnEarlyRefusals(t *testing.T) {
	h, up := corsGateway(t)
	send := func(size int) answer {
		r := httptest.NewRequest("POST", "/upload", strings.NewReader(strings.Repeat("x", size)))
		r.Header.Set("Origin", "https://app.example.com")
		return h.serve(r)
	}
	want := map[string]string{"Access-Control-Allow-Origin": "https://app.example.com", "Access-Control-Allow-Credentials": ""}
	a := send(11)
	assertRejected(t, a, http.StatusRequestEntityTooLarge, "request_too_large")
	wantHeaders(t, "413", a, want)
	assertNoRequests(t, up)
	wantStatus(t, "within the bound", send(10), http.StatusOK)
	a = send(1)
	wantRateLimited(t, "past the route's per-address limit", a)
	wantHeaders(t, "429", a, want)
	if n := up.count(); n != 1 {
		t.Errorf("upstream saw %d requests, want 1", n)
	}
}
