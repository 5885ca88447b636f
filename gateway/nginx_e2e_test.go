package gateway_test

// The forward-auth items of the security review, proven with the real nginx running the
// configuration docs/forward-auth.md documents, copied from the page at test time so the
// documentation cannot drift from what is tested.

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/gateway/nginxtest"
)

// identityHeaders are every X-Auth-* header the gateway defines (X-Auth-Team included,
// which a later version sets): the documented proxy examples must set or blank each.
var identityHeaders = []string{"X-Auth-Method", "X-Auth-Subject", "X-Auth-Key-Id", "X-Auth-Scopes", "X-Auth-Org",
	"X-Auth-Team", "X-Auth-Environment", "X-Auth-Issuer"}

// checkRecorder serves the gateway and keeps each answer it gave a forward-auth check
// request, since nginx shows the client only the status.
type checkRecorder struct {
	next http.Handler
	mu   sync.Mutex
	list []answer
}

func (c *checkRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	c.next.ServeHTTP(rec, r)
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
	c.mu.Lock()
	c.list = append(c.list, answer{status: rec.Code, header: rec.Header().Clone(), body: rec.Body.Bytes()})
	c.mu.Unlock()
}

// take returns the answers since the last take.
func (c *checkRecorder) take() []answer {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.list
	c.list = nil
	return l
}

// nginxFront is nginx with the documented configuration in front of an in-process gateway
// (forward_auth.headers: nginx) and a counting upstream.
type nginxFront struct {
	h      *harness
	api    *upstream
	checks *checkRecorder
	gw     string // the gateway's address, for check requests sent directly
	nginx  string // nginx's address
	admin  string
}

// documentedNginx is the nginx block of docs/forward-auth.md with the upstream and the
// gateway's addresses put in.
func documentedNginx(t *testing.T, upstreamURL, gatewayAddr string) string {
	t.Helper()
	md, err := os.ReadFile("../docs/forward-auth.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := nginxtest.FencedBlocks(nginxtest.Section(string(md), "## nginx"), "nginx")
	if len(blocks) != 1 {
		t.Fatalf("docs/forward-auth.md: want one ```nginx block under \"## nginx\", found %d", len(blocks))
	}
	conf := blocks[0]
	for _, sub := range [][2]string{
		{"proxy_pass http://api;", "proxy_pass " + upstreamURL + ";"},
		{"proxy_pass http://authgate:8080/authz;", "proxy_pass http://" + gatewayAddr + "/authz;"},
	} {
		if n := strings.Count(conf, sub[0]); n != 1 {
			t.Fatalf("docs/forward-auth.md nginx block: want %q exactly once, found %d times:\n%s", sub[0], n, conf)
		}
		conf = strings.Replace(conf, sub[0], sub[1], 1)
	}
	return conf
}

func startNginxFront(t *testing.T) *nginxFront {
	t.Helper()
	admin := newAdminKey(t)
	h := newGateway(t, `client_ip:
  trusted_proxies: ["127.0.0.1/32"]
forward_auth: {enabled: true, path: /authz, headers: nginx}
jwt:
  issuers:
    - issuer: "https://hs.example.com/"
      audiences: ["api"]
      hmac_secret: "`+hmacSecret+`"
      algorithms: ["HS256"]
bootstrap: {admin_key: "`+admin+`"}
`+forwardAuthRoutes, "api")
	checks := &checkRecorder{next: h.s}
	srv := httptest.NewServer(checks)
	t.Cleanup(srv.Close)
	gw := srv.Listener.Addr().String()
	api := h.ups["api"]
	addr := nginxtest.Start(t, documentedNginx(t, api.srv.URL, gw))
	return &nginxFront{h: h, api: api, checks: checks, gw: gw, nginx: addr, admin: admin}
}

// through sends one request to nginx, byte for byte, with body if not empty.
func (f *nginxFront) through(t *testing.T, method, target, body string, headers ...string) answer {
	t.Helper()
	if body != "" {
		headers = append(headers, "Content-Type: application/json", "Content-Length: "+itoa(len(body)))
	}
	return rawRequest(t, f.nginx, requestText(method, target, "api.example.com", headers...)+body)
}

// oneCheck is the one answer the gateway gave nginx since the last call.
func (f *nginxFront) oneCheck(t *testing.T) answer {
	t.Helper()
	l := f.checks.take()
	if len(l) != 1 {
		t.Fatalf("the gateway answered %d check requests, want 1", len(l))
	}
	return l[0]
}

// TestReview01_NginxForwardAuthIgnoresClientForwardedHeaders: behind the documented nginx,
// a client's own X-Forwarded-Method / X-Forwarded-Uri never choose the request the gateway
// decides on. Before the fix the gateway read that pair first, and a credential-less POST
// to reports-generate claiming "GET /health" was decided as the public route and reached
// the upstream with its body.
func TestReview01_NginxForwardAuthIgnoresClientForwardedHeaders(t *testing.T) {
	f := startNginxFront(t)
	reader := f.h.createKeyWith(f.admin, `{"name":"reader","scopes":["reports:read"]}`)
	generator := f.h.createKeyWith(f.admin, `{"name":"generator","scopes":["reports:generate"]}`)
	spoof := []string{"X-Forwarded-Method: GET", "X-Forwarded-Uri: /health"}
	spoofAll := append([]string{"x-forwarded-method: GET", "X-Original-Method: GET", "X-Original-URI: /health"}, spoof...)

	refused := []struct {
		name    string
		headers []string
		status  int
		code    string
	}{
		{"no credential", spoof, http.StatusUnauthorized, "missing_credentials"},
		{"a reports:read key", append([]string{"X-API-Key: " + reader.Key}, spoof...), http.StatusForbidden, "insufficient_scope"},
		{"no credential, every spelling", spoofAll, http.StatusUnauthorized, "missing_credentials"},
		{"a reports:read key, every spelling", append([]string{"X-API-Key: " + reader.Key}, spoofAll...), http.StatusForbidden, "insufficient_scope"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			a := f.through(t, "POST", "/api/v1/reports/generate/", `{"report":"all"}`, tc.headers...)
			if a.status != tc.status {
				t.Errorf("nginx answered %d, want %d (%s)", a.status, tc.status, a.body)
			}
			assertRejected(t, f.oneCheck(t), tc.status, tc.code)
			assertNoRequests(t, f.api)
		})
	}

	// The same requests, honestly: the public route and a key with the scope pass, so the
	// refusals above are the decision, not a broken setup.
	if a := f.through(t, "GET", "/health", ""); a.status != http.StatusOK {
		t.Fatalf("GET /health through nginx: %d %s", a.status, a.body)
	}
	f.checks.take()
	a := f.through(t, "POST", "/api/v1/reports/generate/", `{"report":"all"}`, append([]string{"X-API-Key: " + generator.Key}, spoofAll...)...)
	if a.status != http.StatusOK {
		t.Fatalf("POST with a reports:generate key through nginx: %d %s", a.status, a.body)
	}
	if got := f.oneCheck(t).header.Get("X-Auth-Scopes"); got != "reports:generate" {
		t.Errorf("decided with scopes %q, want reports:generate", got)
	}
	reqs := f.api.requests()
	if len(reqs) != 2 || reqs[1].Method != "POST" || reqs[1].RequestURI != "/api/v1/reports/generate/" {
		t.Errorf("upstream saw %+v, want GET /health then POST /api/v1/reports/generate/", reqs)
	}
	f.api.reset()

	// Asked directly (as a proxy whose configuration forgot to blank the other pair would
	// ask), the gateway refuses both pairs, repeated values and a missing host: it never
	// picks one.
	const nginxPair = "X-Original-Method: POST\r\nX-Original-URI: /api/v1/reports/generate/\r\nX-Forwarded-Host: api.example.com"
	direct := []struct {
		name    string
		headers []string
	}{
		{"both pairs", []string{nginxPair, "X-Forwarded-Method: GET", "X-Forwarded-Uri: /health"}},
		{"the other method only", []string{nginxPair, "X-Forwarded-Method: GET"}},
		{"the other URI, empty", []string{nginxPair, "X-Forwarded-Uri: "}},
		{"only the other pair", []string{"X-Forwarded-Method: GET", "X-Forwarded-Uri: /health", "X-Forwarded-Host: api.example.com"}},
		{"repeated method", []string{nginxPair, "X-Original-Method: GET"}},
		{"repeated URI", []string{nginxPair, "x-original-uri: /health"}},
		{"repeated host", []string{nginxPair, "X-Forwarded-Host: admin.example.com"}},
		{"no host", []string{"X-Original-Method: GET", "X-Original-URI: /health"}},
	}
	for _, tc := range direct {
		t.Run("direct/"+tc.name, func(t *testing.T) {
			a := rawRequest(t, f.gw, requestText("GET", "/authz", f.gw, tc.headers...))
			assertRejected(t, a, http.StatusBadRequest, "malformed_request")
			f.checks.take()
		})
	}
	assertNoRequests(t, f.api)
}

// TestReview02_NginxIdentityHeadersNeverForged: behind the documented nginx, no client
// value of any X-Auth-* header reaches the upstream, on a public route (where there is no
// identity) or an authenticated one (where the gateway's own values arrive). Before the
// fix the example set only X-Auth-Subject, -Scopes and -Key-Id, and a client's X-Auth-Org:
// evil-corp and X-Auth-Method: admin reached the upstream.
func TestReview02_NginxIdentityHeadersNeverForged(t *testing.T) {
	f := startNginxFront(t)
	reader := f.h.createKeyWith(f.admin, `{"name":"reader","scopes":["reports:read"]}`)
	now := time.Now()
	jwt := mint(t, jose.HS256, []byte(hmacSecret), "", map[string]any{"iss": "https://hs.example.com/", "sub": "u-1", "aud": "api",
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "scope": "reports:read", "org": "acme"})

	var forged []string
	for _, name := range identityHeaders {
		forged = append(forged, name+": evil-corp", strings.ToLower(name)+": admin", strings.ToUpper(name)+": evil-corp")
	}
	cases := []struct {
		name       string
		target     string
		credential string
		want       map[string]string // the gateway's values; "" = absent
	}{
		{"public route", "/health", "", map[string]string{}},
		{"API key", "/api/v1/reports/", "X-API-Key: " + reader.Key, map[string]string{"X-Auth-Method": "api_key",
			"X-Auth-Key-Id": reader.ID, "X-Auth-Scopes": "reports:read", "X-Auth-Environment": "live"}},
		{"external JWT with an organisation", "/api/v1/reports/", "Authorization: Bearer " + jwt, map[string]string{
			"X-Auth-Method": "jwt", "X-Auth-Subject": "u-1", "X-Auth-Scopes": "reports:read", "X-Auth-Org": "acme",
			"X-Auth-Environment": "live", "X-Auth-Issuer": "https://hs.example.com/"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.api.reset()
			f.checks.take()
			hs := forged
			if tc.credential != "" {
				hs = append([]string{tc.credential}, forged...)
			}
			if a := f.through(t, "GET", tc.target, "", hs...); a.status != http.StatusOK {
				t.Fatalf("nginx answered %d %s", a.status, a.body)
			}
			check := f.oneCheck(t)
			reqs := f.api.requests()
			if len(reqs) != 1 {
				t.Fatalf("upstream saw %d requests, want 1", len(reqs))
			}
			got := reqs[0].Header
			for _, name := range identityHeaders {
				vs := got.Values(name)
				want := tc.want[name]
				if name == "X-Auth-Subject" && tc.name == "API key" {
					want = check.header.Get(name) // the key's owner, as the gateway answered
				}
				switch {
				case want == "" && len(vs) != 0:
					t.Errorf("%s reached the upstream as %q, want it absent", name, vs)
				case want != "" && (len(vs) != 1 || vs[0] != want):
					t.Errorf("%s = %q at the upstream, want exactly [%q]", name, vs, want)
				}
				if check.header.Get(name) != want {
					t.Errorf("the gateway answered %s = %q, want %q", name, check.header.Get(name), want)
				}
			}
			for name, vs := range got {
				for _, v := range vs {
					if strings.Contains(v, "evil-corp") || v == "admin" {
						t.Errorf("a forged value reached the upstream: %s: %s", name, v)
					}
				}
			}
		})
	}
}

// TestReview03_NginxBlanksMethodOverrideHeaders: behind the documented nginx, a client's
// method-override headers never reach the upstream, since the gateway decided on the
// request line's method and cannot strip what nginx forwards.
func TestReview03_NginxBlanksMethodOverrideHeaders(t *testing.T) {
	f := startNginxFront(t)
	overrides := []string{"X-HTTP-Method-Override: DELETE", "x-http-method: DELETE", "X-Method-Override: DELETE"}
	if a := f.through(t, "GET", "/health", "", overrides...); a.status != http.StatusOK {
		t.Fatalf("GET /health through nginx: %d %s", a.status, a.body)
	}
	reqs := f.api.requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream saw %d requests, want 1", len(reqs))
	}
	for _, name := range []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"} {
		if vs := reqs[0].Header.Values(name); len(vs) != 0 {
			t.Errorf("%s reached the upstream as %q", name, vs)
		}
	}
}

// TestReview01_NginxForwardAuthDecidesThePathNginxForwards: nginx forwards the request-URI
// as the client sent it ($request_uri, raw), so the gateway must not decide on a cleaned
// form of it. Before the fix "GET /api/v1/reports/generate/../../../../health" (or with
// "%2E%2E", ".%2e", "//") was decided as the public health route, and the upstream was
// asked for the raw path, which a server that does not resolve dot segments (Express, a
// prefix-mounted router) serves under /api/v1/reports/.
func TestReview01_NginxForwardAuthDecidesThePathNginxForwards(t *testing.T) {
	f := startNginxFront(t)
	for _, target := range []string{
		"/api/v1/reports/generate/../../../../health",
		"/api/v1/reports/%2E%2E/%2E%2E/%2E%2E/health",
		"/api/v1/reports/.%2e/.%2e/.%2e/health",
		"/api/v1/reports/%2e%2e/%2e%2e/%2e%2e/health",
		"//health",
		"/./health",
		"/health/.",
	} {
		t.Run(target, func(t *testing.T) {
			f.api.reset()
			f.checks.take()
			a := f.through(t, "GET", target, "")
			if a.status == http.StatusOK {
				t.Errorf("nginx answered 200: the gateway allowed a path it decided in another form")
			}
			assertRejected(t, f.oneCheck(t), http.StatusBadRequest, "malformed_request")
			assertNoRequests(t, f.api)
		})
	}
	// The clean path passes, and an escape of an ordinary character is decided decoded.
	for _, target := range []string{"/health", "/%68ealth"} {
		f.api.reset()
		f.checks.take()
		if a := f.through(t, "GET", target, ""); a.status != http.StatusOK {
			t.Errorf("GET %s through nginx: %d %s", target, a.status, a.body)
		}
		if reqs := f.api.requests(); len(reqs) != 1 || reqs[0].RequestURI != target {
			t.Errorf("upstream saw %+v, want GET %s", reqs, target)
		}
	}
}

// TestReview12_NginxBlanksURLOverrideHeaders: behind the documented nginx, a client's
// X-Original-URL / X-Rewrite-URL never reach the upstream: the gateway decided on the
// request line's path, and an upstream that routes by those headers (IIS URL Rewrite,
// older Symfony and Zend) would serve another. Before the fix the example passed them on.
func TestReview12_NginxBlanksURLOverrideHeaders(t *testing.T) {
	f := startNginxFront(t)
	if a := f.through(t, "GET", "/health", "", "X-Original-URL: /api/v1/reports/generate/",
		"x-rewrite-url: /api/v1/reports/generate/", "X-ORIGINAL-URL: /api/v1/reports/"); a.status != http.StatusOK {
		t.Fatalf("GET /health through nginx: %d %s", a.status, a.body)
	}
	reqs := f.api.requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream saw %d requests, want 1", len(reqs))
	}
	for _, name := range []string{"X-Original-Url", "X-Rewrite-Url"} {
		if vs := reqs[0].Header.Values(name); len(vs) != 0 {
			t.Errorf("%s reached the upstream as %q", name, vs)
		}
	}
}
