package gateway_test

import (
	"net/http"
	"testing"
)

// TestRoutePrecedence: the most specific ServeMux pattern wins, whatever the file order,
// and the matched route's upstream (only it) receives the request.
func TestRoutePrecedence(t *testing.T) {
	h := newGateway(t, `
routes:
  - {name: reports-id,      match: ["GET /api/v1/reports/{id}/"],      upstream: reports,    public: true}
  - {name: reports-special, match: ["GET /api/v1/reports/special/"],   upstream: special,    public: true}
  - {name: things-any,      match: ["/things/"],                       upstream: things,     public: true}
  - {name: things-post,     match: ["POST /things/"],                  upstream: thingspost, public: true}
  - {name: admin-host,      match: ["admin.example.com/things/"],      upstream: adminhost,  public: true}
  - {name: docs-tree,       match: ["GET /docs/"],                     upstream: docstree,   public: true}
  - {name: docs-exact,      match: ["GET /docs/{$}"],                  upstream: docsexact,  public: true}
`, "reports", "special", "things", "thingspost", "adminhost", "docstree", "docsexact")

	tests := []struct {
		name, method, target string
		wantUpstream         string
		wantURI              string
	}{
		{"wildcard", "GET", "http://gw.example/api/v1/reports/7/", "reports", "/api/v1/reports/7/"},
		{"literal beats wildcard", "GET", "http://gw.example/api/v1/reports/special/", "special", "/api/v1/reports/special/"},
		{"literal beats wildcard in the subtree", "GET", "http://gw.example/api/v1/reports/special/x?y=1", "special", "/api/v1/reports/special/x?y=1"},
		{"HEAD follows GET", "HEAD", "http://gw.example/api/v1/reports/7/", "reports", "/api/v1/reports/7/"},
		{"method-less takes GET", "GET", "http://gw.example/things/1", "things", "/things/1"},
		{"method-specific beats method-less", "POST", "http://gw.example/things/1", "thingspost", "/things/1"},
		{"method-less takes DELETE", "DELETE", "http://gw.example/things/1", "things", "/things/1"},
		{"host-specific beats host-less", "POST", "http://admin.example.com/things/1", "adminhost", "/things/1"},
		{"host match ignores port", "GET", "http://admin.example.com:8443/things/1", "adminhost", "/things/1"},
		{"other host falls to host-less", "GET", "http://www.example.com/things/1", "things", "/things/1"},
		{"{$} beats subtree on the exact path", "GET", "http://gw.example/docs/", "docsexact", "/docs/"},
		{"subtree below {$}", "GET", "http://gw.example/docs/guide", "docstree", "/docs/guide"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, u := range h.ups {
				u.reset()
			}
			a := h.do(tt.method, tt.target, "")
			if a.status != http.StatusOK {
				t.Fatalf("status = %d, want 200 (body %s)", a.status, a.body)
			}
			for name, u := range h.ups {
				want := 0
				if name == tt.wantUpstream {
					want = 1
				}
				if n := u.count(); n != want {
					t.Errorf("upstream %s saw %d requests, want %d", name, n, want)
				}
			}
			if got := h.ups[tt.wantUpstream].requests(); len(got) == 1 && (got[0].RequestURI != tt.wantURI || got[0].Method != tt.method) {
				t.Errorf("upstream got %s %s, want %s %s", got[0].Method, got[0].RequestURI, tt.method, tt.wantURI)
			}
		})
	}
}

func TestNoRouteAndMethodNotAllowed(t *testing.T) {
	h := newGateway(t, `
routes:
  - {name: items, match: ["GET /items/{$}", "POST /items/{$}"], upstream: api, public: true}
  - {name: docs, match: ["GET /docs/"], upstream: api, public: true}
`, "api")
	api := h.ups["api"]

	tests := []struct {
		name, method, target string
		status               int
		code                 string
		allow                string
	}{
		{"unknown path", "GET", "/nothing", 404, "no_route", ""},
		{"root", "GET", "/", 404, "no_route", ""},
		{"{$} is exact", "GET", "/items/1", 404, "no_route", ""},
		{"no redirect to the subtree", "GET", "/docs", 404, "no_route", ""},
		{"wrong method", "DELETE", "/items/", 405, "method_not_allowed", "GET, HEAD, POST"},
		{"wrong method on a subtree", "PUT", "/docs/x", 405, "method_not_allowed", "GET, HEAD"},
		{"metrics are not on the main listener", "GET", "/metrics", 404, "no_route", ""},
		{"healthz is not on the main listener", "GET", "/healthz", 404, "no_route", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := h.do(tt.method, tt.target, "")
			assertRejected(t, a, tt.status, tt.code)
			if got := a.header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
		})
	}
	assertNoRequests(t, api)
}

// TestReservedPathsNotForwarded: the gateway's own paths are never forwarded, even with a
// catch-all public route, and path tricks cannot carry a request into or out of them: they
// reach the management API, which requires a credential.
func TestReservedPathsNotForwarded(t *testing.T) {
	h := newGateway(t, `
routes:
  - {name: everything, match: ["/"], upstream: api, public: true}
`, "api")
	api := h.ups["api"]
	addr := h.listen()

	for _, target := range []string{
		"/api/auth",
		"/api/auth/",
		"/api/auth/login/",
		"/api/auth/api-keys/key_1/",
		"/api/refresh_token",
		"/api/x/../auth/login/",
		"//api//auth/login/",
		"/api/%61uth/login/",
		"/api/auth/./login/",
	} {
		t.Run(target, func(t *testing.T) {
			// The gateway serves them itself, to authenticated callers only.
			a := rawRequest(t, addr, requestText("POST", target, "gw.example", "Content-Length: 0"))
			assertRejected(t, a, http.StatusUnauthorized, "missing_credentials")
			assertNoRequests(t, api)
		})
	}

	// Control: the catch-all does forward what is not the gateway's.
	a := rawRequest(t, addr, requestText("GET", "/api/authx/login/", "gw.example"))
	if a.status != http.StatusOK {
		t.Fatalf("GET /api/authx/login/ = %d, want 200", a.status)
	}
	if got := api.requests(); len(got) != 1 || got[0].RequestURI != "/api/authx/login/" {
		t.Fatalf("upstream got %+v, want one GET /api/authx/login/", got)
	}
}
