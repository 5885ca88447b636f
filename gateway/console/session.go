package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/login"
)

// CookieName is the cookie that holds the refresh token. It is HttpOnly, Secure,
// SameSite=Strict and sent only to the session calls: the page's JavaScript never sees
// the refresh token.
const CookieName = "authgate_console"

// CSRFHeader and CSRFValue must be on every session call. A cross-site form cannot set a
// header, and a cross-site fetch that sets one needs a CORS preflight the gateway never
// grants; SameSite=Strict on the cookie is the first defence, this is the second.
const (
	CSRFHeader = "X-Requested-With"
	CSRFValue  = "authgate-console"
)

// SessionAnswer is the answer of session/login and session/refresh: the access token and,
// from login, the user; never the refresh token.
type SessionAnswer struct {
	Access                string          `json:"access"`
	User                  *login.UserJSON `json:"user,omitempty"`
	MFAEnrollmentRequired bool            `json:"mfa_enrollment_required,omitempty"`
}

var errCSRF = &httperr.Error{Status: http.StatusForbidden, Code: "csrf",
	Msg: "console session calls need the header " + CSRFHeader + ": " + CSRFValue}

var errNoSession = &httperr.Error{Status: http.StatusUnauthorized, Code: "invalid_token",
	Msg: "no console session: sign in", Header: http.Header{"Www-Authenticate": {`Bearer error="invalid_token"`}}}

// session serves POST {path}session/{call}.
func (c *Console) session(w http.ResponseWriter, r *http.Request, call string) {
	var fn func(http.ResponseWriter, *http.Request)
	switch call {
	case "login":
		fn = c.login
	case "refresh":
		fn = c.refresh
	case "logout":
		fn = c.logout
	default:
		reject(w, r, &httperr.Error{Status: http.StatusNotFound, Code: "not_found", Msg: "no such console call"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		reject(w, r, methodNotAllowed(r, "POST"))
		return
	}
	if r.Header.Get(CSRFHeader) != CSRFValue {
		reject(w, r, errCSRF)
		return
	}
	fn(w, r)
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	rec := c.call(r, "/login/", r.Body, "")
	if rec.status != http.StatusOK {
		rec.pass(w)
		return
	}
	var ans login.LoginAnswer
	if err := json.Unmarshal(rec.body.Bytes(), &ans); err != nil {
		reject(w, r, fmt.Errorf("console: login answer: %w", err))
		return
	}
	if ans.Refresh != "" {
		c.setCookie(w, ans.Refresh)
	}
	writeJSON(w, SessionAnswer{Access: ans.Access, User: &ans.User, MFAEnrollmentRequired: ans.MFAEnrollmentRequired})
}

func (c *Console) refresh(w http.ResponseWriter, r *http.Request) {
	rt := refreshCookie(r)
	if rt == "" {
		c.clearCookie(w)
		reject(w, r, errNoSession)
		return
	}
	access, next, fail := c.rotate(r, rt)
	if fail != nil {
		if fail.status == http.StatusUnauthorized || fail.status == http.StatusBadRequest {
			c.clearCookie(w) // spent, revoked or reused: the session is over
		}
		fail.pass(w)
		return
	}
	c.setCookie(w, next)
	writeJSON(w, SessionAnswer{Access: access})
}

// rotate spends the refresh token rt: it returns the new access and refresh tokens, or
// the failed answer.
func (c *Console) rotate(r *http.Request, rt string) (access, refresh string, fail *recorder) {
	rec := c.call(r, "/token/refresh/", jsonBody(login.RefreshRequest{Refresh: rt}), "")
	if rec.status != http.StatusOK {
		return "", "", rec
	}
	var ans login.RefreshAnswer
	if err := json.Unmarshal(rec.body.Bytes(), &ans); err != nil {
		return "", "", failed(r, fmt.Errorf("console: refresh answer: %w", err))
	}
	if ans.Access == "" || ans.Refresh == "" {
		return "", "", failed(r, errors.New("console: refresh answer without tokens"))
	}
	return ans.Access, ans.Refresh, nil
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	rt := refreshCookie(r)
	var body io.Reader
	if rt != "" {
		body = jsonBody(login.RefreshRequest{Refresh: rt})
	}
	rec := c.call(r, "/logout/", body, r.Header.Get("Authorization"))
	if rec.status == http.StatusUnauthorized && rt != "" {
		// The page's access token is expired or gone, but the cookie still names the
		// session: end it with a fresh access token of its own.
		access, next, fail := c.rotate(r, rt)
		switch {
		case fail == nil:
			rec = c.call(r, "/logout/", jsonBody(login.RefreshRequest{Refresh: next}), "Bearer "+access)
		case fail.status == http.StatusUnauthorized:
			rec = &recorder{status: http.StatusNoContent, header: http.Header{}} // nothing left to end
		}
	}
	if rec.status != http.StatusNoContent {
		rec.pass(w)
		return
	}
	c.clearCookie(w)
	w.WriteHeader(http.StatusNoContent)
}

// call serves one of the login handler's calls in process, in r's context (the request
// id, the client IP for the login limit), and records the answer.
func (c *Console) call(r *http.Request, path string, body io.Reader, authorization string) *recorder {
	if body == nil {
		body = http.NoBody
	}
	in, err := http.NewRequestWithContext(r.Context(), http.MethodPost, c.o.AuthPrefix+path, body)
	if err != nil {
		return failed(r, fmt.Errorf("console: %w", err))
	}
	in.RemoteAddr, in.Host = r.RemoteAddr, r.Host
	in.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		in.Header.Set("Authorization", authorization)
	}
	rec := &recorder{header: http.Header{}}
	c.o.Login.ServeHTTP(rec, in)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec
}

func (c *Console) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: value, Path: c.o.Path + "session/", MaxAge: maxAge,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode}
}

func (c *Console) setCookie(w http.ResponseWriter, refresh string) {
	http.SetCookie(w, c.cookie(refresh, int(c.o.RefreshTTL.Seconds())))
}

// clearCookie deletes the cookie (Max-Age=0).
func (c *Console) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, c.cookie("", -1))
}

// refreshCookie is the refresh token of the request's cookie, "" for none.
func refreshCookie(r *http.Request) string {
	ck, err := r.Cookie(CookieName)
	if err != nil {
		return ""
	}
	return ck.Value
}

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v) // of plain structs of strings: cannot fail
	return bytes.NewReader(b)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}

// recorder is the ResponseWriter of an in-process call.
type recorder struct {
	status int
	header http.Header
	body   bytes.Buffer
}

func (rc *recorder) Header() http.Header { return rc.header }

func (rc *recorder) WriteHeader(status int) {
	if rc.status == 0 {
		rc.status = status
	}
}

func (rc *recorder) Write(b []byte) (int, error) {
	if rc.status == 0 {
		rc.status = http.StatusOK
	}
	return rc.body.Write(b)
}

// pass writes the recorded answer to w unchanged: status, headers (Retry-After,
// WWW-Authenticate, ...) and body.
func (rc *recorder) pass(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range rc.header {
		h[k] = v
	}
	h.Set("Content-Length", strconv.Itoa(rc.body.Len()))
	w.WriteHeader(rc.status)
	_, _ = w.Write(rc.body.Bytes())
}

// failed is a recorded 500 for an error of the console's own.
func failed(r *http.Request, err error) *recorder {
	rec := &recorder{header: http.Header{}}
	reject(rec, r, err)
	return rec
}
