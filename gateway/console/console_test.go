package console_test

import (
	"bytes"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/console"
)

const wantCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func TestAssetsServed(t *testing.T) {
	e := newEnv(t, 0)
	js, err := os.ReadFile("assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	css, err := os.ReadFile("assets/app.css")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		target, ctype, cache string
		body                 []byte // nil: index.html, checked apart
	}{
		{"/console/", "text/html; charset=utf-8", "no-store", nil},
		{"/console/index.html", "text/html; charset=utf-8", "no-store", nil},
		{"/console/app.js", "text/javascript; charset=utf-8", "no-cache", js},
		{"/console/app.css", "text/css; charset=utf-8", "no-cache", css},
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			w := e.serve(req("GET", tc.target, nil))
			if w.Code != http.StatusOK {
				t.Fatalf("status %d", w.Code)
			}
			h := w.Header()
			want := map[string]string{"Content-Security-Policy": wantCSP, "X-Content-Type-Options": "nosniff",
				"Referrer-Policy": "no-referrer", "Content-Type": tc.ctype, "Cache-Control": tc.cache}
			for k, v := range want {
				if got := h.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if tc.body != nil && !bytes.Equal(w.Body.Bytes(), tc.body) {
				t.Errorf("body differs from the asset")
			}
			if tc.body == nil {
				b := w.Body.String()
				if !strings.Contains(b, `data-api="/api/auth" data-base="/console/"`) || strings.Contains(b, "__") {
					t.Errorf("index.html placeholders not filled: %s", b[:min(len(b), 600)])
				}
			}
		})
	}
	if console.CSP != wantCSP {
		t.Errorf("console.CSP = %q", console.CSP)
	}
	head := e.serve(req("HEAD", "/console/app.js", nil))
	if head.Code != http.StatusOK || head.Body.Len() != 0 {
		t.Errorf("HEAD: %d, %d bytes", head.Code, head.Body.Len())
	}
}

func TestAssetErrors(t *testing.T) {
	e := newEnv(t, 0)
	nf := e.serve(req("GET", "/console/secret.txt", nil))
	wantError(t, "unknown asset", nf, http.StatusNotFound, "not_found")
	if nf.Header().Get("Content-Security-Policy") != wantCSP {
		t.Error("a 404 went without the CSP")
	}
	wantError(t, "traversal", e.serve(req("GET", "/console/../console/app.js.map", nil)), http.StatusNotFound, "not_found")
	post := e.serve(req("POST", "/console/app.js", nil))
	wantError(t, "POST asset", post, http.StatusMethodNotAllowed, "method_not_allowed")
	if got := post.Header().Get("Allow"); got != "GET, HEAD" {
		t.Errorf("Allow %q", got)
	}
	red := e.serve(req("GET", "/console", nil))
	if red.Code != http.StatusMovedPermanently || red.Header().Get("Location") != "/console/" {
		t.Errorf("/console: %d Location %q", red.Code, red.Header().Get("Location"))
	}
}

func TestServes(t *testing.T) {
	e := newEnv(t, 0)
	for target, want := range map[string]bool{
		"/console/": true, "/console": true, "/console/app.js": true, "/console/session/login": true,
		"/consoles": false, "/api/auth/login/": false, "/": false, "/x/console/": false,
	} {
		if got := e.c.Serves(httptest.NewRequest("GET", target, nil)); got != want {
			t.Errorf("Serves(%s) = %v, want %v", target, got, want)
		}
	}
}

func TestNewOptions(t *testing.T) {
	h := http.NotFoundHandler()
	for _, tc := range []struct {
		name string
		o    console.Options
	}{
		{"path without trailing slash", console.Options{Path: "/console", Login: h, AuthPrefix: "/api/auth"}},
		{"relative path", console.Options{Path: "console/", Login: h, AuthPrefix: "/api/auth"}},
		{"no login", console.Options{Path: "/console/", AuthPrefix: "/api/auth"}},
		{"prefix with slash", console.Options{Path: "/console/", Login: h, AuthPrefix: "/api/auth/"}},
	} {
		if _, err := console.New(tc.o); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if _, err := console.New(console.Options{Path: "/c/", Login: h, AuthPrefix: "/a", Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Errorf("good options: %v", err)
	}
}

// The CSP forbids inline script and style; the assets must not need them, and must never
// parse data as HTML.
func TestAssetsHaveNothingInline(t *testing.T) {
	checks := []struct {
		name string
		re   *regexp.Regexp
	}{
		{"inline script body", regexp.MustCompile(`(?is)<script[^>]*>\s*[^<\s]`)},
		{"script without src", regexp.MustCompile(`(?i)<script(?:\s+(?:type|defer|async)(?:="[^"]*")?)*\s*>`)},
		{"style attribute", regexp.MustCompile(`(?i)\sstyle\s*=`)},
		{"style element", regexp.MustCompile(`(?i)<style`)},
		{"event handler attribute", regexp.MustCompile(`(?i)\son[a-z]+\s*=`)},
		{"javascript: URL", regexp.MustCompile(`(?i)javascript:`)},
		{"innerHTML", regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write`)},
		{"eval", regexp.MustCompile(`\beval\(|new Function\(|setTimeout\(\s*['"]`)},
		{"external URL", regexp.MustCompile(`(?i)(src|href)\s*=\s*"(https?:)?//`)},
	}
	err := fs.WalkDir(os.DirFS("assets"), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(filepath.Join("assets", p))
		if err != nil {
			return err
		}
		for _, c := range checks {
			if c.name == "event handler attribute" && !strings.HasSuffix(p, ".html") {
				continue // JS has no attributes; addEventListener is what it uses
			}
			if loc := c.re.FindIndex(b); loc != nil {
				t.Errorf("%s: %s at %q", p, c.name, b[loc[0]:min(loc[1]+20, len(b))])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The checks can fail: each matches what it forbids.
	for bad, name := range map[string]string{
		`<script>alert(1)</script>`: "inline script body", `<div style="x">`: "style attribute",
		`<a onclick="x">`: "event handler attribute", `el.innerHTML = data`: "innerHTML",
	} {
		for _, c := range checks {
			if c.name == name && !c.re.MatchString(bad) {
				t.Errorf("check %q does not catch %q", name, bad)
			}
		}
	}
}

func TestAppJSSyntax(t *testing.T) {
	node := findNode(t, "app.js syntax not checked")
	out, err := exec.Command(node, "--check", "assets/app.js").CombinedOutput()
	if err != nil {
		t.Fatalf("node --check app.js: %v\n%s", err, out)
	}
}

// TestAppJSFlow runs app.js under node against a stub DOM and fetch (testdata/smoke.js):
// restore, sign in, the list with one refresh on expired_token, create with the key shown
// once and copied, every row action, sign out.
func TestAppJSFlow(t *testing.T) {
	node := findNode(t, "app.js not exercised")
	out, err := exec.Command(node, "testdata/smoke.js", "assets/app.js").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("node testdata/smoke.js: %v\n%s", err, out)
	}
}

// FuzzServeHTTP: whatever the path, method and headers, the console answers with its
// security headers and never a 5xx, and sets a cookie only on a successful session call.
func FuzzServeHTTP(f *testing.F) {
	for _, s := range []string{"", "app.js", "session/login", "session/refresh", "session/logout", "session/", "index.html/..", "%2e%2e/"} {
		f.Add("GET", s, "authgate-console", "rt_x")
		f.Add("POST", s, "authgate-console", "")
	}
	e := newEnv(f, 0)
	f.Fuzz(func(t *testing.T, method, rel, xrw, cookie string) {
		r, err := http.NewRequest(method, "http://gw/console/"+rel, nil)
		if err != nil {
			return
		}
		r = r.WithContext(req("GET", "/", nil).Context())
		r.Header.Set("X-Requested-With", xrw)
		r.Header.Set("Cookie", console.CookieName+"="+cookie)
		w := httptest.NewRecorder()
		e.c.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %q: %d %s", method, rel, w.Code, w.Body)
		}
		if w.Header().Get("Content-Security-Policy") != wantCSP || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%s %q: security headers missing", method, rel)
		}
		for _, sc := range w.Result().Header.Values("Set-Cookie") {
			if !strings.Contains(sc, "Max-Age=0") {
				t.Fatalf("%s %q set a live cookie: %q", method, rel, sc)
			}
		}
	})
}

// findNode returns node's path, or skips the test loudly (fails it with
// AUTHGATE_REQUIRE_NODE=1, as CI sets).
func findNode(t *testing.T, what string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		return node
	}
	if os.Getenv("AUTHGATE_REQUIRE_NODE") == "1" {
		t.Fatalf("node is not on PATH and AUTHGATE_REQUIRE_NODE=1: %s", what)
	}
	t.Skipf("SKIPPED: node is not on PATH; %s", what)
	return ""
}
