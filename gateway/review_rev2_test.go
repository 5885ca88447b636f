package gateway_test

// Regression tests of the second outside review of issue 9's fixes.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway"
	"github.com/authgate/authgate/gateway/login"
	"github.com/authgate/authgate/gateway/user"
)

// TestReview14_LoginFloodKeepsUsedUpEmailLimit: the per-email login bucket is what bounds
// password guessing against one account from many addresses. A flood of logins with
// more new emails than rate_limits.max_buckets (each from a new address, each refused
// cheaply) must not evict that account's used-up bucket and hand the attacker a fresh
// allowance: eviction forgets the buckets with the most allowance left first.
func TestReview14_LoginFloodKeepsUsedUpEmailLimit(t *testing.T) {
	up := startUpstream(t, "api", nil)
	ups := map[string]*upstream{"api": up}
	yaml := gatewayHeader + `upstreams:
  api: {url: "${UP_api}", timeout: 5s}
issuer:
  enabled: true
  name: authgate-review
  signing_key_file: "` + filepath.Join(t.TempDir(), "key.pem") + `"
bootstrap:
  admin_email: alice@example.com
  admin_password: "alice's password"
rate_limits:
  login: {requests: 3, per: 1h}
  max_buckets: 16
routes:
  - name: reports-read
    match: ["GET /api/v1/reports/{$}"]
    upstream: api
    scopes: ["reports:read"]
`
	h := newGatewayOpts(t, yaml, ups, env(ups, nil), gateway.Options{PasswordParams: &user.TestParams})
	login := func(email, password, addr string) answer {
		t.Helper()
		r := httptest.NewRequest("POST", "/api/auth/login/", strings.NewReader(
			fmt.Sprintf(`{"email":%q,"password":%q}`, email, password)))
		r.Header.Set("Content-Type", "application/json")
		r.RemoteAddr = addr
		return h.serve(r)
	}
	if a := login("alice@example.com", "alice's password", "10.0.0.100:4000"); a.status != http.StatusOK {
		t.Fatalf("alice's login: %d %s, want 200", a.status, a.body)
	}
	for i := range 2 { // with the successful login above, alice's three are used up
		if a := login("alice@example.com", "a guess", fmt.Sprintf("10.0.0.%d:4000", i+1)); a.status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d %s, want 401", i, a.status, a.body)
		}
	}
	assertRejected(t, login("alice@example.com", "a guess", "10.0.0.9:4000"), http.StatusTooManyRequests, "rate_limited")
	for i := range 100 { // each a new address and a new email: one request from each bucket
		if a := login(fmt.Sprintf("nobody%d@example.com", i), "wrong password", fmt.Sprintf("[2001:db8:%x::1]:4000", i)); a.status != http.StatusUnauthorized {
			t.Fatalf("flood login %d: %d %s, want 401", i, a.status, a.body)
		}
	}
	// The right password from a new address: still refused, the allowance is not back.
	assertRejected(t, login("alice@example.com", "alice's password", "10.0.0.10:4000"), http.StatusTooManyRequests, "rate_limited")
	if n := up.count(); n != 0 {
		t.Fatalf("upstream saw %d requests, want 0", n)
	}
}

// TestReview04_RefreshRacingSessionEndMintsNoLiveToken: ending a user's sessions (a new
// password, TOTP removed) first moves their session epoch on, then revokes their refresh
// families. A refresh that rotated its token just before, and read the user just after
// the epoch moved, minted an access token of the new epoch: it outlived the reset for the
// whole access_ttl (seen in about half of the tries of a client refreshing in a loop
// while an admin set a new password). The test stops the change at that moment — epoch
// moved, families not yet revoked — and refreshes: the family began under the old epoch,
// so it mints nothing (401 invalid_token), is revoked, and the upstream sees nothing.
func TestReview04_RefreshRacingSessionEndMintsNoLiveToken(t *testing.T) {
	a, b, users := reviewReplicas(t)
	api := a.ups["api"]
	const pass = "alice's old password"
	alice := a.createUser("alice@example.com", pass, "member")
	la := a.loginAs(alice.Email, pass, "")
	wantStatus(t, "alice's token before the reset", b.call("GET", "/api/v1/reports/", "", nil, bearer(la.Access)), http.StatusOK)

	// The first half of the users API's new password: the user record, with the epoch
	// moved on. The second half (revoking the refresh families) has not run yet.
	h, err := user.HashPassword("a brand new password", user.TestParams)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := users.Modify(context.Background(), alice.ID, func(u *user.User) error {
		u.PasswordHash = h
		u.SessionEpoch++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	n := api.count()
	r := b.call("POST", refreshAPI, "", map[string]string{"refresh": la.Refresh})
	if r.status == http.StatusOK {
		ra := decodeJSON[login.RefreshAnswer](t, r)
		got := a.call("GET", "/api/v1/reports/", "", nil, bearer(ra.Access))
		t.Fatalf("refresh during the reset minted a token; on a route it gets %d %s", got.status, got.body)
	}
	assertRejected(t, r, http.StatusUnauthorized, "invalid_token")
	// The family is revoked: its token does not work later either.
	assertRejected(t, a.call("POST", refreshAPI, "", map[string]string{"refresh": la.Refresh}), http.StatusUnauthorized, "invalid_token")
	if got := api.count(); got != n {
		t.Errorf("the upstream saw %d requests after the reset", got-n)
	}
	// A login with the new password starts a session of the new epoch, which refreshes.
	l2 := a.loginAs(alice.Email, "a brand new password", "")
	wantStatus(t, "refresh of a session begun after the reset", b.call("POST", refreshAPI, "", map[string]string{"refresh": l2.Refresh}), http.StatusOK)
}
