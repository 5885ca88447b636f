package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/authgate/authgate/gateway/admin"
	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/login"
	"github.com/authgate/authgate/gateway/store/redistest"
	"github.com/authgate/authgate/gateway/user"
)

const (
	loginAPI   = "/api/auth/login/"
	refreshAPI = "/api/auth/token/refresh/"
	logoutAPI  = "/api/auth/logout/"
	usersAPI   = "/api/auth/users/"
	adminEmail = "root@example.com"
	adminPass  = "correct horse battery"
)

// issuerConfig turns on the built-in issuer, a bootstrap admin user and a role without
// reports:read (guest). The refresh reuse grace is off unless REFRESH_GRACE sets it, so a
// spent refresh token is a reuse at once. The login limit is liveConfig's: the default, 10 per minute.
const issuerConfig = `issuer:
  enabled: true
  name: authgate-test
  signing_key_file: "${SIGNING_KEY}"
  mfa: "${MFA_MODE:-optional}"
  refresh_reuse_grace: "${REFRESH_GRACE:-0s}"
jwt: {leeway: 5s}
auth_api: {prefix: /api/auth}
policy:
  roles:
    admin:  ["*"]
    member: ["reports:*", "keys:manage"]
    guest:  ["usage:read", "keys:manage"]
`

// issuerOpts serves with the issuer on; replicas given the same dir share the signing key.
func issuerOpts(dir string, extraEnv map[string]string) liveOpts {
	env := map[string]string{"SIGNING_KEY": filepath.Join(dir, "signing-key.pem"), "ADMIN_EMAIL": adminEmail, "ADMIN_PASSWORD": adminPass}
	for k, v := range extraEnv {
		env[k] = v
	}
	return liveOpts{extra: issuerConfig, env: env}
}

// twoIssuerReplicas serves two gateways on one Redis with the issuer on and one signing key.
func twoIssuerReplicas(tb testing.TB, env map[string]string) (a, b *liveGW) {
	tb.Helper()
	rs := redistest.Start(tb)
	o := issuerOpts(tb.TempDir(), env)
	a = serveLive(tb, rs, o)
	b = serveLive(tb, rs, o)
	waitForUser(tb, rs, adminEmail)
	return a, b
}

// waitForUser waits until the user store has email: with Redis, the bootstrap admin user
// is created by Serve, in the background. Polling the store, not the login call, keeps
// the login limit untouched.
func waitForUser(tb testing.TB, rs *redistest.Server, email string) {
	tb.Helper()
	st := user.NewStore(rs.Client(tb), redisPrefix, time.Now)
	waitFor(tb, "user "+email, func() bool {
		_, err := st.ByEmail(context.Background(), email)
		return err == nil
	})
}

// loginAs logs in on g and wants 200.
func (g *liveGW) loginAs(email, password, code string) login.LoginAnswer {
	g.tb.Helper()
	body := map[string]string{"email": email, "password": password}
	if code != "" {
		body["totp"] = code
	}
	a := g.call("POST", loginAPI, "", body)
	wantStatus(g.tb, "login "+email, a, http.StatusOK)
	return decodeJSON[login.LoginAnswer](g.tb, a)
}

// bearer is the Authorization header of token.
func bearer(token string) string { return "Authorization: Bearer " + token }

func TestLoginRefreshLogout(t *testing.T) {
	a, b := twoIssuerReplicas(t, nil)
	api := a.ups["api"]

	la := a.loginAs(adminEmail, adminPass, "")
	if la.Access == "" || la.Refresh == "" || la.User.Email != adminEmail || la.User.Role != "admin" || !user.IsID(la.User.ID) {
		t.Fatalf("login answer: %+v", la)
	}

	// The access token works on both replicas and reaches the upstream as this user.
	for _, g := range []*liveGW{a, b} {
		wantStatus(t, "report with the access token", g.call("GET", "/api/v1/reports/", "", nil, bearer(la.Access)), http.StatusOK)
	}
	got := api.requests()
	last := got[len(got)-1].Header
	if last.Get("X-Auth-Method") != "jwt" || last.Get("X-Auth-Subject") != la.User.ID || last.Get("X-Auth-Scopes") != "*" {
		t.Errorf("forwarded identity: method %q subject %q scopes %q", last.Get("X-Auth-Method"), last.Get("X-Auth-Subject"), last.Get("X-Auth-Scopes"))
	}
	if last.Get("Authorization") != "" {
		t.Errorf("the bearer token was forwarded")
	}

	// Refresh rotates; the new pair works; the spent refresh token, used again, revokes
	// the family, so even the newest refresh token stops.
	r1 := b.call("POST", refreshAPI, "", map[string]string{"refresh": la.Refresh})
	wantStatus(t, "refresh", r1, http.StatusOK)
	p1 := decodeJSON[login.RefreshAnswer](t, r1)
	if p1.Refresh == la.Refresh || p1.Access == "" {
		t.Fatalf("refresh did not rotate: %s", r1.body)
	}
	wantStatus(t, "report with the refreshed token", a.call("GET", "/api/v1/reports/", "", nil, bearer(p1.Access)), http.StatusOK)
	n := api.count()
	reuse := a.call("POST", refreshAPI, "", map[string]string{"refresh": la.Refresh})
	assertRejected(t, reuse, http.StatusUnauthorized, "invalid_token")
	assertRejected(t, b.call("POST", refreshAPI, "", map[string]string{"refresh": p1.Refresh}), http.StatusUnauthorized, "invalid_token")
	assertRejected(t, b.call("POST", refreshAPI, "", map[string]string{"refresh": "rt_nonsense"}), http.StatusUnauthorized, "invalid_token")

	// Logout on A; B had the token cached and refuses it at once; so does A.
	l2 := a.loginAs(adminEmail, adminPass, "")
	wantStatus(t, "cache the token on B", b.call("GET", "/api/v1/reports/", "", nil, bearer(l2.Access)), http.StatusOK)
	n = api.count()
	wantStatus(t, "logout", a.call("POST", logoutAPI, "", map[string]string{"refresh": l2.Refresh}, bearer(l2.Access)), http.StatusNoContent)
	var refused answer
	waitWithin(t, revocationBound, "B to refuse the logged-out token", func() bool {
		refused = b.call("GET", "/api/v1/reports/", "", nil, bearer(l2.Access))
		return refused.status != http.StatusOK
	})
	assertRejected(t, refused, http.StatusUnauthorized, "revoked_token")
	assertRejected(t, a.call("GET", "/api/v1/reports/", "", nil, bearer(l2.Access)), http.StatusUnauthorized, "revoked_token")
	// Logout revoked the refresh family too.
	assertRejected(t, a.call("POST", refreshAPI, "", map[string]string{"refresh": l2.Refresh}), http.StatusUnauthorized, "invalid_token")
	// Without a body, logout ends the access token's own session (its sid) as well.
	l3 := b.loginAs(adminEmail, adminPass, "")
	wantStatus(t, "logout without a body", b.call("POST", logoutAPI, "", nil, bearer(l3.Access)), http.StatusNoContent)
	assertRejected(t, a.call("POST", refreshAPI, "", map[string]string{"refresh": l3.Refresh}), http.StatusUnauthorized, "invalid_token")
	if c := api.count(); c != n {
		t.Errorf("upstream saw %d refused requests", c-n)
	}

	// JWKS: the public key, no private part.
	j := b.call("GET", "/.well-known/jwks.json", "", nil)
	wantStatus(t, "jwks", j, http.StatusOK)
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(j.body, &doc); err != nil || len(doc.Keys) != 1 || doc.Keys[0]["kid"] == "" || doc.Keys[0]["d"] != nil {
		t.Errorf("jwks: %s (%v)", j.body, err)
	}
}

func TestLoginRefusals(t *testing.T) {
	a, _ := twoIssuerReplicas(t, nil)
	a.loginAs(adminEmail, adminPass, "") // the bootstrap user exists

	wrong := a.call("POST", loginAPI, "", map[string]string{"email": adminEmail, "password": "not the password"})
	unknown := a.call("POST", loginAPI, "", map[string]string{"email": "nobody@example.com", "password": "not the password"})
	assertRejected(t, wrong, http.StatusUnauthorized, "invalid_login")
	assertRejected(t, unknown, http.StatusUnauthorized, "invalid_login")
	if strip(wrong.body) != strip(unknown.body) {
		t.Errorf("unknown email and wrong password answer differently:\n%s\n%s", wrong.body, unknown.body)
	}
	if bytes.Contains(wrong.body, []byte("not the password")) {
		t.Errorf("the password is echoed: %s", wrong.body)
	}
	assertRejected(t, a.call("POST", loginAPI, "", map[string]string{"email": adminEmail}), http.StatusBadRequest, "invalid_request")
	assertRejected(t, a.call("POST", loginAPI, "", map[string]any{"email": adminEmail, "password": adminPass, "admin": true}), http.StatusBadRequest, "invalid_request")
	assertRejected(t, a.call("GET", loginAPI, "", nil), http.StatusMethodNotAllowed, "method_not_allowed")
	// Logout without a token, with garbage, with an API key.
	assertRejected(t, a.call("POST", logoutAPI, "", nil), http.StatusUnauthorized, "missing_credentials")
	assertRejected(t, a.call("POST", logoutAPI, "", nil, bearer("e30.e30.e30")), http.StatusUnauthorized, "invalid_token")
	// The management API refuses a made-up bearer token.
	assertRejected(t, a.call("GET", usersAPI, "", nil, bearer("e30.e30.e30")), http.StatusUnauthorized, "invalid_token")
}

// strip drops the request id, the only part that may differ between two refusals.
func strip(body []byte) string {
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	delete(m, "request_id")
	b, _ := json.Marshal(m)
	return string(b)
}

func TestLoginRateLimit(t *testing.T) {
	rs := redistest.Start(t)
	g := serveLive(t, rs, issuerOpts(t.TempDir(), nil))
	waitForUser(t, rs, adminEmail)
	g.loginAs(adminEmail, adminPass, "")
	// liveConfig's login limit is the default, 10 per minute per email and per IP: one
	// success above, then 9 more attempts, then 429.
	for i := 0; i < 9; i++ {
		a := g.call("POST", loginAPI, "", map[string]string{"email": adminEmail, "password": "wrong password!"})
		assertRejected(t, a, http.StatusUnauthorized, "invalid_login")
	}
	a := g.call("POST", loginAPI, "", map[string]string{"email": adminEmail, "password": adminPass})
	assertRejected(t, a, http.StatusTooManyRequests, "rate_limited")
	if ra := a.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After = %q", ra)
	}
	// Per IP too: another email from the same client is refused as well.
	a = g.call("POST", loginAPI, "", map[string]string{"email": "other@example.com", "password": "whatever123"})
	assertRejected(t, a, http.StatusTooManyRequests, "rate_limited")
	if v := metricValue(t, g.reg, "authgate_logins_total", map[string]string{"result": "rate_limited"}); v != 2 {
		t.Errorf("authgate_logins_total{result=rate_limited} = %v, want 2", v)
	}
	if v := metricValue(t, g.reg, "authgate_logins_total", map[string]string{"result": "invalid_login"}); v != 9 {
		t.Errorf("authgate_logins_total{result=invalid_login} = %v, want 9", v)
	}
}

// TestUserChangesReachKeysAndTokens: an admin demotes and then disables a user through
// replica A; the user's token and personal key, cached on replica B, narrow and then stop
// there within a second (issues 3 and 4).
func TestUserChangesReachKeysAndTokens(t *testing.T) {
	a, b := twoIssuerReplicas(t, nil)
	root := a.loginAs(adminEmail, adminPass, "").Access

	created := a.call("POST", usersAPI, "", map[string]string{"email": "Ann@Example.com", "password": "ann's long password", "role": "member"}, bearer(root))
	wantStatus(t, "create user", created, http.StatusCreated)
	ann := decodeJSON[admin.UserView](t, created)
	if ann.Email != "ann@example.com" || ann.Role != "member" || bytes.Contains(created.body, []byte("argon2")) {
		t.Fatalf("created user: %s", created.body)
	}
	tok := b.loginAs("ann@example.com", "ann's long password", "").Access
	key := b.createKeyBearer(tok, map[string]any{"name": "ann's key"}) // no scopes: follows her role

	for _, g := range []*liveGW{a, b} {
		wantStatus(t, "key before", g.report(key.Secret), http.StatusOK)
		wantStatus(t, "token before", g.call("GET", "/api/v1/reports/", "", nil, bearer(tok)), http.StatusOK)
	}
	// Members may not manage users.
	assertRejected(t, b.call("GET", usersAPI, "", nil, bearer(tok)), http.StatusForbidden, "insufficient_scope")

	// Demote to guest (no reports:read) through A: B narrows both at once.
	wantStatus(t, "demote", a.call("PATCH", usersAPI+ann.ID+"/", "", map[string]string{"role": "guest"}, bearer(root)), http.StatusOK)
	waitWithin(t, revocationBound, "B to narrow the key", func() bool { return b.report(key.Secret).status == http.StatusForbidden })
	assertRejected(t, b.report(key.Secret), http.StatusForbidden, "insufficient_scope")
	assertRejected(t, b.call("GET", "/api/v1/reports/", "", nil, bearer(tok)), http.StatusForbidden, "insufficient_scope")

	// A new password through A ends her sessions: the token is refused on B (the key,
	// not a session, stays as it was).
	wantStatus(t, "reset password", a.call("PATCH", usersAPI+ann.ID+"/", "", map[string]string{"password": "ann's new long password"}, bearer(root)), http.StatusOK)
	waitWithin(t, revocationBound, "B to refuse the old token", func() bool {
		return b.call("GET", "/api/v1/reports/", "", nil, bearer(tok)).status == http.StatusUnauthorized
	})
	assertRejected(t, b.call("GET", "/api/v1/reports/", "", nil, bearer(tok)), http.StatusUnauthorized, "revoked_token")
	assertRejected(t, b.report(key.Secret), http.StatusForbidden, "insufficient_scope")

	// Disable through A: both stop on B, and her password no longer logs in.
	wantStatus(t, "disable", a.call("PATCH", usersAPI+ann.ID+"/", "", map[string]bool{"disabled": true}, bearer(root)), http.StatusOK)
	waitWithin(t, revocationBound, "B to refuse the key", func() bool { return b.report(key.Secret).status == http.StatusUnauthorized })
	assertRejected(t, b.report(key.Secret), http.StatusUnauthorized, "invalid_api_key")
	assertRejected(t, b.call("GET", "/api/v1/reports/", "", nil, bearer(tok)), http.StatusUnauthorized, "invalid_token")
	assertRejected(t, b.call("POST", loginAPI, "", map[string]string{"email": "ann@example.com", "password": "ann's new long password"}), http.StatusUnauthorized, "invalid_login")

	// An admin cannot lock themselves out.
	assertRejected(t, a.call("PATCH", usersAPI+"me/", "", map[string]bool{"disabled": true}, bearer(root)), http.StatusBadRequest, "invalid_request")
}

// createKeyBearer creates a key with a bearer token and wants 201.
func (g *liveGW) createKeyBearer(token string, req map[string]any) admin.KeyView {
	g.tb.Helper()
	a := g.call("POST", keysAPI, "", req, bearer(token))
	wantStatus(g.tb, "create key", a, http.StatusCreated)
	return decodeJSON[admin.KeyView](g.tb, a)
}

func TestMFA(t *testing.T) {
	a, b := twoIssuerReplicas(t, nil)
	la := a.loginAs(adminEmail, adminPass, "")

	en := a.call("POST", "/api/auth/mfa/totp/enroll/", "", login.EnrollRequest{CurrentPassword: adminPass}, bearer(la.Access))
	wantStatus(t, "enroll", en, http.StatusOK)
	ea := decodeJSON[login.EnrollAnswer](t, en)
	if ea.Secret == "" || !strings.HasPrefix(ea.OTPAuthURL, "otpauth://totp/") {
		t.Fatalf("enroll answer: %s", en.body)
	}
	wrong := b.call("POST", "/api/auth/mfa/totp/verify/", "", map[string]string{"code": "000000"}, bearer(la.Access))
	if wrong.status == http.StatusOK {
		// One in a million: the wrong code was right.
		t.Skip("000000 happened to be the current code")
	}
	assertRejected(t, wrong, http.StatusBadRequest, "invalid_totp")
	code, err := totp.GenerateCode(ea.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "verify", b.call("POST", "/api/auth/mfa/totp/verify/", "", map[string]string{"code": code}, bearer(la.Access)), http.StatusOK)

	// From now on a login needs the code. The code verify just used is spent.
	assertRejected(t, a.call("POST", loginAPI, "", map[string]string{"email": adminEmail, "password": adminPass}), http.StatusUnauthorized, "mfa_required")
	assertRejected(t, a.call("POST", loginAPI, "", map[string]string{"email": adminEmail, "password": adminPass, "totp": code}), http.StatusUnauthorized, "mfa_required")
	assertRejected(t, a.call("POST", loginAPI, "", map[string]string{"email": adminEmail, "password": adminPass, "totp": "12345"}), http.StatusUnauthorized, "mfa_required")
	next, err := totp.GenerateCode(ea.Secret, time.Now().Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ok := b.call("POST", loginAPI, "", map[string]string{"email": adminEmail, "password": adminPass, "totp": next})
	wantStatus(t, "login with the next code", ok, http.StatusOK)
	// Replayed on the other replica: refused.
	assertRejected(t, a.call("POST", loginAPI, "", map[string]string{"email": adminEmail, "password": adminPass, "totp": next}), http.StatusUnauthorized, "mfa_required")
	// A wrong password with a right code is still invalid_login, not a hint about MFA.
	assertRejected(t, a.call("POST", loginAPI, "", map[string]string{"email": adminEmail, "password": "wrong password!"}), http.StatusUnauthorized, "invalid_login")
}

// TestMFARequired: with issuer.mfa required, a user without TOTP gets a token that can
// only enrol; every route and management call refuses it with 401 mfa_required.
func TestMFARequired(t *testing.T) {
	a, _ := twoIssuerReplicas(t, map[string]string{"MFA_MODE": "required"})
	la := a.loginAs(adminEmail, adminPass, "")
	if !la.MFAEnrollmentRequired || la.Refresh != "" {
		t.Fatalf("login answer: %+v, want an enrolment-only token without refresh", la)
	}
	assertRejected(t, a.call("GET", "/api/v1/reports/", "", nil, bearer(la.Access)), http.StatusUnauthorized, "mfa_required")
	assertRejected(t, a.call("GET", usersAPI, "", nil, bearer(la.Access)), http.StatusUnauthorized, "mfa_required")
	wantStatus(t, "enroll", a.call("POST", "/api/auth/mfa/totp/enroll/", "", login.EnrollRequest{CurrentPassword: adminPass}, bearer(la.Access)), http.StatusOK)
}

// TestJWTCachedNoRedis: once a built-in token has been verified, further requests with it
// make no Redis call (no revocation GETs, no user HGET), per INFO commandstats.
func TestJWTCachedNoRedis(t *testing.T) {
	rs := redistest.Start(t)
	g := serveLive(t, rs, issuerOpts(t.TempDir(), nil))
	waitForUser(t, rs, adminEmail)
	tok := g.loginAs(adminEmail, adminPass, "").Access
	rc := rs.Client(t)
	lookups := func() int64 { return commandCalls(t, rc, "get") + commandCalls(t, rc, "hget") }
	before := lookups()
	wantStatus(t, "first use", g.call("GET", "/api/v1/reports/", "", nil, bearer(tok)), http.StatusOK)
	if d := lookups() - before; d != 3 {
		t.Fatalf("first use of the token: %d lookups, want 3 (revocation GETs by jti and by session, user HGET)", d)
	}
	before = lookups()
	for range 50 {
		wantStatus(t, "cached use", g.call("GET", "/api/v1/reports/", "", nil, bearer(tok)), http.StatusOK)
	}
	if d := lookups() - before; d != 0 {
		t.Errorf("50 requests with a cached token made %d Redis lookups, want 0", d)
	}
}

// TestBootstrapSurvivesDataLoss: when Redis loses its data (FLUSHALL here; a restart
// without persistence in life), the gateway puts the bootstrap admin key and user back
// by itself, without a restart.
func TestBootstrapSurvivesDataLoss(t *testing.T) {
	rs := redistest.Start(t)
	o := issuerOpts(t.TempDir(), nil)
	o.recheck = 100 * time.Millisecond
	g := serveLive(t, rs, o)
	waitForUser(t, rs, adminEmail)
	rc := rs.Client(t)
	if err := rc.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	keys := keyStore(t, rs)
	waitFor(t, "the bootstrap key back in the store", func() bool {
		_, err := keys.ByHash(context.Background(), apikey.NewHasher("").Hash(g.adminKey))
		return err == nil
	})
	waitForUser(t, rs, adminEmail)
	g.loginAs(adminEmail, adminPass, "")
}
