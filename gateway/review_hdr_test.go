package gateway_test

// Regression tests of issue 9, items 3 and 12: headers a client sends to make the upstream
// run another method, or believe another address, URL or user, never reach it.

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// hdrConfig has a comments route (POST only, comments:write) in the default strip mode,
// the same route with method_override: reject, and a public route.
const hdrConfig = `client_ip:
  trusted_proxies: ["10.0.0.0/8"]
forward_auth: {enabled: true, path: /authz}
proxy:
  strip_request_headers: ["X-Debug-User", "x_tenant_override"]
routes:
  - name: comments
    match: ["POST /api/v1/posts/{id}/comments/{$}"]
    upstream: api
    scopes: ["comments:write"]
  - name: comments-strict
    match: ["POST /api/v2/posts/{id}/comments/{$}"]
    upstream: api
    scopes: ["comments:write"]
    method_override: reject
  - name: open
    match: ["/open/"]
    upstream: api
    public: true
`

// hdrKey creates a key with scopes through the management API with the admin key.
func hdrKey(t *testing.T, h *harness, adminKey string, scopes ...string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"name": "k", "scopes": scopes})
	r := httpRequest(t, "POST", "/api/auth/api-keys/", string(body))
	r.Header.Set("X-API-Key", adminKey)
	a := h.serve(r)
	if a.status != http.StatusCreated {
		t.Fatalf("create key: %d %s", a.status, a.body)
	}
	var k struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(a.body, &k); err != nil || k.Key == "" {
		t.Fatalf("create key answer %s: %v", a.body, err)
	}
	return k.Key
}

var methodOverrideSpellings = []string{
	"X-HTTP-Method-Override: DELETE",
	"X-HTTP-Method: DELETE",
	"X-Method-Override: DELETE",
	"x-http-method-override: DELETE",
	"X_HTTP_Method_Override: DELETE",
	"X-Http-Method_Override: DELETE",
}

// TestReview03_MethodOverrideStripped: a comments:write key may POST a comment; sent with
// a method-override header (any spelling) the POST still reaches the upstream, but the
// header does not, so an upstream honouring it cannot turn the POST into a DELETE.
func TestReview03_MethodOverrideStripped(t *testing.T) {
	adminKey := newAdminKey(t)
	h := newGateway(t, hdrConfig+"bootstrap: {admin_key: \""+adminKey+"\"}\n", "api")
	api := h.ups["api"]
	key := hdrKey(t, h, adminKey, "comments:write")
	addr := h.listen()
	for _, hdr := range methodOverrideSpellings {
		api.reset()
		a := rawRequest(t, addr, requestText("POST", "/api/v1/posts/7/comments/", "gw.example",
			"X-API-Key: "+key, hdr, "Content-Length: 0"))
		if a.status != http.StatusOK {
			t.Fatalf("%s: status %d, want 200 (body %s)", hdr, a.status, a.body)
		}
		got := api.requests()
		if len(got) != 1 {
			t.Fatalf("%s: upstream saw %d requests, want 1", hdr, len(got))
		}
		if got[0].Method != "POST" {
			t.Errorf("%s: upstream method %s, want POST", hdr, got[0].Method)
		}
		for k := range got[0].Header {
			if n := strings.ToLower(strings.ReplaceAll(k, "_", "-")); strings.Contains(n, "method") && n != "x-auth-method" {
				t.Errorf("%s: upstream received %s", hdr, k)
			}
		}
	}
}

// TestReview03_MethodOverrideRejected: on a route with method_override: reject, the same
// request is refused with 400 malformed_request and never reaches the upstream; without
// the header it passes. Forward-auth answers the same 400 for a described request that
// carries one.
func TestReview03_MethodOverrideRejected(t *testing.T) {
	adminKey := newAdminKey(t)
	h := newGateway(t, hdrConfig+"bootstrap: {admin_key: \""+adminKey+"\"}\n", "api")
	api := h.ups["api"]
	key := hdrKey(t, h, adminKey, "comments:write")
	for _, hdr := range methodOverrideSpellings {
		a := h.do("POST", "/api/v2/posts/7/comments/", "", "X-API-Key: "+key, hdr)
		assertRejected(t, a, http.StatusBadRequest, "malformed_request")
		// Refused before the credential is read: a request without one gets the same 400.
		assertRejected(t, h.do("POST", "/api/v2/posts/7/comments/", "", hdr), http.StatusBadRequest, "malformed_request")
		// Forward-auth: the proxy in front passes the client's headers to the decision.
		fa := h.do("GET", "/authz", "10.1.2.3:4567", "X-API-Key: "+key, hdr,
			"X-Original-Method: POST", "X-Original-URI: /api/v2/posts/7/comments/")
		assertRejected(t, fa, http.StatusBadRequest, "malformed_request")
	}
	assertNoRequests(t, api)

	if a := h.do("POST", "/api/v2/posts/7/comments/", "", "X-API-Key: "+key); a.status != http.StatusOK {
		t.Fatalf("without an override: status %d, want 200 (body %s)", a.status, a.body)
	}
	// The strip-mode route next to it is not affected by the other route's switch.
	if a := h.do("POST", "/api/v1/posts/7/comments/", "", "X-API-Key: "+key, "X-HTTP-Method-Override: DELETE"); a.status != http.StatusOK {
		t.Fatalf("strip route: status %d, want 200 (body %s)", a.status, a.body)
	}
}

// TestReview12_ClientIdentityHeadersStripped: headers naming the client's address, the
// original URL or an authenticated user, and the configured extra headers, never reach the
// upstream, in any CGI spelling; an unrelated header does.
func TestReview12_ClientIdentityHeadersStripped(t *testing.T) {
	h := newGateway(t, hdrConfig, "api")
	api := h.ups["api"]
	sent := []string{
		"True-Client-IP: 1.2.3.4",
		"X-Client-IP: 1.2.3.4",
		"Client-IP: 1.2.3.4",
		"CF-Connecting-IP: 1.2.3.4",
		"Fastly-Client-IP: 1.2.3.4",
		"X-Cluster-Client-IP: 1.2.3.4",
		"X-Originating-IP: 1.2.3.4",
		"X-Remote-IP: 1.2.3.4",
		"X-Remote-Addr: 1.2.3.4",
		"X-Forwarded: for=1.2.3.4",
		"X-Original-URL: /admin/",
		"X-Original-URI: /admin/",
		"X-Original-Method: DELETE",
		"X-Rewrite-URL: /admin/",
		"X-Original-Host: admin.internal",
		"X-Remote-User: admin",
		"Remote-User: admin",
		"X-Authenticated-User: admin",
		"X_Remote_User: admin",
		"true_client_ip: 1.2.3.4",
		"X-Real-IP: 1.2.3.4",
		"Forwarded: for=1.2.3.4",
		"X-Debug-User: admin",      // proxy.strip_request_headers
		"X-Tenant-Override: other", // configured as x_tenant_override
		"X-Kept: yes",
	}
	a := rawRequest(t, h.listen(), requestText("GET", "/open/x", "gw.example", sent...))
	if a.status != http.StatusOK {
		t.Fatalf("status = %d, want 200 (body %s)", a.status, a.body)
	}
	got := api.requests()
	if len(got) != 1 {
		t.Fatalf("upstream saw %d requests, want 1", len(got))
	}
	up := got[0].Header
	for _, line := range sent {
		name, value, _ := strings.Cut(line, ": ")
		if name == "X-Kept" {
			continue
		}
		for k, vs := range up {
			if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), strings.ReplaceAll(name, "_", "-")) {
				t.Errorf("upstream received %s: %q (sent %q)", k, vs, value)
			}
		}
	}
	if up.Get("X-Kept") != "yes" {
		t.Errorf("X-Kept = %q, want it forwarded", up.Get("X-Kept"))
	}
}

// TestReview12_TrustedProxyPassesNoUserHeaders: X-Forwarded-* headers are kept from a
// trusted proxy, but a proxy such as nginx passes its client's own headers on, so the
// oauth2-proxy style identity headers (X-Forwarded-User, -Email, …) are stripped even
// from a trusted peer, while X-Forwarded-Proto still passes.
func TestReview12_TrustedProxyPassesNoUserHeaders(t *testing.T) {
	h := newGateway(t, strings.Replace(hdrConfig, `["10.0.0.0/8"]`, `["127.0.0.1/32"]`, 1), "api")
	api := h.ups["api"]
	sent := []string{
		"X-Forwarded-User: admin",
		"X-Forwarded-Email: admin@example.com",
		"X-Forwarded-Preferred-Username: admin",
		"X-Forwarded-Groups: admins",
		"X-Forwarded-Access-Token: t",
		"X_Forwarded_User: admin",
		"X-Forwarded-Proto: https",
	}
	a := rawRequest(t, h.listen(), requestText("GET", "/open/x", "gw.example", sent...))
	if a.status != http.StatusOK {
		t.Fatalf("status = %d, want 200 (body %s)", a.status, a.body)
	}
	got := api.requests()
	if len(got) != 1 {
		t.Fatalf("upstream saw %d requests, want 1", len(got))
	}
	up := got[0].Header
	for k, vs := range up {
		n := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
		if strings.HasPrefix(n, "x-forwarded-") && n != "x-forwarded-proto" && n != "x-forwarded-for" && n != "x-forwarded-host" {
			t.Errorf("upstream received %s: %q from a trusted proxy's client", k, vs)
		}
	}
	if up.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("X-Forwarded-Proto = %q, want the trusted proxy's https", up.Get("X-Forwarded-Proto"))
	}
}

// TestReview03_QueryMethodOverride: Laravel and Symfony (method parameter override, on by
// default in Laravel) and Express's method-override('_method') read a POST's method from
// a _method query parameter too. Before the fix "POST /api/v1/posts/7/comments/?_method=DELETE"
// with a comments:write key reached the upstream with the parameter. Now it is stripped
// (other parameters kept byte for byte), refused on a method_override: reject route, and
// refused in forward-auth, where the proxy forwards the query as sent.
func TestReview03_QueryMethodOverride(t *testing.T) {
	adminKey := newAdminKey(t)
	h := newGateway(t, hdrConfig+"bootstrap: {admin_key: \""+adminKey+"\"}\n", "api")
	api := h.ups["api"]
	key := hdrKey(t, h, adminKey, "comments:write")
	addr := h.listen()
	spellings := []string{"_method=DELETE", "_METHOD=DELETE", "%5Fmethod=DELETE", ".method=DELETE", "_method[]=DELETE"}
	for _, q := range spellings {
		api.reset()
		a := rawRequest(t, addr, requestText("POST", "/api/v1/posts/7/comments/?a=%2F1&"+q+"&b=2", "gw.example",
			"X-API-Key: "+key, "Content-Length: 0"))
		if a.status != http.StatusOK {
			t.Fatalf("%s: status %d, want 200 (body %s)", q, a.status, a.body)
		}
		if got := api.requests(); len(got) != 1 || got[0].Method != "POST" || got[0].RequestURI != "/api/v1/posts/7/comments/?a=%2F1&b=2" {
			t.Errorf("%s: upstream saw %+v, want POST /api/v1/posts/7/comments/?a=%%2F1&b=2", q, got)
		}
	}
	api.reset()
	for _, q := range spellings {
		assertRejected(t, h.do("POST", "/api/v2/posts/7/comments/?"+q, "", "X-API-Key: "+key), http.StatusBadRequest, "malformed_request")
		fa := h.do("GET", "/authz", "10.1.2.3:4567", "X-API-Key: "+key, "X-Forwarded-Host: gw.example",
			"X-Original-Method: POST", "X-Original-URI: /api/v1/posts/7/comments/?"+q)
		assertRejected(t, fa, http.StatusBadRequest, "malformed_request")
	}
	assertNoRequests(t, api)
	fa := h.do("GET", "/authz", "10.1.2.3:4567", "X-API-Key: "+key, "X-Forwarded-Host: gw.example",
		"X-Original-Method: POST", "X-Original-URI: /api/v1/posts/7/comments/?method=x")
	if fa.status != http.StatusOK {
		t.Errorf("forward-auth without _method: %d %s", fa.status, fa.body)
	}
}
