package gateway_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/apikey"
)

// TestRouteScopes: a valid key reaches a protected route only with the scopes it needs
// (any one of scopes, all of scopes_all, wildcards honoured); otherwise 403
// insufficient_scope with WWW-Authenticate, and the upstream never sees the request.
func TestRouteScopes(t *testing.T) {
	admin, err := apikey.Generate("sk", apikey.Live)
	if err != nil {
		t.Fatal(err)
	}
	h := newGateway(t, `
bootstrap: {admin_key: "`+admin+`"}
routes:
  - {name: read, match: ["GET /reports/{$}"], upstream: api, scopes: ["reports:read", "reports:admin"]}
  - {name: both, match: ["POST /reports/{$}"], upstream: api, scopes_all: ["reports:write", "audit:write"]}
  - {name: any-key, match: ["GET /open-to-keys/{$}"], upstream: api}
`, "api")
	api := h.ups["api"]

	mint := func(scopes ...string) string {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"name": "k", "scopes": scopes})
		r := httptest.NewRequest("POST", "/api/auth/api-keys/", strings.NewReader(string(body)))
		r.Header.Set("X-API-Key", admin)
		a := h.serve(r)
		if a.status != http.StatusCreated {
			t.Fatalf("create key %v: %d %s", scopes, a.status, a.body)
		}
		var out struct{ Key string }
		if err := json.Unmarshal(a.body, &out); err != nil || out.Key == "" {
			t.Fatalf("create answer %s: %v", a.body, err)
		}
		return out.Key
	}
	tests := []struct {
		name, method, path string
		scopes             []string
		ok                 bool
	}{
		{"exact scope", "GET", "/reports/", []string{"reports:read"}, true},
		{"second of any-of", "GET", "/reports/", []string{"reports:admin"}, true},
		{"resource wildcard", "GET", "/reports/", []string{"reports:*"}, true},
		{"action wildcard", "GET", "/reports/", []string{"*:read"}, true},
		{"everything", "GET", "/reports/", []string{"*"}, true},
		{"other scope", "GET", "/reports/", []string{"dashboards:read"}, false},
		{"no scopes", "GET", "/reports/", []string{}, false},
		{"all-of complete", "POST", "/reports/", []string{"reports:write", "audit:write"}, true},
		{"all-of partial", "POST", "/reports/", []string{"reports:write"}, false},
		{"route without scopes", "GET", "/open-to-keys/", []string{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := mint(tt.scopes...)
			api.reset()
			a := h.do(tt.method, tt.path, "", "X-API-Key: "+key)
			if tt.ok {
				if a.status != http.StatusOK || api.count() != 1 {
					t.Fatalf("status %d, upstream saw %d; want 200 and 1 (%s)", a.status, api.count(), a.body)
				}
				return
			}
			assertRejected(t, a, http.StatusForbidden, "insufficient_scope")
			if got := a.header.Get("Www-Authenticate"); !strings.Contains(got, `error="insufficient_scope"`) || !strings.Contains(got, `scope="`) {
				t.Errorf("WWW-Authenticate = %q", got)
			}
			assertNoRequests(t, api)
		})
	}
}
