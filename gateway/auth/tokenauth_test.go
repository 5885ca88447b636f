package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/clocktest"
	"github.com/authgate/authgate/gateway/credcache"
	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/jwtauth"
	"github.com/authgate/authgate/gateway/user"
)

// fakeVerifier answers from a table of token -> claims and counts its calls.
type fakeVerifier struct {
	tokens map[string]jwtauth.Claims
	errs   map[string]error // refusals by token, beyond "not in tokens"
	calls  atomic.Int64
}

func (f *fakeVerifier) Verify(_ context.Context, tok string) (jwtauth.Claims, error) {
	f.calls.Add(1)
	if err, ok := f.errs[tok]; ok {
		return jwtauth.Claims{}, err
	}
	c, ok := f.tokens[tok]
	if !ok {
		return jwtauth.Claims{}, fmt.Errorf("fake: %w", jwtauth.ErrSignature)
	}
	return c, nil
}

// flakyUsers is a user store that fails while down is set, and counts reads.
type flakyUsers struct {
	*user.MemStore
	down  atomic.Bool
	reads atomic.Int64
}

func (f *flakyUsers) Get(ctx context.Context, id string) (user.User, error) {
	f.reads.Add(1)
	if f.down.Load() {
		return user.User{}, errors.New("dial tcp: connection refused")
	}
	return f.MemStore.Get(ctx, id)
}

type tokenFixture struct {
	clock   *clocktest.Clock
	ver     *fakeVerifier
	users   *flakyUsers
	cache   *credcache.Cache[*CachedToken]
	revoked map[string]bool
	down    atomic.Bool
	auth    *TokenAuthenticator
	ann     user.User
}

func newTokenFixture(t *testing.T, failClosed bool) *tokenFixture {
	t.Helper()
	f := &tokenFixture{clock: clocktest.New(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)),
		ver: &fakeVerifier{tokens: map[string]jwtauth.Claims{}}, revoked: map[string]bool{}}
	f.users = &flakyUsers{MemStore: user.NewMemStore(f.clock.Now)}
	var err error
	f.cache, err = credcache.New[*CachedToken](credcache.Options{MaxEntries: 100, TTL: 30 * time.Second,
		NegativeTTL: 5 * time.Second, StaleTTL: 5 * time.Minute, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string][]string{"member": {"reports:*", "keys:manage"}, "guest": {"usage:read"}}
	f.auth = NewTokenAuthenticator(TokenAuthenticatorOptions{Verifier: f.ver, Cache: f.cache, Builtin: "authgate",
		Owners: f.users, Revoked: func(_ context.Context, jti, sid string) (bool, error) {
			if f.down.Load() {
				return false, errors.New("dial tcp: connection refused")
			}
			return f.revoked[jti] || sid != "" && f.revoked["sid:"+sid], nil
		},
		Roles: func() map[string][]string { return roles }, Leeway: 10 * time.Second,
		StorePolicy: StorePolicy{FailClosed: failClosed, StoreDown: f.down.Load, Now: f.clock.Now}})
	f.ann = user.User{ID: user.NewID(), Email: "ann@example.com", Role: "member"}
	if err := f.users.Create(context.Background(), f.ann); err != nil {
		t.Fatal(err)
	}
	return f
}

// token registers a token the fake verifier accepts.
func (f *tokenFixture) token(name string, c jwtauth.Claims) string {
	if c.ExpiresAt.IsZero() {
		c.ExpiresAt = f.clock.Now().Add(time.Hour)
	}
	f.ver.tokens[name] = c
	return name
}

func (f *tokenFixture) authn(tok string) (Principal, error) {
	return f.auth.Authenticate(context.Background(), Credential{Kind: JWT, Value: tok})
}

func TestTokenAuthBuiltin(t *testing.T) {
	f := newTokenFixture(t, false)
	tok := f.token("ann", jwtauth.Claims{Issuer: "authgate", Subject: f.ann.ID, ID: "j1"})

	p, err := f.authn(tok)
	if err != nil || p.Subject != f.ann.ID || fmt.Sprint(p.Scopes) != "[reports:* keys:manage]" || p.Env != "live" || p.KeyID != "" {
		t.Fatalf("first use: %+v, %v", p, err)
	}
	// Cached: no second signature check, no store read.
	reads := f.users.reads.Load()
	for range 10 {
		if _, err := f.authn(tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.ver.calls.Load(); n != 1 {
		t.Errorf("verifier called %d times for one token, want 1", n)
	}
	if n := f.users.reads.Load() - reads; n != 0 {
		t.Errorf("%d user reads for cached uses, want 0", n)
	}

	// Demoted: once the owner tag is invalidated, the token has the new role's scopes.
	f.ann.Role = "guest"
	if err := f.users.Update(context.Background(), f.ann); err != nil {
		t.Fatal(err)
	}
	f.cache.Invalidate(OwnerTag(f.ann.ID))
	if p, _ := f.authn(tok); fmt.Sprint(p.Scopes) != "[usage:read]" {
		t.Errorf("after demotion: scopes %v, want [usage:read]", p.Scopes)
	}
	// Logged out: revoked_token once the jti tag is invalidated.
	f.revoked["j1"] = true
	f.cache.Invalidate(TokenTag("j1"))
	_, err = f.authn(tok)
	wantCode(t, err, http.StatusUnauthorized, "revoked_token")
	// Expired while cached: expired_token after exp + leeway, not before.
	tok2 := f.token("ann2", jwtauth.Claims{Issuer: "authgate", Subject: f.ann.ID, ID: "j2", ExpiresAt: f.clock.Now().Add(time.Minute)})
	if _, err := f.authn(tok2); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute + 10*time.Second)
	if _, err := f.authn(tok2); err != nil {
		t.Errorf("at exp + leeway: %v, want accepted", err)
	}
	f.clock.Advance(time.Second)
	_, err = f.authn(tok2)
	wantCode(t, err, http.StatusUnauthorized, "expired_token")
	// Disabled and deleted users.
	tok3 := f.token("ann3", jwtauth.Claims{Issuer: "authgate", Subject: f.ann.ID, ID: "j3"})
	f.ann.Disabled = true
	if err := f.users.Update(context.Background(), f.ann); err != nil {
		t.Fatal(err)
	}
	_, err = f.authn(tok3)
	wantCode(t, err, http.StatusUnauthorized, "invalid_token")
	tok4 := f.token("ghost", jwtauth.Claims{Issuer: "authgate", Subject: user.NewID(), ID: "j4"})
	_, err = f.authn(tok4)
	wantCode(t, err, http.StatusUnauthorized, "invalid_token")
	// A bad signature.
	_, err = f.authn("forged")
	wantCode(t, err, http.StatusUnauthorized, "invalid_token")
}

func TestTokenAuthEnrollOnly(t *testing.T) {
	f := newTokenFixture(t, false)
	tok := f.token("enrol", jwtauth.Claims{Issuer: "authgate", Subject: f.ann.ID, ID: "j1", Raw: map[string]any{"mfa_enroll": true}})
	for range 2 { // verified, then cached
		_, err := f.authn(tok)
		wantCode(t, err, http.StatusUnauthorized, "mfa_required")
	}
}

// TestTokenAuthOrgFollowsUser: a built-in token's organisation is the user's current one,
// not the one it was minted with.
func TestTokenAuthOrgFollowsUser(t *testing.T) {
	f := newTokenFixture(t, false)
	tok := f.token("ann", jwtauth.Claims{Issuer: "authgate", Subject: f.ann.ID, ID: "j1", Org: "old-org"})
	f.ann.Organization = "new-org"
	if err := f.users.Update(context.Background(), f.ann); err != nil {
		t.Fatal(err)
	}
	if p, err := f.authn(tok); err != nil || p.Org != "new-org" || p.Issuer != "" {
		t.Errorf("principal %+v, %v; want org new-org and no issuer", p, err)
	}
}

func TestTokenAuthExternalScopes(t *testing.T) {
	f := newTokenFixture(t, false)
	tok := f.token("ext", jwtauth.Claims{Issuer: "https://login.example.com/", Subject: "u-42", ID: "x",
		Scopes: []string{"billing:read"}, Role: "guest", Org: "acme"})
	reads := f.users.reads.Load()
	p, err := f.authn(tok)
	if err != nil || fmt.Sprint(p.Scopes) != "[billing:read usage:read]" || p.Org != "acme" || p.Subject != "u-42" || p.Issuer != "https://login.example.com/" {
		t.Fatalf("external token: %+v, %v", p, err)
	}
	if f.users.reads.Load() != reads {
		t.Errorf("an external token read the user store")
	}
	// The store being down does not concern tokens of other issuers.
	f.down.Store(true)
	f.cache.Flush()
	if _, err := f.authn(tok); err != nil {
		t.Errorf("external token with the store down: %v", err)
	}
}

func TestTokenAuthStoreDown(t *testing.T) {
	for _, failClosed := range []bool{false, true} {
		t.Run(fmt.Sprintf("fail_closed=%t", failClosed), func(t *testing.T) {
			f := newTokenFixture(t, failClosed)
			known := f.token("known", jwtauth.Claims{Issuer: "authgate", Subject: f.ann.ID, ID: "j1"})
			unknown := f.token("unseen", jwtauth.Claims{Issuer: "authgate", Subject: f.ann.ID, ID: "j2"})
			if _, err := f.authn(known); err != nil {
				t.Fatal(err)
			}
			f.down.Store(true)
			f.clock.Advance(time.Minute) // past the cache TTL: the entry is only stale now
			_, err := f.authn(known)
			if failClosed {
				wantCode(t, err, http.StatusServiceUnavailable, "store_unavailable")
			} else if err != nil {
				t.Errorf("known token, serve_cached: %v", err)
			}
			_, err = f.authn(unknown)
			wantCode(t, err, http.StatusServiceUnavailable, "store_unavailable")
			var he *httperr.Error
			if errors.As(err, &he) && he.RetryAfter <= 0 {
				t.Errorf("no Retry-After on 503")
			}
			f.down.Store(false)
			if _, err := f.authn(unknown); err != nil {
				t.Errorf("after the store is back: %v", err)
			}
		})
	}
}

// TestTokenAuthSessionsEnded: tokens minted in an earlier session epoch of the user (before
// a new password) are refused; tokens of the current epoch pass.
func TestTokenAuthSessionsEnded(t *testing.T) {
	f := newTokenFixture(t, false)
	old := f.token("old", jwtauth.Claims{Issuer: "authgate", Subject: f.ann.ID, ID: "j1"})
	if _, err := f.authn(old); err != nil {
		t.Fatal(err)
	}
	f.ann.SessionEpoch = 1
	if err := f.users.Update(context.Background(), f.ann); err != nil {
		t.Fatal(err)
	}
	f.cache.Invalidate(OwnerTag(f.ann.ID))
	_, err := f.authn(old)
	wantCode(t, err, http.StatusUnauthorized, "revoked_token")
	fresh := f.token("fresh", jwtauth.Claims{Issuer: "authgate", Subject: f.ann.ID, ID: "j2", Raw: map[string]any{"sep": float64(1)}})
	if _, err := f.authn(fresh); err != nil {
		t.Errorf("a token of the current epoch: %v", err)
	}
}

// TestTokenAuthSession: the issuer's own calls get the same checks (an ended session, a
// disabled user, a revoked family: refused), accept an enrolment-only token, and refuse
// other issuers' tokens.
func TestTokenAuthSession(t *testing.T) {
	f := newTokenFixture(t, false)
	ctx := context.Background()
	enrol := f.token("enrol", jwtauth.Claims{Issuer: "authgate", Subject: f.ann.ID, ID: "j1", Raw: map[string]any{"mfa_enroll": true}})
	if c, err := f.auth.Session(ctx, enrol); err != nil || !EnrollOnly(c) {
		t.Fatalf("enrolment-only token: %+v, %v", c, err)
	}
	other := f.token("other", jwtauth.Claims{Issuer: "https://idp.example.com/", Subject: f.ann.ID, ID: "j2"})
	_, err := f.auth.Session(ctx, other)
	wantCode(t, err, http.StatusUnauthorized, "invalid_token")

	fam := f.token("fam", jwtauth.Claims{Issuer: "authgate", Subject: f.ann.ID, ID: "j3", Raw: map[string]any{"sid": "fam_1"}})
	if c, err := f.auth.Session(ctx, fam); err != nil || SessionID(c) != "fam_1" {
		t.Fatalf("token of family fam_1: %+v, %v", c, err)
	}
	f.revoked["sid:fam_1"] = true
	f.cache.Invalidate(SessionTag("fam_1"))
	_, err = f.auth.Session(ctx, fam)
	wantCode(t, err, http.StatusUnauthorized, "revoked_token")
	_, err = f.authn(fam)
	wantCode(t, err, http.StatusUnauthorized, "revoked_token")

	f.ann.SessionEpoch = 1
	if err := f.users.Update(ctx, f.ann); err != nil {
		t.Fatal(err)
	}
	f.cache.Invalidate(OwnerTag(f.ann.ID))
	_, err = f.auth.Session(ctx, enrol)
	wantCode(t, err, http.StatusUnauthorized, "revoked_token")
}

// TestTokenAuthVerifierRefusals: the verifier's refusals become the SPEC's codes; an issuer
// whose keys were never fetched is the gateway's trouble (503 with Retry-After), never 401.
func TestTokenAuthVerifierRefusals(t *testing.T) {
	f := newTokenFixture(t, false)
	f.ver.errs = map[string]error{
		"expired": fmt.Errorf("v: %w", jwtauth.ErrExpired),
		"nokeys":  fmt.Errorf("v: %w", jwtauth.ErrNoKeys),
		"alg":     fmt.Errorf("v: %w", jwtauth.ErrAlgorithm),
		"early":   fmt.Errorf("v: %w", jwtauth.ErrNotYetValid),
	}
	for tok, want := range map[string]struct {
		status int
		code   string
	}{
		"expired": {http.StatusUnauthorized, "expired_token"},
		"nokeys":  {http.StatusServiceUnavailable, "store_unavailable"},
		"alg":     {http.StatusUnauthorized, "invalid_token"},
		"early":   {http.StatusUnauthorized, "invalid_token"},
	} {
		_, err := f.authn(tok)
		wantCode(t, err, want.status, want.code)
		var he *httperr.Error
		if errors.As(err, &he) && (want.status == http.StatusServiceUnavailable) != (he.RetryAfter > 0) {
			t.Errorf("%s: Retry-After %v", tok, he.RetryAfter)
		}
	}
}
