package gateway_test

import (
	"net/http"
	"strings"
	"testing"
)

// forwardAuthRoutes are the routes the forward-auth tests decide about.
const forwardAuthRoutes = `routes:
  - name: reports-read
    match: ["GET /api/v1/reports/{$}", "GET /api/v1/reports/{id}/{$}"]
    upstream: api
    scopes: ["reports:read"]
  - name: reports-generate
    match: ["POST /api/v1/reports/generate/{$}"]
    upstream: api
    scopes: ["reports:generate"]
  - name: health
    match: ["GET /health"]
    upstream: api
    public: true
`

// forwardAuthConfig trusts 10.0.0.0/8 (the proxy in front) and serves forward-auth with
// Traefik's header pair.
const forwardAuthConfig = `client_ip:
  trusted_proxies: ["10.0.0.0/8"]
forward_auth: {enabled: true, path: /authz, headers: traefik}
ip_denylist: ["203.0.113.66/32"]
` + forwardAuthRoutes

// TestForwardAuth: a trusted proxy asks about a request by method and URI; the answer is
// what the gateway would have done, as 200 with the identity or as the same refusal, and
// the upstream never sees anything.
func TestForwardAuth(t *testing.T) {
	admin := newAdminKey(t)
	h := newGateway(t, forwardAuthConfig+"bootstrap: {admin_key: \""+admin+"\"}\n", "api")
	api := h.ups["api"]
	const proxyPeer = "10.1.2.3:4567"
	reader := h.createKeyWith(admin, `{"name":"reader","scopes":["reports:read"]}`)

	ask := func(method, uri string, headers ...string) answer {
		t.Helper()
		hs := append([]string{"X-Forwarded-Method: " + method, "X-Forwarded-Uri: " + uri, "X-Forwarded-Host: api.example.com",
			"X-Forwarded-For: 198.51.100.7"}, headers...)
		return h.do("GET", "/authz", proxyPeer, hs...)
	}

	// Allowed, with the identity for the proxy to pass on, and the credential's limit.
	a := ask("GET", "/api/v1/reports/7/?page=2", "X-API-Key: "+reader.Key)
	if a.status != http.StatusOK || len(a.body) != 0 {
		t.Fatalf("allowed request: %d %s", a.status, a.body)
	}
	for k, want := range map[string]string{"X-Auth-Method": "api_key", "X-Auth-Key-Id": reader.ID, "X-Auth-Scopes": "reports:read",
		"X-Auth-Environment": "live", "X-Ratelimit-Limit": "100"} {
		if got := a.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if a.header.Get("X-Request-Id") == "" {
		t.Errorf("no X-Request-Id")
	}
	// A public route needs no credential and gets no identity.
	a = ask("GET", "/health")
	if a.status != http.StatusOK || a.header.Get("X-Auth-Method") != "" {
		t.Errorf("public route: %d, X-Auth-Method %q", a.status, a.header.Get("X-Auth-Method"))
	}

	refusals := []struct {
		name   string
		answer answer
		status int
		code   string
	}{
		{"no credential", ask("GET", "/api/v1/reports/"), http.StatusUnauthorized, "missing_credentials"},
		{"bad key", ask("GET", "/api/v1/reports/", "X-API-Key: "+badChecksum(reader.Key)), http.StatusUnauthorized, "invalid_api_key"},
		{"scope", ask("POST", "/api/v1/reports/generate/", "X-API-Key: "+reader.Key), http.StatusForbidden, "insufficient_scope"},
		{"no route", ask("GET", "/nowhere"), http.StatusNotFound, "no_route"},
		{"method", ask("DELETE", "/health"), http.StatusMethodNotAllowed, "method_not_allowed"},
		{"path trick", ask("GET", "/api/v1/reports/..;/generate/", "X-API-Key: "+reader.Key), http.StatusBadRequest, "malformed_request"},
		{"encoded slash", ask("GET", "/health%2F..%2Fapi/v1/reports/"), http.StatusBadRequest, "malformed_request"},
		{"the gateway's own path", ask("POST", "/api/auth/api-keys/", "X-API-Key: "+admin), http.StatusNotFound, "no_route"},
		{"forward-auth asking about itself", ask("GET", "/authz"), http.StatusNotFound, "no_route"},
		{"denied client behind the proxy", h.do("GET", "/authz", proxyPeer, "X-Forwarded-Method: GET", "X-Forwarded-Uri: /health",
			"X-Forwarded-Host: api.example.com", "X-Forwarded-For: 203.0.113.66"), http.StatusForbidden, "ip_not_allowed"},
		{"untrusted peer", h.do("GET", "/authz", "198.51.100.9:1000", "X-Forwarded-Method: GET", "X-Forwarded-Uri: /health",
			"X-Forwarded-Host: api.example.com"), http.StatusForbidden, "ip_not_allowed"},
		{"no method", h.do("GET", "/authz", proxyPeer, "X-Forwarded-Uri: /health", "X-Forwarded-Host: api.example.com"),
			http.StatusBadRequest, "malformed_request"},
		{"no host", h.do("GET", "/authz", proxyPeer, "X-Forwarded-Method: GET", "X-Forwarded-Uri: /health"),
			http.StatusBadRequest, "malformed_request"},
		{"two URIs", ask("GET", "/health", "X-Forwarded-Uri: /api/v1/reports/"), http.StatusBadRequest, "malformed_request"},
		{"nginx's pair too", ask("GET", "/health", "X-Original-Method: GET"), http.StatusBadRequest, "malformed_request"},
		{"not a path", ask("GET", "http://evil.example/health"), http.StatusBadRequest, "malformed_request"},
		{"lowercase method", ask("get", "/health"), http.StatusBadRequest, "malformed_request"},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) { assertRejected(t, r.answer, r.status, r.code) })
	}
	// The proxy forwards the path as sent, so one that cleaning would change ("//", "/./")
	// is refused rather than decided in a form the upstream never sees; the clean form passes.
	assertRejected(t, ask("GET", "/api/v1//reports/./7/", "X-API-Key: "+reader.Key), http.StatusBadRequest, "malformed_request")
	if a := ask("GET", "/api/v1/reports/7/", "X-API-Key: "+reader.Key); a.status != http.StatusOK {
		t.Errorf("clean path: %d %s", a.status, a.body)
	}
	assertNoRequests(t, api)
	if strings.Contains(string(h.do("GET", "/authz", proxyPeer).body), reader.Key) {
		t.Errorf("an answer echoed the key")
	}
}

// keyAnswer is what the tests need of a created key.
type keyAnswer struct {
	ID  string `json:"id"`
	Key string `json:"key"`
}

// createKeyWith creates a key through the management API with credential and wants 201.
func (h *harness) createKeyWith(credential, body string) keyAnswer {
	h.t.Helper()
	r := httpRequest(h.t, "POST", "/api/auth/api-keys/", body)
	r.Header.Set("X-API-Key", credential)
	a := h.serve(r)
	if a.status != http.StatusCreated {
		h.t.Fatalf("create key: %d %s", a.status, a.body)
	}
	return decodeJSON[keyAnswer](h.t, a)
}

func httpRequest(t *testing.T, method, target, body string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, "http://gw.test"+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.RemoteAddr = "192.0.2.1:1234"
	r.Header.Set("Content-Type", "application/json")
	return r
}
