package gateway_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/gateway/admin"
	"github.com/authgate/authgate/gateway/console"
	"github.com/authgate/authgate/gateway/user"
)

const consoleRootEmail, consoleRootPass = "root@example.com", "console root password"

// consoleGateway is an in-process gateway on the memory store with the built-in issuer, a
// bootstrap admin user and, when on, the web console.
func consoleGateway(t *testing.T, on bool) *harness {
	t.Helper()
	yaml := gatewayHeader + `issuer:
  enabled: true
  name: authgate-console
  signing_key_file: "` + filepath.Join(t.TempDir(), "key.pem") + `"
auth_api: {prefix: /api/auth}
bootstrap:
  admin_email: ` + consoleRootEmail + `
  admin_password: "` + consoleRootPass + `"
policy:
  roles:
    admin: ["*"]
`
	if on {
		yaml += "console: {enabled: true, path: /console/}\n"
	}
	cfg, err := config.Parse("console.yaml", []byte(yaml), func(string) string { return "" })
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, yaml)
	}
	s, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
		PasswordParams: &user.TestParams})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	return &harness{t: t, s: s, reg: prometheus.NewRegistry()}
}

// consoleCookie is the value of the console cookie a answer sets; it fails without one.
func consoleCookie(t *testing.T, what string, a answer) string {
	t.Helper()
	sc := a.header.Values("Set-Cookie")
	if len(sc) != 1 {
		t.Fatalf("%s: Set-Cookie %q", what, sc)
	}
	c, err := http.ParseSetCookie(sc[0])
	if err != nil || c.Name != console.CookieName || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode ||
		c.Path != "/console/session/" || c.Value == "" {
		t.Fatalf("%s: cookie %q (%v)", what, sc[0], err)
	}
	return c.Value
}

func TestConsoleLoginListRefresh(t *testing.T) {
	h := consoleGateway(t, true)
	const xrw = "X-Requested-With: authgate-console"

	page := h.do("GET", "/console/", "")
	if page.status != http.StatusOK || !strings.Contains(string(page.body), `<script src="app.js" defer></script>`) {
		t.Fatalf("GET /console/: %d %.200s", page.status, page.body)
	}
	if got := page.header.Get("Content-Security-Policy"); got != console.CSP {
		t.Errorf("CSP %q", got)
	}
	if js := h.do("GET", "/console/app.js", ""); js.status != http.StatusOK || js.header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("app.js: %d %q", js.status, js.header.Get("Content-Type"))
	}

	// Without the CSRF header: refused, nothing spent.
	assertRejected(t, h.jcall("POST", "/console/session/login", map[string]string{"email": consoleRootEmail, "password": consoleRootPass}),
		http.StatusForbidden, "csrf")

	in := h.jcall("POST", "/console/session/login", map[string]string{"email": consoleRootEmail, "password": consoleRootPass}, xrw)
	wantStatus(t, "console login", in, http.StatusOK)
	c1 := consoleCookie(t, "login", in)
	if strings.Contains(string(in.body), c1) || strings.Contains(string(in.body), "refresh") {
		t.Errorf("login answer carries the refresh token: %s", in.body)
	}
	var sess console.SessionAnswer
	if err := json.Unmarshal(in.body, &sess); err != nil || sess.Access == "" || sess.User == nil || sess.User.Email != consoleRootEmail {
		t.Fatalf("login answer %s (%v)", in.body, err)
	}

	// The access token works on the management API: create a key, then list it.
	cr := h.jcall("POST", "/api/auth/api-keys/", map[string]any{"name": "from-console", "expires_in_days": 30}, bearer(sess.Access))
	wantStatus(t, "create key", cr, http.StatusCreated)
	list := func(access string) []admin.KeyView {
		t.Helper()
		a := h.jcall("GET", "/api/auth/api-keys/?q=from-console&sort=name&order=asc", nil, bearer(access))
		wantStatus(t, "list keys", a, http.StatusOK)
		var page struct {
			Keys []admin.KeyView `json:"keys"`
		}
		if err := json.Unmarshal(a.body, &page); err != nil {
			t.Fatal(err)
		}
		return page.Keys
	}
	if ks := list(sess.Access); len(ks) != 1 || ks[0].Name != "from-console" || ks[0].CreatedBy != sess.User.ID {
		t.Fatalf("listed %+v", ks)
	}

	// Refresh through the cookie: a new access token that works, a rotated cookie.
	rf := h.jcall("POST", "/console/session/refresh", nil, xrw, "Cookie: "+console.CookieName+"="+c1)
	wantStatus(t, "console refresh", rf, http.StatusOK)
	c2 := consoleCookie(t, "refresh", rf)
	if c2 == c1 {
		t.Fatal("the cookie was not rotated")
	}
	var ra console.SessionAnswer
	if err := json.Unmarshal(rf.body, &ra); err != nil || ra.Access == "" || ra.Access == sess.Access {
		t.Fatalf("refresh answer %s (%v)", rf.body, err)
	}
	if ks := list(ra.Access); len(ks) != 1 {
		t.Fatalf("listed with the refreshed token: %+v", ks)
	}

	// Logout with the newest cookie: the access token is revoked, the cookie cleared.
	out := h.jcall("POST", "/console/session/logout", nil, xrw, bearer(ra.Access), "Cookie: "+console.CookieName+"="+c2)
	wantStatus(t, "console logout", out, http.StatusNoContent)
	if sc := out.header.Get("Set-Cookie"); !strings.Contains(sc, "Max-Age=0") {
		t.Errorf("logout Set-Cookie %q", sc)
	}
	assertRejected(t, h.jcall("GET", "/api/auth/api-keys/", nil, bearer(ra.Access)), http.StatusUnauthorized, "revoked_token")
	assertRejected(t, h.jcall("POST", "/console/session/refresh", nil, xrw, "Cookie: "+console.CookieName+"="+c2),
		http.StatusUnauthorized, "invalid_token")
}

func TestConsoleOff(t *testing.T) {
	h := consoleGateway(t, false)
	assertRejected(t, h.do("GET", "/console/", ""), http.StatusNotFound, "no_route")
	assertRejected(t, h.jcall("POST", "/console/session/login", map[string]string{"email": consoleRootEmail, "password": consoleRootPass},
		"X-Requested-With: authgate-console"), http.StatusNotFound, "no_route")
}
