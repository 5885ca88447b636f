package gateway_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestCredentialsFailClosed: until API keys and JWTs are verified, every credential is
// refused on a protected route, and none of these requests reaches the upstream.
func TestCredentialsFailClosed(t *testing.T) {
	h := newGateway(t, `
routes:
  - {name: reports, match: ["GET /api/v1/reports/"], upstream: api, scopes: ["reports:read"]}
`, "api")
	const (
		key    = "sk_live_3Hq9aaaaaaaaaaaaaaaaaaaaZt01aB"
		other  = "sk_test_3Hq9bbbbbbbbbbbbbbbbbbbbZt01aB"
		jwt    = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl"
		anyKey = "not-even-a-key"
	)
	tests := []struct {
		name     string
		headers  []string
		status   int
		code     string
		wwwAuth  string // substring WWW-Authenticate must hold; "" = not checked
		wantAuth string // auth label of the rejection metric
		message  string // substring the error message must hold; "" = not checked
	}{
		{name: "none", status: 401, code: "missing_credentials", wwwAuth: "Bearer", wantAuth: "none"},
		{name: "X-API-Key", headers: []string{"X-API-Key: " + key}, status: 401, code: "invalid_api_key", wwwAuth: `error="invalid_token"`, wantAuth: "api_key"},
		{name: "X-API-Key of any shape", headers: []string{"X-API-Key: " + anyKey}, status: 401, code: "invalid_api_key", wwwAuth: `error="invalid_token"`, wantAuth: "api_key"},
		{name: "Authorization: Token", headers: []string{"Authorization: Token " + key}, status: 401, code: "invalid_api_key", wwwAuth: `error="invalid_token"`, wantAuth: "api_key"},
		{name: "Bearer key", headers: []string{"Authorization: Bearer " + key}, status: 401, code: "invalid_api_key", wwwAuth: `error="invalid_token"`, wantAuth: "api_key"},
		{name: "Bearer JWT", headers: []string{"Authorization: Bearer " + jwt}, status: 401, code: "invalid_token", wwwAuth: `error="invalid_token"`, wantAuth: "jwt"},
		{name: "the same key twice", headers: []string{"X-API-Key: " + key, "Authorization: Bearer " + key}, status: 401, code: "invalid_api_key", wantAuth: "api_key"},
		{name: "key and JWT", headers: []string{"X-API-Key: " + key, "Authorization: Bearer " + jwt}, status: 400, code: "malformed_credentials", wantAuth: "none"},
		{name: "two different keys", headers: []string{"X-API-Key: " + key, "Authorization: Token " + other}, status: 400, code: "malformed_credentials", wantAuth: "none"},
		{name: "X-API-Key twice", headers: []string{"X-API-Key: " + key, "X-API-Key: " + other}, status: 400, code: "malformed_credentials", wantAuth: "none"},
		{name: "Authorization twice", headers: []string{"Authorization: Bearer " + jwt, "Authorization: Bearer " + jwt}, status: 400, code: "malformed_credentials", wantAuth: "none"},
		{name: "Basic", headers: []string{"Authorization: Basic dXNlcjpwYXNz"}, status: 400, code: "malformed_credentials", wantAuth: "none"},
		{name: "empty Bearer", headers: []string{"Authorization: Bearer "}, status: 400, code: "malformed_credentials", wantAuth: "none", message: "empty"},
		{name: "empty X-API-Key", headers: []string{"X-API-Key: "}, status: 400, code: "malformed_credentials", wantAuth: "none", message: "empty"},
		{name: "Bearer and no space", headers: []string{"Authorization: Bearer"}, status: 400, code: "malformed_credentials", wantAuth: "none", message: "empty"},
		{name: "Basic says one credential", headers: []string{"Authorization: Basic dXNlcjpwYXNz"}, status: 400, code: "malformed_credentials", wantAuth: "none", message: "send one credential"},
	}
	addr := h.listen()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := metricValue(t, h.reg, "authgate_rejected_requests_total",
				map[string]string{"reason": tt.code, "route": "reports", "auth": tt.wantAuth})
			a := rawRequest(t, addr, requestText("GET", "/api/v1/reports/7/", "gw.example", tt.headers...))
			assertRejected(t, a, tt.status, tt.code)
			if tt.message != "" && !strings.Contains(string(a.body), tt.message) {
				t.Errorf("body %s: want the message to hold %q", a.body, tt.message)
			}
			if tt.wwwAuth != "" && !strings.Contains(a.header.Get("WWW-Authenticate"), tt.wwwAuth) {
				t.Errorf("WWW-Authenticate = %q, want it to hold %q", a.header.Get("WWW-Authenticate"), tt.wwwAuth)
			}
			for _, secret := range []string{key, other, jwt, anyKey, "dXNlcjpwYXNz"} {
				if strings.Contains(string(a.body), secret) {
					t.Errorf("body %s holds a credential", a.body)
				}
			}
			after := metricValue(t, h.reg, "authgate_rejected_requests_total",
				map[string]string{"reason": tt.code, "route": "reports", "auth": tt.wantAuth})
			if after-before != 1 {
				t.Errorf("rejected{reason=%s,route=reports,auth=%s} rose by %v, want 1", tt.code, tt.wantAuth, after-before)
			}
		})
	}
	assertNoRequests(t, h.ups["api"])
}

// TestPublicRouteIgnoresCredentials: a public route forwards without reading the
// credential, so a malformed one does not block it (and it is still stripped).
func TestPublicRouteIgnoresCredentials(t *testing.T) {
	h := newGateway(t, `
routes:
  - {name: health, match: ["GET /health"], upstream: api, public: true}
`, "api")
	a := h.do("GET", "http://gw.example/health", "", "Authorization: Basic dXNlcjpwYXNz", "X-API-Key: sk_live_x")
	if a.status != http.StatusOK {
		t.Fatalf("status = %d, want 200", a.status)
	}
	got := h.ups["api"].requests()
	if len(got) != 1 || got[0].Header.Get("Authorization") != "" || got[0].Header.Get("X-Api-Key") != "" {
		t.Fatalf("upstream got %+v, want one request without credentials", got)
	}
}
