package login_test

// Review tests: each demonstrated a defect found in a security review of the issuer's
// calls; they stay as regression tests of the fixes.

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/authgate/authgate/gateway/issuer"
	"github.com/authgate/authgate/gateway/login"
	"github.com/authgate/authgate/gateway/login/logintest"
	"github.com/authgate/authgate/gateway/reqinfo"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/user"
)

// hookUsers is a user store whose Get can run a hook after reading, to interleave another
// writer (an admin's PATCH on another replica) between a handler's read and its write.
type hookUsers struct {
	*user.MemStore
	mu       sync.Mutex
	afterGet func()
}

func (h *hookUsers) Get(ctx context.Context, id string) (user.User, error) {
	u, err := h.MemStore.Get(ctx, id)
	h.mu.Lock()
	f := h.afterGet
	h.afterGet = nil
	h.mu.Unlock()
	if f != nil {
		f()
	}
	return u, err
}

type reviewEnv struct {
	h      *login.Handler
	users  *hookUsers
	minter *issuer.Minter
	mode   string
	mu     sync.Mutex
}

func newReviewEnv(t *testing.T) *reviewEnv {
	t.Helper()
	ks, _, err := issuer.LoadOrCreateKeySet(filepath.Join(t.TempDir(), "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	e := &reviewEnv{users: &hookUsers{MemStore: user.NewMemStore(time.Now)}, mode: login.MFAOptional}
	e.minter = &issuer.Minter{Keys: ks, Issuer: "review", TTL: time.Hour}
	revoked := map[string]bool{}
	var rmu sync.Mutex
	e.h, err = login.New(login.Options{
		Prefix: "/api/auth", Issuer: "review", Users: e.users, Minter: e.minter, Keys: ks,
		Refresh: issuer.NewMemRefreshStore(nil), RefreshTTL: 24 * time.Hour,
		TOTP:    issuer.NewTOTPChecker(store.NewMemory(time.Now), nil),
		MFA:     func() string { e.mu.Lock(); defer e.mu.Unlock(); return e.mode },
		IsAdmin: func(role string) bool { return role == "admin" },
		RevokeAccess: func(_ context.Context, jti string, _ time.Time) error {
			rmu.Lock()
			defer rmu.Unlock()
			revoked[jti] = true
			return nil
		},
		RevokeSession: func(_ context.Context, sid string, _ time.Time) error {
			rmu.Lock()
			defer rmu.Unlock()
			revoked["sid:"+sid] = true
			return nil
		},
		Tokens: logintest.Sessions(t, ks, "review", e.users, func(_ context.Context, jti, sid string) (bool, error) {
			rmu.Lock()
			defer rmu.Unlock()
			return revoked[jti] || sid != "" && revoked["sid:"+sid], nil
		}, 5*time.Second),
		Leeway: 5 * time.Second, PasswordParams: user.TestParams, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *reviewEnv) setMode(m string) { e.mu.Lock(); e.mode = m; e.mu.Unlock() }

func (e *reviewEnv) addUser(t *testing.T, email, pw, role string) user.User {
	t.Helper()
	h, err := user.HashPassword(pw, user.TestParams)
	if err != nil {
		t.Fatal(err)
	}
	u := user.User{ID: user.NewID(), Email: email, PasswordHash: h, Role: role}
	if err := e.users.Create(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	got, err := e.users.MemStore.Get(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func (e *reviewEnv) call(t *testing.T, path string, body any, token string) *httptest.ResponseRecorder {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	r := httptest.NewRequest("POST", path, bytes.NewReader(b))
	r.Header.Set("Content-Type", "application/json")
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	ctx, _ := reqinfo.New(r.Context())
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, r.WithContext(ctx))
	return rec
}

func (e *reviewEnv) login(t *testing.T, email, pw string) login.LoginAnswer {
	t.Helper()
	rec := e.call(t, "/api/auth/login/", map[string]string{"email": email, "password": pw}, "")
	if rec.Code != http.StatusOK {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	var a login.LoginAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestReviewRefreshBypassesMFARequirement: a refresh family issued while MFA was not
// required of the user keeps minting full (not enrolment-only) access tokens after
// issuer.mfa becomes "required" (or after the user is promoted to admin under
// "required_for_admins"): refresh never asks mfaRequiredOf, so the MFA policy is
// bypassed for as long as the family is rotated (forever: each rotation extends it).
func TestReviewRefreshBypassesMFARequirement(t *testing.T) {
	e := newReviewEnv(t)
	e.addUser(t, "ann@example.com", "ann's long password", "member")
	la := e.login(t, "ann@example.com", "ann's long password")
	if la.Refresh == "" {
		t.Fatal("no refresh token under mfa: optional")
	}

	e.setMode(login.MFARequired) // the operator now requires MFA of everyone

	// A fresh login is enrolment-only, as intended...
	if fresh := e.login(t, "ann@example.com", "ann's long password"); !fresh.MFAEnrollmentRequired {
		t.Fatalf("fresh login under mfa: required is not enrolment-only: %+v", fresh)
	}
	// ...but the old refresh token still yields a full token.
	rec := e.call(t, "/api/auth/token/refresh/", map[string]string{"refresh": la.Refresh}, "")
	if rec.Code == http.StatusOK {
		var ra login.RefreshAnswer
		_ = json.Unmarshal(rec.Body.Bytes(), &ra)
		c, err := e.minter.Parse(ra.Access, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !c.EnrollOnly {
			t.Fatalf("refresh under mfa: required minted a full access token (amr %v) for a user without TOTP", c.AMR)
		}
	}
}

// TestReviewRefreshClaimsOTPNeverUsed: a family begun with a password-only login must not
// go on minting tokens once the user turns TOTP on (they would claim amr "otp" for a
// session that never passed it): verifying TOTP ends the user's refresh families.
func TestReviewRefreshClaimsOTPNeverUsed(t *testing.T) {
	e := newReviewEnv(t)
	e.addUser(t, "bob@example.com", "bob's long password", "member")
	la := e.login(t, "bob@example.com", "bob's long password") // amr: pwd
	rec := e.call(t, "/api/auth/mfa/totp/enroll/", login.EnrollRequest{CurrentPassword: "bob's long password"}, la.Access)
	if rec.Code != http.StatusOK {
		t.Fatalf("enroll: %d %s", rec.Code, rec.Body)
	}
	var ea login.EnrollAnswer
	_ = json.Unmarshal(rec.Body.Bytes(), &ea)
	code, err := totp.GenerateCode(ea.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rec := e.call(t, "/api/auth/mfa/totp/verify/", map[string]string{"code": code}, la.Access); rec.Code != http.StatusOK {
		t.Fatalf("verify: %d %s", rec.Code, rec.Body)
	}
	rec = e.call(t, "/api/auth/token/refresh/", map[string]string{"refresh": la.Refresh}, "")
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("refresh of a password-only family after TOTP was turned on: %d %s, want 401", rec.Code, rec.Body)
	}
}

// TestReviewEnrollOverwritesAdminDisable: enroll (and verify) read the user, then write the
// whole record back. An admin's PATCH that lands in between (disable, demote, new password)
// is silently undone. A user about to be disabled (or whose stolen token is used) can
// spam enroll to revert the admin's change, e.g. re-enable themselves or restore the old
// password after an admin reset it.
func TestReviewEnrollOverwritesAdminDisable(t *testing.T) {
	e := newReviewEnv(t)
	u := e.addUser(t, "eve@example.com", "eve's long password", "admin")
	la := e.login(t, "eve@example.com", "eve's long password")

	newHash, err := user.HashPassword("admin reset this password", user.TestParams)
	if err != nil {
		t.Fatal(err)
	}
	// The admin's PATCH {disabled: true, role: member, password: ...} lands between
	// enroll's Get and its Update.
	e.users.mu.Lock()
	e.users.afterGet = func() {
		adm, err := e.users.MemStore.Get(context.Background(), u.ID)
		if err != nil {
			t.Error(err)
			return
		}
		adm.Disabled, adm.Role, adm.PasswordHash = true, "member", newHash
		if err := e.users.MemStore.Update(context.Background(), adm); err != nil {
			t.Error(err)
		}
	}
	e.users.mu.Unlock()

	rec := e.call(t, "/api/auth/mfa/totp/enroll/", login.EnrollRequest{CurrentPassword: "eve's long password"}, la.Access)
	t.Logf("enroll: %d", rec.Code)

	got, err := e.users.MemStore.Get(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Disabled || got.Role != "member" || got.PasswordHash != newHash {
		t.Fatalf("the admin's change was lost: disabled=%t role=%q password reset kept=%t",
			got.Disabled, got.Role, got.PasswordHash == newHash)
	}
}
