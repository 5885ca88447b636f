package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/console"
	"github.com/authgate/authgate/gateway/issuer"
	"github.com/authgate/authgate/gateway/login"
	"github.com/authgate/authgate/gateway/login/logintest"
	"github.com/authgate/authgate/gateway/ratelimit"
	"github.com/authgate/authgate/gateway/reqinfo"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/user"
)

const (
	path   = "/console/"
	prefix = "/api/auth"
	email  = "alice@example.com"
	pass   = "correct horse battery"
	ttl    = 24 * time.Hour
)

// env is a console in front of a real login handler with in-memory stores.
type env struct {
	c      *console.Console
	lg     *login.Handler
	minter *issuer.Minter
	users  *user.MemStore

	mu      sync.Mutex
	revoked map[string]bool // access token ids revoked by logout
}

func newEnv(t testing.TB, loginLimit int) *env {
	t.Helper()
	ks, _, err := issuer.LoadOrCreateKeySet(filepath.Join(t.TempDir(), "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{users: user.NewMemStore(time.Now), revoked: map[string]bool{}}
	e.minter = &issuer.Minter{Keys: ks, Issuer: "console-test", TTL: time.Hour}
	if loginLimit == 0 {
		loginLimit = 1000
	}
	e.lg, err = login.New(login.Options{
		Prefix: prefix, Issuer: "console-test", Users: e.users, Minter: e.minter, Keys: ks,
		Refresh: issuer.NewMemRefreshStore(nil), RefreshTTL: ttl,
		TOTP:    issuer.NewTOTPChecker(store.NewMemory(time.Now), nil),
		MFA:     func() string { return login.MFAOptional },
		IsAdmin: func(role string) bool { return role == "admin" },
		RevokeAccess: func(_ context.Context, jti string, _ time.Time) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.revoked[jti] = true
			return nil
		},
		RevokeSession: func(_ context.Context, sid string, _ time.Time) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.revoked["sid:"+sid] = true
			return nil
		},
		Tokens: logintest.Sessions(t, ks, "console-test", e.users, func(_ context.Context, jti, sid string) (bool, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			return e.revoked[jti] || sid != "" && e.revoked["sid:"+sid], nil
		}, 5*time.Second),
		Limiter:    ratelimit.NewLocal(ratelimit.LocalOptions{}),
		LoginLimit: func() ratelimit.Limit { return ratelimit.Limit{Requests: loginLimit, Per: time.Minute} },
		Leeway:     5 * time.Second, PasswordParams: user.TestParams, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.c, err = console.New(console.Options{Path: path, Login: e.lg, AuthPrefix: prefix, RefreshTTL: ttl,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e.addUser(t, email, pass, "")
	return e
}

func (e *env) addUser(t testing.TB, mail, pw, totpSecret string) user.User {
	t.Helper()
	h, err := user.HashPassword(pw, user.TestParams)
	if err != nil {
		t.Fatal(err)
	}
	u := user.User{ID: user.NewID(), Email: mail, PasswordHash: h, Role: "admin",
		MFAEnabled: totpSecret != "", TOTPSecret: totpSecret}
	if err := e.users.Create(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

func (e *env) isRevoked(jti string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.revoked[jti]
}

// req builds a request as the pipeline hands it on: with its reqinfo.
func req(method, target string, body any, headers ...string) *http.Request {
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	r := httptest.NewRequest(method, target, rd)
	ctx, info := reqinfo.New(r.Context())
	info.ID = "req-1"
	info.ClientIP = netip.MustParseAddr("192.0.2.1")
	r = r.WithContext(ctx)
	for _, kv := range headers {
		k, v, _ := strings.Cut(kv, ": ")
		r.Header.Add(k, v)
	}
	return r
}

const csrf = "X-Requested-With: authgate-console"

func cookieHeader(v string) string { return "Cookie: " + console.CookieName + "=" + v }

func (e *env) serve(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	e.c.ServeHTTP(w, r)
	return w
}

// errorBody is the JSON error answer.
type errorBody struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

func wantError(t *testing.T, what string, w *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, w.Code, status, w.Body)
	}
	var b errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
		t.Fatalf("%s: body %q: %v", what, w.Body, err)
	}
	if b.Error != code || b.RequestID != "req-1" {
		t.Fatalf("%s: error %q request_id %q, want %q req-1", what, b.Error, b.RequestID, code)
	}
}

// sessionCookie is the one console cookie w sets, as sent ("" and false when none).
func sessionCookie(t *testing.T, w *httptest.ResponseRecorder) (raw string, ok bool) {
	t.Helper()
	sc := w.Result().Header.Values("Set-Cookie")
	switch len(sc) {
	case 0:
		return "", false
	case 1:
		return sc[0], true
	}
	t.Fatalf("%d Set-Cookie headers: %q", len(sc), sc)
	return "", false
}

// cookieValue is the value of the raw Set-Cookie line.
func cookieValue(t *testing.T, raw string) string {
	t.Helper()
	c, err := http.ParseSetCookie(raw)
	if err != nil {
		t.Fatalf("Set-Cookie %q: %v", raw, err)
	}
	return c.Value
}

// login signs in through the console and returns the answer and the refresh cookie value.
func (e *env) login(t *testing.T) (console.SessionAnswer, string) {
	t.Helper()
	w := e.serve(req("POST", path+"session/login", map[string]string{"email": email, "password": pass}, csrf))
	if w.Code != http.StatusOK {
		t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	raw, ok := sessionCookie(t, w)
	if !ok {
		t.Fatal("login set no cookie")
	}
	var a console.SessionAnswer
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
		t.Fatal(err)
	}
	return a, cookieValue(t, raw)
}
