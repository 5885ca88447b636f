package gateway_test

// Regression tests of issue 9, items 4, 8 and 9: an ended access token cannot change how
// its user signs in, reusing a refresh token ends the family's access tokens, and password
// hashing is bounded for the whole process.

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/gateway/login"
	"github.com/authgate/authgate/gateway/store/redistest"
	"github.com/authgate/authgate/gateway/user"
)

const (
	enrollAPI = "/api/auth/mfa/totp/enroll/"
	verifyAPI = "/api/auth/mfa/totp/verify/"
	meAPI     = "/api/auth/users/me/"
)

// reviewReplicas serves two gateways with the issuer on one Redis, and returns the store's
// users too.
func reviewReplicas(t *testing.T) (a, b *liveGW, users *user.Store) {
	t.Helper()
	rs := redistest.Start(t)
	o := issuerOpts(t.TempDir(), nil)
	a, b = serveLive(t, rs, o), serveLive(t, rs, o)
	waitForUser(t, rs, adminEmail)
	return a, b, user.NewStore(rs.Client(t), redisPrefix, time.Now)
}

// createUser makes a user through the users API with g's admin key.
func (g *liveGW) createUser(email, password, role string) user.User {
	g.tb.Helper()
	a := g.call("POST", usersAPI, g.adminKey, map[string]string{"email": email, "password": password, "role": role})
	wantStatus(g.tb, "create user "+email, a, http.StatusCreated)
	return decodeJSON[user.User](g.tb, a)
}

// TestReview04_EndedTokenCannotEnrollTOTP: an admin resets alice's password (ending her
// sessions); her old access token, even with her old password, can no longer enrol TOTP,
// verify it, or set her own password: 401 revoked_token, nothing changes, and alice logs
// in normally with the new password. A live token without its user's current password
// cannot enrol or change the password either.
func TestReview04_EndedTokenCannotEnrollTOTP(t *testing.T) {
	a, b, users := reviewReplicas(t)
	api := a.ups["api"]
	const alicePass, carolPass = "alice's old password", "carol's old password"
	alice := a.createUser("alice@example.com", alicePass, "member")
	carol := a.createUser("carol@example.com", carolPass, "admin") // may PATCH users/me
	la := a.loginAs(alice.Email, alicePass, "")
	lc := a.loginAs(carol.Email, carolPass, "")
	for _, g := range []*liveGW{a, b} { // cached on both replicas
		wantStatus(t, "alice's token before the reset", g.call("GET", "/api/v1/reports/", "", nil, bearer(la.Access)), http.StatusOK)
	}

	// The admin resets both passwords: every session of theirs ends.
	for _, u := range []user.User{alice, carol} {
		wantStatus(t, "reset "+u.Email, a.call("PATCH", usersAPI+u.ID+"/", a.adminKey, map[string]string{"password": "a brand new password"}), http.StatusOK)
	}
	n := api.count()
	for _, g := range []*liveGW{a, b} {
		assertRejected(t, g.call("POST", enrollAPI, "", login.EnrollRequest{CurrentPassword: alicePass}, bearer(la.Access)), http.StatusUnauthorized, "revoked_token")
		assertRejected(t, g.call("POST", verifyAPI, "", map[string]string{"code": "123456"}, bearer(la.Access)), http.StatusUnauthorized, "revoked_token")
		assertRejected(t, g.call("PATCH", meAPI, "", map[string]string{"password": "the attacker's password", "current_password": carolPass},
			bearer(lc.Access)), http.StatusUnauthorized, "revoked_token")
		assertRejected(t, g.call("PATCH", meAPI, "", map[string]any{"mfa_enabled": false, "current_password": carolPass},
			bearer(lc.Access)), http.StatusUnauthorized, "revoked_token")
		assertRejected(t, g.call("POST", logoutAPI, "", nil, bearer(la.Access)), http.StatusUnauthorized, "revoked_token")
	}
	if got := api.count(); got != n {
		t.Errorf("the upstream saw %d requests of the refused calls", got-n)
	}
	for _, u := range []user.User{alice, carol} {
		got, err := users.Get(context.Background(), u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.MFAEnabled || got.TOTPSecret != "" {
			t.Errorf("%s: TOTP changed by an ended token: enabled %v, secret set %v", u.Email, got.MFAEnabled, got.TOTPSecret != "")
		}
		if ok, _ := user.VerifyPassword(got.PasswordHash, "a brand new password"); !ok {
			t.Errorf("%s: the admin's new password was changed by an ended token", u.Email)
		}
	}
	// Alice signs in normally: no TOTP stands in her way.
	la = b.loginAs(alice.Email, "a brand new password", "")

	// A live token alone is not enough: enrolment needs the current password.
	assertRejected(t, a.call("POST", enrollAPI, "", nil, bearer(la.Access)), http.StatusForbidden, "reauth_required")
	assertRejected(t, a.call("POST", enrollAPI, "", login.EnrollRequest{CurrentPassword: alicePass}, bearer(la.Access)), http.StatusForbidden, "reauth_failed")
	if got, err := users.Get(context.Background(), alice.ID); err != nil || got.TOTPSecret != "" || got.MFAEnabled {
		t.Errorf("alice after refused enrolments: %v, secret set %v, enabled %v", err, got.TOTPSecret != "", got.MFAEnabled)
	}
	wantStatus(t, "enroll with the current password", a.call("POST", enrollAPI, "", login.EnrollRequest{CurrentPassword: "a brand new password"}, bearer(la.Access)), http.StatusOK)

	// So does one's own new password, and removing one's own TOTP.
	lc = a.loginAs(carol.Email, "a brand new password", "")
	assertRejected(t, a.call("PATCH", meAPI, "", map[string]string{"password": "the attacker's password"}, bearer(lc.Access)), http.StatusForbidden, "reauth_required")
	assertRejected(t, a.call("PATCH", meAPI, "", map[string]string{"password": "the attacker's password", "current_password": carolPass}, bearer(lc.Access)), http.StatusForbidden, "reauth_failed")
	assertRejected(t, a.call("PATCH", meAPI, "", map[string]any{"mfa_enabled": false}, bearer(lc.Access)), http.StatusForbidden, "reauth_required")
	if got, err := users.Get(context.Background(), carol.ID); err != nil {
		t.Fatal(err)
	} else if ok, _ := user.VerifyPassword(got.PasswordHash, "a brand new password"); !ok {
		t.Errorf("carol's password changed without her current one")
	}
	wantStatus(t, "own new password with the current one", a.call("PATCH", meAPI, "",
		map[string]string{"password": "carol's next password", "current_password": "a brand new password"}, bearer(lc.Access)), http.StatusOK)
	b.loginAs(carol.Email, "carol's next password", "")
	if got := api.count(); got != n {
		t.Errorf("the upstream saw %d requests of the gateway's own calls", got-n)
	}
}

// TestReview08_RefreshReuseRevokesFamilyAccessTokens: login (A1), refresh (A2), then the
// spent refresh token comes back: the family's access tokens A1 and A2 are refused at once
// on both replicas (401 revoked_token), and the upstream sees none of those requests.
// Logout ends the access tokens of its whole session the same way.
func TestReview08_RefreshReuseRevokesFamilyAccessTokens(t *testing.T) {
	a, b, _ := reviewReplicas(t)
	api := a.ups["api"]

	l := a.loginAs(adminEmail, adminPass, "")
	r := b.call("POST", refreshAPI, "", map[string]string{"refresh": l.Refresh})
	wantStatus(t, "refresh", r, http.StatusOK)
	a2 := decodeJSON[login.RefreshAnswer](t, r)
	for _, g := range []*liveGW{a, b} { // cached on both replicas
		for _, tok := range []string{l.Access, a2.Access} {
			wantStatus(t, "the family's tokens before the reuse", g.call("GET", "/api/v1/reports/", "", nil, bearer(tok)), http.StatusOK)
		}
	}
	n := api.count()
	assertRejected(t, a.call("POST", refreshAPI, "", map[string]string{"refresh": l.Refresh}), http.StatusUnauthorized, "invalid_token")
	for _, g := range []*liveGW{a, b} {
		for _, tok := range []string{a2.Access, l.Access} {
			var got answer
			waitWithin(t, revocationBound, "the family's access tokens to be refused", func() bool {
				got = g.call("GET", "/api/v1/reports/", "", nil, bearer(tok))
				return got.status != http.StatusOK
			})
			assertRejected(t, got, http.StatusUnauthorized, "revoked_token")
		}
	}
	if got := api.count(); got != n {
		t.Errorf("the upstream saw %d requests after the reuse", got-n)
	}
	// Another session of the same user goes on.
	other := b.loginAs(adminEmail, adminPass, "")
	wantStatus(t, "another session", a.call("GET", "/api/v1/reports/", "", nil, bearer(other.Access)), http.StatusOK)

	// Logout with A2 ends A1 of the same session too.
	r = a.call("POST", refreshAPI, "", map[string]string{"refresh": other.Refresh})
	wantStatus(t, "refresh", r, http.StatusOK)
	o2 := decodeJSON[login.RefreshAnswer](t, r)
	wantStatus(t, "A1 cached on B", b.call("GET", "/api/v1/reports/", "", nil, bearer(other.Access)), http.StatusOK)
	wantStatus(t, "logout", a.call("POST", logoutAPI, "", nil, bearer(o2.Access)), http.StatusNoContent)
	n = api.count()
	var got answer
	waitWithin(t, revocationBound, "B to refuse the session's first access token", func() bool {
		got = b.call("GET", "/api/v1/reports/", "", nil, bearer(other.Access))
		return got.status != http.StatusOK
	})
	assertRejected(t, got, http.StatusUnauthorized, "revoked_token")
	if c := api.count(); c != n {
		t.Errorf("the upstream saw %d requests after the logout", c-n)
	}
}

// blockedHasher is argon2id that waits, in Verify and Hash, until release is closed; each
// call first tells entered (when there is room).
type blockedHasher struct {
	entered chan struct{}
	release chan struct{}
}

func newBlockedHasher() *blockedHasher {
	return &blockedHasher{entered: make(chan struct{}, 16), release: make(chan struct{})}
}

func (h *blockedHasher) wait() {
	select {
	case h.entered <- struct{}{}:
	default:
	}
	<-h.release
}

func (h *blockedHasher) Hash(pw string, p user.Params) (string, error) {
	h.wait()
	return user.HashPassword(pw, p)
}

func (h *blockedHasher) Verify(encoded, pw string) (bool, error) {
	h.wait()
	return user.VerifyPassword(encoded, pw)
}

// hashGateway is an in-process gateway on the memory store with the issuer on, extra
// configuration, and h as its password hasher.
func hashGateway(t *testing.T, extra string, h *blockedHasher) (*gateway.Server, string, *upstream) {
	t.Helper()
	adminKey := newAdminKey(t)
	up := startUpstream(t, "api", nil)
	yaml := gatewayHeader + `upstreams:
  api: {url: "${UP_api}", timeout: 5s}
issuer:
  enabled: true
  name: authgate-hash
  signing_key_file: "` + filepath.Join(t.TempDir(), "key.pem") + `"
auth_api: {prefix: /api/auth}
bootstrap:
  admin_key: "` + adminKey + `"
routes:
  - name: reports-read
    match: ["GET /api/v1/reports/{$}"]
    upstream: api
    scopes: ["reports:read"]
` + extra
	cfg, err := config.Parse("hash.yaml", []byte(yaml), env(map[string]*upstream{"api": up}, nil))
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, yaml)
	}
	s, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
		PasswordParams: &user.TestParams, PasswordHasher: h})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	return s, adminKey, up
}

// post sends a JSON POST through s from remote.
func post(s *gateway.Server, target, remote, body string, headers ...string) answer {
	r := httptest.NewRequest("POST", target, strings.NewReader(body))
	r.RemoteAddr = remote
	r.Header.Set("Content-Type", "application/json")
	for _, kv := range headers {
		k, v, _ := strings.Cut(kv, ": ")
		r.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, r)
	return answer{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

func wantRetryAfter(t *testing.T, a answer) {
	t.Helper()
	if a.header.Get("Retry-After") == "" {
		t.Errorf("no Retry-After on %d %s", a.status, a.body)
	}
}

// TestReview09_PasswordHashingBounded: with password_hashing concurrency 1 and queue 1,
// and a hasher that blocks, one login hashes, one waits, and one more is refused at once
// with 503 server_busy and Retry-After, whether its email exists or not (the dummy hash
// of an unknown email goes through the same bound); so is a password set through the
// users API. rate_limits.login_global refuses logins beyond its burst with 429
// rate_limited and Retry-After, whatever their client IP and email.
func TestReview09_PasswordHashingBounded(t *testing.T) {
	t.Run("concurrency", func(t *testing.T) {
		h := newBlockedHasher()
		s, adminKey, up := hashGateway(t, "password_hashing: {concurrency: 1, queue: 1, max_wait: 1h}\n", h)
		released := false
		release := func() {
			if !released {
				released = true
				close(h.release)
			}
		}
		defer release()
		login := func(i int) answer {
			return post(s, loginAPI, "198.51.100."+itoa(i)+":1234", `{"email":"nobody`+itoa(i)+`@example.com","password":"some password"}`)
		}
		first := make(chan answer, 1)
		go func() { first <- login(1) }()
		select { // the first login holds the only slot
		case <-h.entered:
		case <-time.After(waitBound):
			t.Fatal("the login never hashed with the gateway's hasher")
		}
		rest := make(chan answer, 2)
		go func() { rest <- login(2) }()
		go func() { rest <- login(3) }()
		// Of the two, one waits in the queue and the other finds it full.
		busy := <-rest
		assertRejected(t, busy, http.StatusServiceUnavailable, "server_busy")
		wantRetryAfter(t, busy)
		// The slot and the queue are taken: the users API's hash is refused alike.
		created := post(s, usersAPI, "198.51.100.9:1234", `{"email":"new@example.com","password":"a long password","role":"admin"}`,
			"X-API-Key: "+adminKey)
		assertRejected(t, created, http.StatusServiceUnavailable, "server_busy")
		wantRetryAfter(t, created)

		release()
		assertRejected(t, <-first, http.StatusUnauthorized, "invalid_login")
		assertRejected(t, <-rest, http.StatusUnauthorized, "invalid_login")
		wantStatus(t, "create a user once the hashes are done", post(s, usersAPI, "198.51.100.9:1234",
			`{"email":"new@example.com","password":"a long password","role":"admin"}`, "X-API-Key: "+adminKey), http.StatusCreated)
		assertNoRequests(t, up)
	})
	t.Run("global_rate", func(t *testing.T) {
		h := newBlockedHasher()
		close(h.release)
		s, _, up := hashGateway(t, "rate_limits: {login_global: {requests: 2, per: 1h}}\n", h)
		for i := range 2 {
			assertRejected(t, post(s, loginAPI, "203.0.113."+itoa(i)+":1234", `{"email":"u`+itoa(i)+`@example.com","password":"some password"}`),
				http.StatusUnauthorized, "invalid_login")
		}
		over := post(s, loginAPI, "203.0.113.77:1234", `{"email":"someone.else@example.com","password":"some password"}`)
		assertRejected(t, over, http.StatusTooManyRequests, "rate_limited")
		wantRetryAfter(t, over)
		assertNoRequests(t, up)
	})
}
