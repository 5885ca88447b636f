package gateway_test

// Review items 1 and 2 for the proxies this machine has no binary for: Traefik and Envoy
// are imitated exactly as their documentation and source describe what they send, with
// the settings docs/forward-auth.md documents (read from the page).

import (
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"gopkg.in/yaml.v3"

	"github.com/authgate/authgate/gateway/nginxtest"
)

// proxyPeer is the address of the proxy in front: inside trusted_proxies.
const proxyPeer = "10.1.2.3:4567"

// forwardAuthGateway serves forward-auth in mode (nginx, traefik or envoy) to 10.0.0.0/8,
// with an external HS256 issuer and the forward-auth routes.
func forwardAuthGateway(t *testing.T, mode string) (*harness, string) {
	t.Helper()
	admin := newAdminKey(t)
	h := newGateway(t, `client_ip:
  trusted_proxies: ["10.0.0.0/8"]
forward_auth: {enabled: true, path: /authz, headers: `+mode+`}
jwt:
  issuers:
    - issuer: "https://hs.example.com/"
      audiences: ["api"]
      hmac_secret: "`+hmacSecret+`"
      algorithms: ["HS256"]
bootstrap: {admin_key: "`+admin+`"}
`+forwardAuthRoutes, "api")
	return h, admin
}

// orgToken is an external JWT with reports:read and organisation acme.
func orgToken(t *testing.T) string {
	now := time.Now()
	return mint(t, jose.HS256, []byte(hmacSecret), "", map[string]any{"iss": "https://hs.example.com/", "sub": "u-1", "aud": "api",
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "scope": "reports:read", "org": "acme"})
}

// clientRequest is what a client sends the proxy: method target with headers, from a
// public address, with every spoofing header the review tried.
func clientRequest(method, target string, headers ...string) *http.Request {
	r := httptest.NewRequest(method, "http://api.example.com"+target, strings.NewReader(`{"report":"all"}`))
	r.RemoteAddr = "198.51.100.7:5555"
	for _, kv := range append([]string{"X-Forwarded-Method: GET", "X-Forwarded-Uri: /health", "X-Forwarded-Host: admin.example.com",
		"X-Forwarded-For: 203.0.113.9"}, headers...) {
		k, v, _ := strings.Cut(kv, ": ")
		r.Header.Add(k, v)
	}
	for _, name := range identityHeaders {
		r.Header.Add(name, "evil-corp")
		r.Header.Add(name, "admin")
	}
	return r
}

// traefikForwardAuth is the forwardAuth middleware configuration docs/forward-auth.md shows.
type traefikForwardAuth struct {
	Address                  string   `yaml:"address"`
	TrustForwardHeader       bool     `yaml:"trustForwardHeader"`
	AuthRequestHeaders       []string `yaml:"authRequestHeaders"`
	AuthResponseHeaders      []string `yaml:"authResponseHeaders"`
	AuthResponseHeadersRegex string   `yaml:"authResponseHeadersRegex"`
}

func documentedTraefik(t *testing.T) traefikForwardAuth {
	t.Helper()
	md, err := os.ReadFile("../docs/forward-auth.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := nginxtest.FencedBlocks(nginxtest.Section(string(md), "## Traefik"), "yaml")
	if len(blocks) != 1 {
		t.Fatalf("docs/forward-auth.md: want one ```yaml block under \"## Traefik\", found %d", len(blocks))
	}
	var doc struct {
		HTTP struct {
			Middlewares map[string]struct {
				ForwardAuth traefikForwardAuth `yaml:"forwardAuth"`
			} `yaml:"middlewares"`
		} `yaml:"http"`
	}
	if err := yaml.Unmarshal([]byte(blocks[0]), &doc); err != nil {
		t.Fatalf("docs/forward-auth.md Traefik block: %v", err)
	}
	mw := doc.HTTP.Middlewares["authgate"].ForwardAuth
	if !strings.HasSuffix(mw.Address, ":8080/authz") {
		t.Fatalf("documented Traefik address %q, want the forward-auth path", mw.Address)
	}
	return mw
}

// traefikCheck is the check request Traefik's forwardAuth sends for client request req
// (pkg/middlewares/auth/forward.go, writeHeader): every client header (or only
// authRequestHeaders), then X-Forwarded-For, -Method, -Proto, -Host and -Uri set from the
// request itself, or from the client's own headers when trustForwardHeader is true.
func (mw traefikForwardAuth) check(req *http.Request) *http.Request {
	c := httptest.NewRequest("GET", "/authz", nil)
	c.RemoteAddr = proxyPeer
	for k, vs := range req.Header {
		c.Header[k] = append([]string(nil), vs...)
	}
	if len(mw.AuthRequestHeaders) > 0 {
		kept := http.Header{}
		for _, n := range mw.AuthRequestHeaders {
			if vs := c.Header.Values(n); len(vs) > 0 {
				kept[http.CanonicalHeaderKey(n)] = append([]string(nil), vs...)
			}
		}
		c.Header = kept
	}
	client, _, _ := strings.Cut(req.RemoteAddr, ":")
	if prior, ok := req.Header["X-Forwarded-For"]; ok && mw.TrustForwardHeader {
		client = strings.Join(prior, ", ") + ", " + client
	}
	c.Header.Set("X-Forwarded-For", client)
	pick := func(name, real string) {
		if v := req.Header.Get(name); v != "" && mw.TrustForwardHeader {
			real = v
		}
		c.Header.Set(name, real)
	}
	pick("X-Forwarded-Method", req.Method)
	pick("X-Forwarded-Proto", "http")
	pick("X-Forwarded-Host", req.Host)
	pick("X-Forwarded-Uri", req.URL.RequestURI())
	return c
}

// forward is what Traefik does with a 2xx answer: authResponseHeaders and
// authResponseHeadersRegex replace the request's headers with the answer's.
func (mw traefikForwardAuth) forward(req *http.Request, a answer) {
	for _, n := range mw.AuthResponseHeaders {
		k := http.CanonicalHeaderKey(n)
		req.Header.Del(k)
		if len(a.header[k]) > 0 {
			req.Header[k] = append([]string(nil), a.header[k]...)
		}
	}
	if mw.AuthResponseHeadersRegex != "" {
		re := regexp.MustCompile(mw.AuthResponseHeadersRegex)
		for k := range req.Header {
			if re.MatchString(k) {
				req.Header.Del(k)
			}
		}
		for k, vs := range a.header {
			if re.MatchString(k) {
				req.Header[k] = append([]string(nil), vs...)
			}
		}
	}
}

// behindTraefik runs req through the documented middleware: the check, then on 2xx the
// request with the answer's headers to the upstream.
func behindTraefik(t *testing.T, h *harness, mw traefikForwardAuth, req *http.Request) answer {
	t.Helper()
	a := h.serve(mw.check(req))
	if a.status/100 == 2 {
		mw.forward(req, a)
		api := h.ups["api"]
		out, err := http.NewRequest(req.Method, api.srv.URL+req.URL.RequestURI(), req.Body)
		if err != nil {
			t.Fatal(err)
		}
		out.Header = req.Header
		resp, err := http.DefaultClient.Do(out)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	return a
}

// TestReview01_TraefikForwardAuthDecidesTheRealRequest: behind Traefik as documented
// (trustForwardHeader false, headers: traefik), the client's own X-Forwarded-* and
// X-Original-* never choose what is decided: a credential-less or reports:read POST to
// reports-generate claiming "GET /health" is refused and never reaches the upstream.
func TestReview01_TraefikForwardAuthDecidesTheRealRequest(t *testing.T) {
	mw := documentedTraefik(t)
	if mw.TrustForwardHeader {
		t.Fatalf("the documented Traefik middleware trusts the client's X-Forwarded-* (trustForwardHeader: true)")
	}
	h, admin := forwardAuthGateway(t, "traefik")
	api := h.ups["api"]
	reader := h.createKeyWith(admin, `{"name":"reader","scopes":["reports:read"]}`)
	spoof := []string{"X-Original-Method: GET", "X-Original-URI: /health"}

	a := behindTraefik(t, h, mw, clientRequest("POST", "/api/v1/reports/generate/", spoof...))
	assertRejected(t, a, http.StatusUnauthorized, "missing_credentials")
	a = behindTraefik(t, h, mw, clientRequest("POST", "/api/v1/reports/generate/", append(spoof, "X-API-Key: "+reader.Key)...))
	assertRejected(t, a, http.StatusForbidden, "insufficient_scope")
	// Without authRequestHeaders Traefik copies every client header: the client's nginx pair
	// then makes the check ambiguous, and it is refused rather than read.
	all := mw
	all.AuthRequestHeaders = nil
	a = behindTraefik(t, h, all, clientRequest("GET", "/health", spoof...))
	assertRejected(t, a, http.StatusBadRequest, "malformed_request")
	// The gateway configured for nginx, Traefik in front: every check is refused, never
	// decided on the client's pair.
	hn, _ := forwardAuthGateway(t, "nginx")
	a = behindTraefik(t, hn, mw, clientRequest("GET", "/health"))
	assertRejected(t, a, http.StatusBadRequest, "malformed_request")
	assertNoRequests(t, api, hn.ups["api"])

	// The real request decides: a public GET passes with no identity.
	if a := behindTraefik(t, h, mw, clientRequest("GET", "/health", spoof...)); a.status != http.StatusOK || a.header.Get("X-Auth-Method") != "" {
		t.Errorf("GET /health behind Traefik: %d %s, X-Auth-Method %q", a.status, a.body, a.header.Get("X-Auth-Method"))
	}
}

// TestReview02_TraefikIdentityHeadersNeverForged: behind Traefik as documented, every
// client X-Auth-* header is replaced by the gateway's (or removed) before the upstream.
func TestReview02_TraefikIdentityHeadersNeverForged(t *testing.T) {
	mw := documentedTraefik(t)
	h, admin := forwardAuthGateway(t, "traefik")
	api := h.ups["api"]
	reader := h.createKeyWith(admin, `{"name":"reader","scopes":["reports:read"]}`)
	cases := []struct {
		name, target, credential string
		want                     map[string]string
	}{
		{"public route", "/health", "", map[string]string{}},
		{"API key", "/api/v1/reports/", "X-API-Key: " + reader.Key, map[string]string{"X-Auth-Method": "api_key",
			"X-Auth-Key-Id": reader.ID, "X-Auth-Scopes": "reports:read", "X-Auth-Environment": "live"}},
		{"external JWT with an organisation", "/api/v1/reports/", "Authorization: Bearer " + orgToken(t), map[string]string{
			"X-Auth-Method": "jwt", "X-Auth-Subject": "u-1", "X-Auth-Scopes": "reports:read", "X-Auth-Org": "acme",
			"X-Auth-Environment": "live", "X-Auth-Issuer": "https://hs.example.com/"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			api.reset()
			var hs []string
			if tc.credential != "" {
				hs = append(hs, tc.credential)
			}
			req := clientRequest("GET", tc.target, hs...)
			req.Header["X_auth_org"] = []string{"evil-corp"} // the CGI spelling of X-Auth-Org
			a := behindTraefik(t, h, mw, req)
			if a.status != http.StatusOK {
				t.Fatalf("%d %s", a.status, a.body)
			}
			reqs := api.requests()
			if len(reqs) != 1 {
				t.Fatalf("upstream saw %d requests, want 1", len(reqs))
			}
			assertIdentity(t, reqs[0].Header, a.header, tc.want)
		})
	}
}

// assertIdentity checks the X-Auth-* headers an upstream saw: exactly the gateway's
// answer, which is want (X-Auth-Subject of an API key is whatever the gateway answered),
// and no forged value anywhere.
func assertIdentity(t *testing.T, got, answered http.Header, want map[string]string) {
	t.Helper()
	for _, name := range identityHeaders {
		w, ok := want[name]
		if name == "X-Auth-Subject" && want["X-Auth-Method"] == "api_key" {
			w, ok = answered.Get(name), true
		}
		vs := got.Values(name)
		switch {
		case !ok && len(vs) != 0:
			t.Errorf("%s reached the upstream as %q, want it absent", name, vs)
		case ok && (len(vs) != 1 || vs[0] != w):
			t.Errorf("%s = %q at the upstream, want exactly [%q]", name, vs, w)
		}
		if answered.Get(name) != w {
			t.Errorf("the gateway answered %s = %q, want %q", name, answered.Get(name), w)
		}
	}
	for name, vs := range got {
		for _, v := range vs {
			if strings.Contains(v, "evil-corp") || v == "admin" {
				t.Errorf("a forged value reached the upstream: %s: %s", name, v)
			}
		}
	}
}

// envoyCheck is the check request Envoy's ext_authz filter sends over HTTP for client
// request req with path_prefix /authz: the original method, /authz + the original path
// and query, the original Host, and the client's headers (only allowed ones when
// allowedOnly; Authorization always).
func envoyCheck(req *http.Request, allowedOnly bool) *http.Request {
	c := httptest.NewRequest(req.Method, "/authz"+req.URL.RequestURI(), nil)
	c.RemoteAddr, c.Host = proxyPeer, req.Host
	for k, vs := range req.Header {
		switch {
		case !allowedOnly, k == "Authorization", k == "X-Api-Key", k == "X-Request-Id":
			c.Header[k] = append([]string(nil), vs...)
		}
	}
	client, _, _ := strings.Cut(req.RemoteAddr, ":")
	c.Header.Set("X-Forwarded-For", client) // use_remote_address: true
	return c
}

// TestReview01_EnvoyForwardAuthReadsTheCheckRequest: with headers: envoy the decision is
// on the check request's own method and path, which Envoy sets; no header names it, and a
// check request carrying one is refused. A path that would clean to a route of its own
// ("/authz/../api/...") is still a check request, never proxied.
func TestReview01_EnvoyForwardAuthReadsTheCheckRequest(t *testing.T) {
	h, admin := forwardAuthGateway(t, "envoy")
	api := h.ups["api"]
	reader := h.createKeyWith(admin, `{"name":"reader","scopes":["reports:read"]}`)
	generator := h.createKeyWith(admin, `{"name":"generator","scopes":["reports:generate"]}`)
	spoof := []string{"X-Original-Method: GET", "X-Original-URI: /health"}

	assertRejected(t, h.serve(envoyCheck(clientRequest("POST", "/api/v1/reports/generate/", spoof...), true)),
		http.StatusUnauthorized, "missing_credentials")
	assertRejected(t, h.serve(envoyCheck(clientRequest("POST", "/api/v1/reports/generate/", append(spoof, "X-API-Key: "+reader.Key)...), true)),
		http.StatusForbidden, "insufficient_scope")
	// Without allowed_headers Envoy passes the client's headers: refused, not read.
	assertRejected(t, h.serve(envoyCheck(clientRequest("GET", "/health"), false)), http.StatusBadRequest, "malformed_request")
	// Not Envoy's form: the bare path, and a path that only cleans into the subtree.
	assertRejected(t, h.do("GET", "/authz", proxyPeer), http.StatusBadRequest, "malformed_request")
	assertRejected(t, h.do("GET", "/x/../authz/health", proxyPeer), http.StatusBadRequest, "malformed_request")
	// From anyone but the proxy, a check request is refused.
	assertRejected(t, h.do("GET", "/authz/health", "198.51.100.7:1"), http.StatusForbidden, "ip_not_allowed")
	// "/authz/../api/..." would clean to the route itself; it is a check request, never
	// forwarded, and as Envoy forwards the original path as sent ("/../api/..."), one that
	// cleaning would change is refused rather than decided.
	assertRejected(t, h.do("POST", "/authz/../api/v1/reports/generate/", proxyPeer, "X-API-Key: "+generator.Key),
		http.StatusBadRequest, "malformed_request")
	a := h.do("POST", "/authz/api/v1/reports/generate/", proxyPeer, "X-API-Key: "+generator.Key)
	if a.status != http.StatusOK || len(a.body) != 0 || a.header.Get("X-Auth-Scopes") != "reports:generate" {
		t.Errorf("POST /authz/api/v1/reports/generate/: %d %q, scopes %q; want a 200 decision", a.status, a.body, a.header.Get("X-Auth-Scopes"))
	}
	assertNoRequests(t, api)

	// The real request decides.
	if a := h.serve(envoyCheck(clientRequest("GET", "/health", spoof...), true)); a.status != http.StatusOK || a.header.Get("X-Auth-Method") != "" {
		t.Errorf("GET /health: %d %s", a.status, a.body)
	}
	a = h.serve(envoyCheck(clientRequest("GET", "/api/v1/reports/7/?page=2", "Authorization: Bearer "+orgToken(t)), true))
	if a.status != http.StatusOK || a.header.Get("X-Auth-Org") != "acme" {
		t.Errorf("GET a report with a JWT: %d %s, org %q", a.status, a.body, a.header.Get("X-Auth-Org"))
	}
	assertNoRequests(t, api)
}

// spellings are every way of writing name with '-' or '_' between its words: PHP, Rack and
// WSGI servers read them all as the same variable (HTTP_X_HTTP_METHOD_OVERRIDE).
func spellings(name string) []string {
	out := []string{""}
	for i, word := range strings.Split(name, "-") {
		var next []string
		for _, s := range out {
			if i == 0 {
				next = append(next, word)
				continue
			}
			next = append(next, s+"-"+word, s+"_"+word)
		}
		out = next
	}
	return out
}

// TestReview03_ProxyExamplesRemoveEveryOverrideSpelling: Traefik and Envoy pass header
// names with '_' on, and a CGI-style upstream reads "X_HTTP_Method_Override: DELETE" as
// the method override the gateway never checked scopes for. Before the fix the Traefik
// example removed only the '-' spellings, and the Envoy example let "x_auth_org" and
// "x_http_method_override" through its exact-name header_mutation.
func TestReview03_ProxyExamplesRemoveEveryOverrideSpelling(t *testing.T) {
	md, err := os.ReadFile("../docs/forward-auth.md")
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "X-Original-URL", "X-Rewrite-URL"}

	blocks := nginxtest.FencedBlocks(nginxtest.Section(string(md), "## Traefik"), "yaml")
	if len(blocks) != 1 {
		t.Fatalf("want one yaml block under \"## Traefik\", found %d", len(blocks))
	}
	var traefik struct {
		HTTP struct {
			Middlewares map[string]struct {
				Headers struct {
					CustomRequestHeaders map[string]*string `yaml:"customRequestHeaders"`
				} `yaml:"headers"`
			} `yaml:"middlewares"`
		} `yaml:"http"`
	}
	if err := yaml.Unmarshal([]byte(blocks[0]), &traefik); err != nil {
		t.Fatal(err)
	}
	removed := map[string]bool{}
	for k, v := range traefik.HTTP.Middlewares["authgate-strip"].Headers.CustomRequestHeaders {
		if v != nil && *v == "" {
			removed[http.CanonicalHeaderKey(k)] = true // Traefik deletes by the canonical name
		}
	}
	for _, n := range names {
		for _, s := range spellings(n) {
			if !removed[http.CanonicalHeaderKey(s)] {
				t.Errorf("Traefik example: authgate-strip does not remove %s", s)
			}
		}
	}

	blocks = nginxtest.FencedBlocks(nginxtest.Section(string(md), "## Envoy"), "yaml")
	if len(blocks) != 1 {
		t.Fatalf("want one yaml block under \"## Envoy\", found %d", len(blocks))
	}
	var envoy struct {
		Common struct {
			Underscores string `yaml:"headers_with_underscores_action"`
		} `yaml:"common_http_protocol_options"`
		Filters []struct {
			Name   string `yaml:"name"`
			Config struct {
				Mutations struct {
					Request []struct {
						Remove string `yaml:"remove"`
					} `yaml:"request_mutations"`
				} `yaml:"mutations"`
			} `yaml:"typed_config"`
		} `yaml:"http_filters"`
	}
	if err := yaml.Unmarshal([]byte(blocks[0]), &envoy); err != nil {
		t.Fatal(err)
	}
	if envoy.Common.Underscores != "REJECT_REQUEST" {
		t.Errorf("Envoy example: headers_with_underscores_action = %q, want REJECT_REQUEST", envoy.Common.Underscores)
	}
	envoyRemoved := map[string]bool{}
	for _, f := range envoy.Filters {
		for _, m := range f.Config.Mutations.Request {
			envoyRemoved[strings.ToLower(m.Remove)] = true
		}
	}
	for _, n := range append(names, identityHeaders...) {
		if !envoyRemoved[strings.ToLower(n)] {
			t.Errorf("Envoy example: header_mutation does not remove %s", n)
		}
	}
}
