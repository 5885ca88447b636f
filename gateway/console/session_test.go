package console_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/authgate/authgate/gateway/console"
)

func TestSessionLoginSetsCookie(t *testing.T) {
	e := newEnv(t, 0)
	w := e.serve(req("POST", path+"session/login", map[string]string{"email": email, "password": pass}, csrf))
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	raw, ok := sessionCookie(t, w)
	if !ok {
		t.Fatal("no Set-Cookie")
	}
	v := cookieValue(t, raw)
	want := fmt.Sprintf("authgate_console=%s; Path=/console/session/; Max-Age=%d; HttpOnly; Secure; SameSite=Strict",
		v, int(ttl.Seconds()))
	if raw != want {
		t.Errorf("Set-Cookie\n got %q\nwant %q", raw, want)
	}
	if !strings.HasPrefix(v, "rt_") && len(v) < 20 {
		t.Errorf("cookie value %q does not look like a refresh token", v)
	}
	body := w.Body.String()
	if strings.Contains(body, v) || strings.Contains(body, `"refresh"`) {
		t.Errorf("the answer carries the refresh token: %s", body)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(w.Body.Bytes(), &fields); err != nil {
		t.Fatal(err)
	}
	for k := range fields {
		if k != "access" && k != "user" {
			t.Errorf("unexpected field %q in %s", k, body)
		}
	}
	var a console.SessionAnswer
	_ = json.Unmarshal(w.Body.Bytes(), &a)
	c, err := e.minter.Parse(a.Access, 0)
	if err != nil {
		t.Fatalf("access token: %v", err)
	}
	if a.User == nil || a.User.Email != email || c.Email != email || c.Subject != a.User.ID {
		t.Errorf("answer user %+v, token subject %q email %q", a.User, c.Subject, c.Email)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	if csp := w.Header().Get("Content-Security-Policy"); csp != console.CSP {
		t.Errorf("CSP %q", csp)
	}
}

func TestSessionRefreshRotatesCookie(t *testing.T) {
	e := newEnv(t, 0)
	_, c1 := e.login(t)

	refresh := func(cookie string) *http.Response {
		w := e.serve(req("POST", path+"session/refresh", nil, csrf, cookieHeader(cookie)))
		return w.Result()
	}
	w := e.serve(req("POST", path+"session/refresh", nil, csrf, cookieHeader(c1)))
	if w.Code != http.StatusOK {
		t.Fatalf("refresh: %d %s", w.Code, w.Body)
	}
	raw, ok := sessionCookie(t, w)
	if !ok {
		t.Fatal("refresh set no cookie")
	}
	c2 := cookieValue(t, raw)
	if c2 == c1 || c2 == "" {
		t.Fatalf("cookie not rotated: %q", c2)
	}
	if !strings.Contains(raw, "HttpOnly; Secure; SameSite=Strict") || !strings.Contains(raw, "Path=/console/session/") {
		t.Errorf("rotated cookie flags: %q", raw)
	}
	var a map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil || len(a) != 1 || a["access"] == "" {
		t.Fatalf("refresh answer %s (%v)", w.Body, err)
	}
	if _, err := e.minter.Parse(a["access"], 0); err != nil {
		t.Fatalf("refreshed access token: %v", err)
	}

	// The new cookie works once more.
	r3 := refresh(c2)
	if r3.StatusCode != http.StatusOK {
		t.Fatalf("refresh with the rotated cookie: %d", r3.StatusCode)
	}
	// The old one no longer works, and the answer clears the cookie.
	w = e.serve(req("POST", path+"session/refresh", nil, csrf, cookieHeader(c1)))
	wantError(t, "refresh with the spent cookie", w, http.StatusUnauthorized, "invalid_token")
	wantCleared(t, w)
}

func wantCleared(t *testing.T, w interface{ Result() *http.Response }) {
	t.Helper()
	sc := w.Result().Header.Values("Set-Cookie")
	want := "authgate_console=; Path=/console/session/; Max-Age=0; HttpOnly; Secure; SameSite=Strict"
	if len(sc) != 1 || sc[0] != want {
		t.Errorf("Set-Cookie %q, want [%q]", sc, want)
	}
}

func TestSessionRefreshWithoutCookie(t *testing.T) {
	e := newEnv(t, 0)
	for _, tc := range []struct {
		name    string
		headers []string
	}{
		{"no cookie", []string{csrf}},
		{"empty cookie", []string{csrf, cookieHeader("")}},
		{"unknown token", []string{csrf, cookieHeader("rt_nonsense")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := e.serve(req("POST", path+"session/refresh", nil, tc.headers...))
			wantError(t, tc.name, w, http.StatusUnauthorized, "invalid_token")
			wantCleared(t, w)
		})
	}
}

func TestSessionLogout(t *testing.T) {
	e := newEnv(t, 0)
	a, c1 := e.login(t)
	claims, err := e.minter.Parse(a.Access, 0)
	if err != nil {
		t.Fatal(err)
	}
	w := e.serve(req("POST", path+"session/logout", nil, csrf, cookieHeader(c1), "Authorization: Bearer "+a.Access))
	if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
		t.Fatalf("logout: %d %s", w.Code, w.Body)
	}
	wantCleared(t, w)
	if !e.isRevoked(claims.ID) {
		t.Error("the access token was not revoked")
	}
	w = e.serve(req("POST", path+"session/refresh", nil, csrf, cookieHeader(c1)))
	wantError(t, "refresh after logout", w, http.StatusUnauthorized, "invalid_token")
}

// A page whose access token is gone or invalid still ends the cookie's session.
func TestSessionLogoutWithoutAccessToken(t *testing.T) {
	e := newEnv(t, 0)
	_, c1 := e.login(t)
	w := e.serve(req("POST", path+"session/logout", nil, csrf, cookieHeader(c1), "Authorization: Bearer nonsense"))
	if w.Code != http.StatusNoContent {
		t.Fatalf("logout: %d %s", w.Code, w.Body)
	}
	wantCleared(t, w)
	w = e.serve(req("POST", path+"session/refresh", nil, csrf, cookieHeader(c1)))
	wantError(t, "refresh after logout", w, http.StatusUnauthorized, "invalid_token")

	// Neither a token nor a cookie: the login handler's answer, unchanged, and no cookie.
	w = e.serve(req("POST", path+"session/logout", nil, csrf))
	wantError(t, "logout with nothing", w, http.StatusUnauthorized, "missing_credentials")
	if _, ok := sessionCookie(t, w); ok {
		t.Error("a failed logout touched the cookie")
	}
}

func TestSessionCSRF(t *testing.T) {
	e := newEnv(t, 0)
	_, c1 := e.login(t)
	for _, call := range []string{"login", "refresh", "logout"} {
		for _, hdr := range []string{"", "X-Requested-With: XMLHttpRequest", "X-Requested-With: AUTHGATE-CONSOLE"} {
			t.Run(call+"/"+hdr, func(t *testing.T) {
				hs := []string{cookieHeader(c1)}
				if hdr != "" {
					hs = append(hs, hdr)
				}
				w := e.serve(req("POST", path+"session/"+call, map[string]string{"email": email, "password": pass}, hs...))
				wantError(t, call, w, http.StatusForbidden, "csrf")
				if _, ok := sessionCookie(t, w); ok {
					t.Error("a refused call set a cookie")
				}
			})
		}
	}
	// The cookie still works: nothing was spent by the refused calls.
	w := e.serve(req("POST", path+"session/refresh", nil, csrf, cookieHeader(c1)))
	if w.Code != http.StatusOK {
		t.Fatalf("refresh after refused calls: %d %s", w.Code, w.Body)
	}
}

func TestSessionMethodsAndPaths(t *testing.T) {
	e := newEnv(t, 0)
	w := e.serve(req("GET", path+"session/login", nil, csrf))
	wantError(t, "GET login", w, http.StatusMethodNotAllowed, "method_not_allowed")
	if got := w.Header().Get("Allow"); got != "POST" {
		t.Errorf("Allow %q", got)
	}
	wantError(t, "unknown call", e.serve(req("POST", path+"session/whoami", nil, csrf)), http.StatusNotFound, "not_found")
	// With a trailing slash too.
	if w := e.serve(req("POST", path+"session/refresh/", nil, csrf)); w.Code != http.StatusUnauthorized {
		t.Errorf("refresh/: %d", w.Code)
	}
}

func TestSessionLoginErrorsPassThrough(t *testing.T) {
	e := newEnv(t, 3)
	secret := "JBSWY3DPEHPK3PXP"
	e.addUser(t, "mfa@example.com", pass, secret)

	wrong := e.serve(req("POST", path+"session/login", map[string]string{"email": email, "password": "nope"}, csrf))
	wantError(t, "wrong password", wrong, http.StatusUnauthorized, "invalid_login")

	mfa := e.serve(req("POST", path+"session/login", map[string]string{"email": "mfa@example.com", "password": pass}, csrf))
	wantError(t, "no TOTP", mfa, http.StatusUnauthorized, "mfa_required")
	if got := mfa.Header().Get("Www-Authenticate"); !strings.Contains(got, "mfa_required") {
		t.Errorf("WWW-Authenticate %q", got)
	}

	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ok := e.serve(req("POST", path+"session/login", map[string]string{"email": "mfa@example.com", "password": pass, "totp": code}, csrf))
	if ok.Code != http.StatusOK {
		t.Fatalf("login with TOTP: %d %s", ok.Code, ok.Body)
	}

	// The client IP's login limit (3 per minute) is spent: 429 with Retry-After.
	limited := e.serve(req("POST", path+"session/login", map[string]string{"email": email, "password": pass}, csrf))
	wantError(t, "over the limit", limited, http.StatusTooManyRequests, "rate_limited")
	if ra := limited.Header().Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After %q", ra)
	}
	bad := e.serve(req("POST", path+"session/login", map[string]any{"email": email, "password": pass, "extra": 1}, csrf))
	wantError(t, "unknown field", bad, http.StatusBadRequest, "invalid_request")

	for name, w := range map[string]interface{ Result() *http.Response }{"wrong": wrong, "mfa": mfa, "limited": limited, "bad": bad} {
		if sc := w.Result().Header.Values("Set-Cookie"); len(sc) != 0 {
			t.Errorf("%s: Set-Cookie %q", name, sc)
		}
	}
}
