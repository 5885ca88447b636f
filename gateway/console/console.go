// Package console serves the web console: a small page embedded in the
// binary that signs in with the built-in issuer and manages API keys through the
// management API. The page itself holds no logic of the gateway's: it is static HTML,
// JavaScript and CSS, plus three session calls that keep the refresh token in an HttpOnly
// cookie, out of the page's reach.
package console

import (
	"bytes"
	"cmp"
	"embed"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/reqinfo"
)

//go:embed assets/index.html assets/app.js assets/app.css
var assets embed.FS

// CSP is the Content-Security-Policy of every answer: scripts, styles and calls from the
// gateway's own origin only, nothing inline, no framing.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// defaultRefreshTTL is the cookie's lifetime when Options.RefreshTTL is not set: the
// issuer's default refresh_ttl.
const defaultRefreshTTL = 7 * 24 * time.Hour

// Options configure the Console.
type Options struct {
	// Path is console.path; it ends with "/", e.g. "/console/".
	Path string
	// Login serves the built-in issuer's calls (the *login.Handler); the session calls
	// call it in process.
	Login http.Handler
	// AuthPrefix is auth_api.prefix, e.g. "/api/auth": where Login serves and where the
	// page finds the management API.
	AuthPrefix string
	// RefreshTTL is issuer.refresh_ttl, the session cookie's Max-Age; 0 means 7 days.
	RefreshTTL time.Duration
	// ExpiryDays are the expiries the new-key form offers (api_keys.allowed_expiry_days;
	// 0 = never), and DefaultExpiryDays the one preselected
	// (api_keys.default_expiry_days). Empty: the form offers only the default.
	ExpiryDays        []int
	DefaultExpiryDays int
	Logger            *slog.Logger
}

// asset is one embedded file as served.
type asset struct {
	body        []byte
	contentType string
	noStore     bool
}

// Console serves the page and its session calls. It is safe for concurrent use.
type Console struct {
	o      Options
	assets map[string]asset // by path relative to Options.Path
}

// New returns the Console. Path must start and end with "/"; Login and AuthPrefix are
// required.
func New(o Options) (*Console, error) {
	switch {
	case !strings.HasPrefix(o.Path, "/") || !strings.HasSuffix(o.Path, "/"):
		return nil, fmt.Errorf("console: path must start and end with '/', got %q", o.Path)
	case o.Login == nil:
		return nil, errors.New("console: the login handler is required")
	case !strings.HasPrefix(o.AuthPrefix, "/") || strings.HasSuffix(o.AuthPrefix, "/"):
		return nil, fmt.Errorf("console: auth prefix must start and not end with '/', got %q", o.AuthPrefix)
	}
	if o.RefreshTTL <= 0 {
		o.RefreshTTL = defaultRefreshTTL
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Console{o: o, assets: map[string]asset{}}
	files := []struct {
		name, ctype string
		noStore     bool
	}{
		{"index.html", "text/html; charset=utf-8", true},
		{"app.js", "text/javascript; charset=utf-8", false},
		{"app.css", "text/css; charset=utf-8", false},
	}
	for _, f := range files {
		b, err := assets.ReadFile("assets/" + f.name)
		if err != nil {
			return nil, fmt.Errorf("console: %w", err)
		}
		if f.name == "index.html" {
			// The page learns where the API and the session calls are from data
			// attributes: the CSP allows no inline script to tell it.
			b = bytes.ReplaceAll(b, []byte("__AUTH_PREFIX__"), []byte(html.EscapeString(o.AuthPrefix)))
			b = bytes.ReplaceAll(b, []byte("__CONSOLE_PATH__"), []byte(html.EscapeString(o.Path)))
			b = bytes.ReplaceAll(b, []byte("__EXPIRY_OPTIONS__"), expiryOptions(o.ExpiryDays, o.DefaultExpiryDays))
		}
		c.assets[f.name] = asset{body: b, contentType: f.ctype, noStore: f.noStore}
	}
	c.assets[""] = c.assets["index.html"]
	return c, nil
}

// expiryOptions are the <option>s of the new-key form's expiry: each of days once, in
// ascending order with "never" (0) last, the default selected.
func expiryOptions(days []int, def int) []byte {
	days = append(slices.Clone(days), def)
	slices.SortFunc(days, func(a, b int) int {
		if (a == 0) != (b == 0) { // never last
			return cmp.Compare(b, a)
		}
		return cmp.Compare(a, b)
	})
	var b bytes.Buffer
	for _, d := range slices.Compact(days) {
		label := "never"
		switch {
		case d == 1:
			label = "in 1 day"
		case d > 1:
			label = "in " + strconv.Itoa(d) + " days"
		}
		sel := ""
		if d == def {
			sel = " selected"
		}
		fmt.Fprintf(&b, "\n        <option value=\"%d\"%s>%s</option>", d, sel, label)
	}
	b.WriteString("\n      ")
	return b.Bytes()
}

// Serves reports whether r's path is under the console's path (or is that path without
// its trailing slash).
func (c *Console) Serves(r *http.Request) bool {
	p := r.URL.Path
	return strings.HasPrefix(p, c.o.Path) || p == strings.TrimSuffix(c.o.Path, "/")
}

// ServeHTTP serves the page, its assets and the session calls.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	if r.URL.Path == strings.TrimSuffix(c.o.Path, "/") {
		http.Redirect(w, r, c.o.Path, http.StatusMovedPermanently)
		return
	}
	rel := strings.TrimPrefix(r.URL.Path, c.o.Path)
	if call, ok := strings.CutPrefix(rel, "session/"); ok {
		c.session(w, r, strings.TrimSuffix(call, "/"))
		return
	}
	a, ok := c.assets[rel]
	if !ok {
		reject(w, r, &httperr.Error{Status: http.StatusNotFound, Code: "not_found", Msg: "no such console page"})
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		reject(w, r, methodNotAllowed(r, "GET, HEAD"))
		return
	}
	h.Set("Content-Type", a.contentType)
	if a.noStore {
		h.Set("Cache-Control", "no-store")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(a.body)
	}
}

func methodNotAllowed(r *http.Request, allow string) error {
	return &httperr.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
		Msg: "this path does not accept " + r.Method, Header: http.Header{"Allow": {allow}}}
}

func reject(w http.ResponseWriter, r *http.Request, err error) {
	reqinfo.From(r.Context()).Reject(w, err)
}
