package gateway_test

// Review tests: each demonstrated a defect found in a security review (key callers
// minting wider keys, enrolment-only tokens, self-set rate limits, external subjects,
// organisation changes); they stay as regression tests of the fixes.

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/config"
	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/gateway/admin"
	"github.com/authgate/authgate/gateway/login"
	"github.com/authgate/authgate/gateway/user"
)

const reviewRootEmail = "root@example.com"
const reviewRootPass = "correct horse battery"

// reviewGateway is an in-process gateway on the memory store with the built-in issuer, a
// bootstrap admin user and key, an external HMAC issuer, and the routes the tests need.
func reviewGateway(t *testing.T, mfa string, keyLimit int) (*harness, string) {
	t.Helper()
	adminKey := newAdminKey(t)
	up := startUpstream(t, "api", nil)
	ups := map[string]*upstream{"api": up}
	yaml := gatewayHeader + `upstreams:
  api: {url: "${UP_api}", timeout: 5s}
issuer:
  enabled: true
  name: authgate-review
  signing_key_file: "` + filepath.Join(t.TempDir(), "key.pem") + `"
  mfa: ` + mfa + `
jwt:
  leeway: 5s
  issuers:
    - issuer: "https://partner.example.com/"
      audiences: ["api"]
      hmac_secret: "` + hmacSecret + `"
      algorithms: ["HS256"]
auth_api: {prefix: /api/auth}
bootstrap:
  admin_key: "` + adminKey + `"
  admin_email: ` + reviewRootEmail + `
  admin_password: "` + reviewRootPass + `"
rate_limits:
  api_key: {requests: ` + itoa(keyLimit) + `, per: 1m}
  jwt: {requests: 3, per: 1m}
policy:
  roles:
    admin:  ["*"]
    member: ["reports:*", "keys:manage"]
routes:
  - name: reports-read
    match: ["GET /api/v1/reports/{$}"]
    upstream: api
    scopes: ["reports:read"]
  - name: profile
    match: ["GET /api/v1/profile/{$}"]
    upstream: api
`
	cfg, err := config.Parse("review.yaml", []byte(yaml), env(ups, nil))
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, yaml)
	}
	s, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
		PasswordParams: &user.TestParams})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	return &harness{t: t, s: s, reg: prometheus.NewRegistry(), ups: ups}, adminKey
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// jcall sends a JSON body with headers through the gateway in process.
func (h *harness) jcall(method, target string, body any, headers ...string) answer {
	h.t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			h.t.Fatal(err)
		}
	}
	r := httptest.NewRequest(method, target, bytes.NewReader(b))
	r.Header.Set("Content-Type", "application/json")
	for _, kv := range headers {
		k, v, _ := strings.Cut(kv, ": ")
		r.Header.Add(k, v)
	}
	return h.serve(r)
}

func (h *harness) reviewLogin(email, pw string) login.LoginAnswer {
	h.t.Helper()
	a := h.jcall("POST", "/api/auth/login/", map[string]string{"email": email, "password": pw})
	if a.status != http.StatusOK {
		h.t.Fatalf("login %s: %d %s", email, a.status, a.body)
	}
	var la login.LoginAnswer
	if err := json.Unmarshal(a.body, &la); err != nil {
		h.t.Fatal(err)
	}
	return la
}

func (h *harness) reviewCreateKey(cred string, req map[string]any) (admin.KeyView, answer) {
	h.t.Helper()
	a := h.jcall("POST", "/api/auth/api-keys/", req, cred)
	var kv admin.KeyView
	if a.status == http.StatusCreated {
		if err := json.Unmarshal(a.body, &kv); err != nil {
			h.t.Fatal(err)
		}
	}
	return kv, a
}

// TestReviewEnrollOnlyTokenOpensUnscopedRoute: with issuer.mfa: required, a password-only
// login gets an enrolment-only token with no scopes. A non-public route that requires no
// scope (only authentication) forwards it to the upstream as the user: the MFA requirement
// is bypassed for every such route (and for forward-auth decisions on them).
func TestReviewEnrollOnlyTokenOpensUnscopedRoute(t *testing.T) {
	h, _ := reviewGateway(t, "required", 100)
	la := h.reviewLogin(reviewRootEmail, reviewRootPass)
	if !la.MFAEnrollmentRequired {
		t.Fatalf("login is not enrolment-only: %+v", la)
	}
	a := h.do("GET", "/api/v1/profile/", "", "Authorization: Bearer "+la.Access)
	if a.status == http.StatusOK {
		got := h.ups["api"].requests()
		t.Fatalf("enrolment-only token (no TOTP yet) reached the upstream: status 200, X-Auth-Subject %q",
			got[len(got)-1].Header.Get("X-Auth-Subject"))
	}
}

// TestReviewNarrowKeyMintsWiderKey: a personal key restricted to ["keys:manage"] (and to
// the test environment) creates a new key without scopes. A personal key without scopes
// has all of its owner's role, so the narrow key mints a key with the owner's full power:
// here an admin's "keys:manage only, test only" key becomes a live key that manages users.
func TestReviewNarrowKeyMintsWiderKey(t *testing.T) {
	h, _ := reviewGateway(t, "optional", 100)
	root := h.reviewLogin(reviewRootEmail, reviewRootPass).Access
	narrow, a := h.reviewCreateKey("Authorization: Bearer "+root, map[string]any{"name": "ci", "scopes": []string{"keys:manage"}, "environment": "test"})
	if a.status != http.StatusCreated {
		t.Fatalf("create narrow key: %d %s", a.status, a.body)
	}
	// The narrow key cannot manage users itself.
	if a := h.do("GET", "/api/auth/users/", "", "X-API-Key: "+narrow.Secret); a.status != http.StatusForbidden {
		t.Fatalf("narrow key on /users/: %d %s", a.status, a.body)
	}
	wide, a := h.reviewCreateKey("X-API-Key: "+narrow.Secret, map[string]any{"name": "escalated", "environment": "live", "expires_in_days": 0})
	if a.status != http.StatusCreated {
		assertRejected(t, a, http.StatusForbidden, "insufficient_scope") // refused: fixed (each bound: gateway/admin TestKeyCallerBounds)
		return
	}
	if u := h.do("GET", "/api/auth/users/", "", "X-API-Key: "+wide.Secret); u.status == http.StatusOK {
		t.Fatalf("a test-only keys:manage key minted a never-expiring live key (env %s) that lists users (admin): %s",
			wide.Environment, u.body)
	}
	t.Fatalf("a keys:manage-only key minted key %s with scopes %v environment %s (wider than itself)", wide.ID, wide.Scopes, wide.Environment)
}

// TestReviewKeyRaisesOwnRateLimit: a caller with only keys:manage sets any rate_limit on
// its own keys (even on the very key it calls with), so rate_limits.api_key (and a
// route's rate_limit, which a key's own limit overrides) is not a limit at all.
func TestReviewKeyRaisesOwnRateLimit(t *testing.T) {
	h, adminKey := reviewGateway(t, "optional", 2) // api keys: 2 requests a minute
	// A member user, and her key with the default limit.
	a := h.jcall("POST", "/api/auth/users/", map[string]string{"email": "ann@example.com", "password": "ann's long password", "role": "member"}, "X-API-Key: "+adminKey)
	if a.status != http.StatusCreated {
		t.Fatalf("create user: %d %s", a.status, a.body)
	}
	ann := h.reviewLogin("ann@example.com", "ann's long password").Access
	k, a := h.reviewCreateKey("Authorization: Bearer "+ann, map[string]any{"name": "mine"})
	if a.status != http.StatusCreated {
		t.Fatalf("create key: %d %s", a.status, a.body)
	}
	e := h.jcall("PATCH", "/api/auth/api-keys/"+k.ID+"/", map[string]any{"rate_limit": map[string]any{"requests": 1000000, "per": "1s"}}, "X-API-Key: "+k.Secret)
	if e.status != http.StatusOK {
		return // refused: fixed
	}
	ok := 0
	for range 10 {
		if h.do("GET", "/api/v1/reports/", "", "X-API-Key: "+k.Secret).status == http.StatusOK {
			ok++
		}
	}
	if ok > 2 {
		t.Fatalf("a member's key lifted its own limit from 2/min to 1,000,000/s: %d of 10 requests passed", ok)
	}
}

// TestReviewExternalSubjectCollides: an external issuer's token whose sub is a local
// user's id is forwarded with X-Auth-Issuer, so the upstream can tell it from that user
// (X-Auth-Subject stays the raw sub, as SPEC section 2 says), and is rate-limited in a
// bucket of its own, so it cannot use up the local user's allowance.
func TestReviewExternalSubjectCollides(t *testing.T) {
	h, _ := reviewGateway(t, "optional", 100)
	la := h.reviewLogin(reviewRootEmail, reviewRootPass)
	now := time.Now()
	ext := mint(t, jose.HS256, []byte(hmacSecret), "", map[string]any{"iss": "https://partner.example.com/", "sub": la.User.ID,
		"aud": "api", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "scope": "reports:read"})
	// The partner's token uses up the local user's JWT allowance (3 a minute)...
	for range 3 {
		if a := h.do("GET", "/api/v1/reports/", "", "Authorization: Bearer "+ext); a.status != http.StatusOK {
			t.Fatalf("external token: %d %s", a.status, a.body)
		}
	}
	fwd := h.ups["api"].requests()
	iss := fwd[len(fwd)-1].Header.Get("X-Auth-Issuer")
	// ...and the local admin is not refused.
	a := h.do("GET", "/api/v1/reports/", "", "Authorization: Bearer "+la.Access)
	if iss != "https://partner.example.com/" || a.status == http.StatusTooManyRequests {
		t.Fatalf("external token forwarded with X-Auth-Issuer %q; local user's next request: %d", iss, a.status)
	}
	if own := h.ups["api"].requests(); own[len(own)-1].Header.Get("X-Auth-Issuer") != "" {
		t.Errorf("a built-in token was forwarded with X-Auth-Issuer")
	}
}

// TestReviewOrgChangeNotApplied: moving a user to another organisation does not reach
// their existing access tokens: X-Auth-Org of a built-in token comes from the token's org
// claim, the cached Owner holds only role and state, and an org edit publishes no
// invalidation. Upstreams that isolate tenants by X-Auth-Org keep serving the old tenant
// for up to issuer.access_ttl (1 h by default).
func TestReviewOrgChangeNotApplied(t *testing.T) {
	h, adminKey := reviewGateway(t, "optional", 100)
	a := h.jcall("POST", "/api/auth/users/", map[string]string{"email": "ann@example.com", "password": "ann's long password",
		"role": "member", "organization": "acme"}, "X-API-Key: "+adminKey)
	if a.status != http.StatusCreated {
		t.Fatalf("create user: %d %s", a.status, a.body)
	}
	var ann admin.UserView
	_ = json.Unmarshal(a.body, &ann)
	tok := h.reviewLogin("ann@example.com", "ann's long password").Access
	if r := h.do("GET", "/api/v1/reports/", "", "Authorization: Bearer "+tok); r.status != http.StatusOK {
		t.Fatalf("report: %d", r.status)
	}
	e := h.jcall("PATCH", "/api/auth/users/"+ann.ID+"/", map[string]string{"organization": "globex"}, "X-API-Key: "+adminKey)
	if e.status != http.StatusOK {
		t.Fatalf("edit: %d %s", e.status, e.body)
	}
	if r := h.do("GET", "/api/v1/reports/", "", "Authorization: Bearer "+tok); r.status != http.StatusOK {
		t.Fatalf("report: %d", r.status)
	}
	got := h.ups["api"].requests()
	if org := got[len(got)-1].Header.Get("X-Auth-Org"); org != "globex" {
		t.Fatalf("after moving the user to globex, their token is still forwarded with X-Auth-Org %q", org)
	}
}
