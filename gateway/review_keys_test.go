package gateway_test

// Regression tests of issue 9, items 5, 6 and 7 (key management found open by an outside
// review), against a real redis-server: keys:manage scoped to the minting principal, a
// user's admin keys following the user, and rotation's hard end.

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/admin"
	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/store/redistest"
)

// keysPage is the list answer of the management API.
type keysPage struct {
	Keys []admin.KeyView `json:"keys"`
}

// listedIDs is the ids a list answer holds.
func listedIDs(tb testing.TB, a answer) []string {
	tb.Helper()
	var ids []string
	for _, k := range decodeJSON[keysPage](tb, a).Keys {
		ids = append(ids, k.ID)
	}
	return ids
}

// TestReview05_KeysManageScopedToMintingPrincipal: two tenants' keys:manage keys, X and Y,
// made by the same admin (one created_by), each mint a key. Before the fix X listed,
// read, renamed, re-IP-restricted and revoked Y's key, because ownership compared
// created_by only. Now a key manages itself and the keys it minted (minted_by), nothing
// else: another's key is 404 not_found (its existence does not leak), and it keeps working.
func TestReview05_KeysManageScopedToMintingPrincipal(t *testing.T) {
	rs := redistest.Start(t)
	g := serveLive(t, rs, liveOpts{})
	api := g.ups["api"]
	tenant := []string{"keys:manage", "reports:read"}
	x := g.createKey(g.adminKey, map[string]any{"name": "tenant-x", "scopes": tenant, "expires_in_days": 90})
	y := g.createKey(g.adminKey, map[string]any{"name": "tenant-y", "scopes": tenant, "expires_in_days": 90})
	if x.CreatedBy != y.CreatedBy || !strings.HasPrefix(x.MintedBy, "key:") {
		t.Fatalf("premise: X and Y share a creator (%q, %q), minted by the admin key (%q)", x.CreatedBy, y.CreatedBy, x.MintedBy)
	}
	x1 := g.createKey(x.Secret, map[string]any{"name": "x1", "scopes": []string{"reports:read"}, "expires_in_days": 30})
	y1 := g.createKey(y.Secret, map[string]any{"name": "y1", "scopes": []string{"reports:read"}, "expires_in_days": 30})
	if x1.MintedBy != "key:"+x.ID || y1.MintedBy != "key:"+y.ID {
		t.Fatalf("minted_by: x1 %q, y1 %q; want key:%s, key:%s", x1.MintedBy, y1.MintedBy, x.ID, y.ID)
	}
	wantStatus(t, "y1 before", g.report(y1.Secret), http.StatusOK)

	// A key made before minted_by existed (created_by only): no key owns it.
	legacy := apikey.Key{ID: apikey.NewID(), Name: "legacy", Type: apikey.Personal, Environment: apikey.Live,
		Scopes: []string{"reports:read"}, CreatedBy: x.CreatedBy, CreatedAt: time.Now()}
	legacyPlain, _ := apikey.Generate("sk", apikey.Live)
	legacy.Start = legacyPlain[:apikey.StartLen]
	if err := keyStore(t, rs).Create(context.Background(), legacy, apikey.NewHasher("").Hash(legacyPlain)); err != nil {
		t.Fatal(err)
	}

	seen := api.count()
	for _, victim := range []string{y1.ID, y.ID, legacy.ID} {
		calls := []struct {
			method, path string
			body         any
		}{
			{"GET", keysAPI + victim + "/", nil},
			{"PATCH", keysAPI + victim + "/", map[string]any{"name": "pwned"}},
			{"PATCH", keysAPI + victim + "/", map[string]any{"allowed_ips": []string{"203.0.113.7"}}},
			{"POST", keysAPI + victim + "/refresh/", nil},
			{"POST", keysAPI + victim + "/rotate/", map[string]any{"revoke_old_after": "0s"}},
			{"GET", keysAPI + victim + "/activity/", nil},
			{"DELETE", keysAPI + victim + "/", nil},
		}
		for _, c := range calls {
			t.Run(c.method+" "+strings.TrimPrefix(c.path, keysAPI), func(t *testing.T) {
				assertRejected(t, g.call(c.method, c.path, x.Secret, c.body), http.StatusNotFound, "not_found")
			})
		}
	}
	if n := api.count(); n != seen {
		t.Errorf("the upstream saw %d requests during the refusals, want 0", n-seen)
	}

	// X lists only what it minted; asking for Y's is refused.
	l := g.call("GET", keysAPI, x.Secret, nil)
	wantStatus(t, "list as X", l, http.StatusOK)
	if got := listedIDs(t, l); !slices.Equal(got, []string{x1.ID}) {
		t.Errorf("X lists %v, want only [%s] (x1)", got, x1.ID)
	}
	assertRejected(t, g.call("GET", keysAPI+"?minted_by=key:"+y.ID, x.Secret, nil), http.StatusForbidden, "insufficient_scope")

	// Y1 and Y are untouched and still work at the upstream.
	for _, k := range []admin.KeyView{y, y1} {
		got := decodeJSON[admin.KeyView](t, g.call("GET", keysAPI+k.ID+"/", g.adminKey, nil))
		if got.Name != k.Name || len(got.AllowedIPs) != 0 || got.Status != apikey.StatusActive || got.ReplacedBy != "" {
			t.Errorf("%s changed by X's refused calls: %+v", k.ID, got)
		}
	}
	wantStatus(t, "y1 after", g.report(y1.Secret), http.StatusOK)
	wantStatus(t, "legacy key after", g.report(legacyPlain), http.StatusOK)

	// X manages its own: x1, and itself.
	wantStatus(t, "X reads x1", g.call("GET", keysAPI+x1.ID+"/", x.Secret, nil), http.StatusOK)
	wantStatus(t, "X renames x1", g.call("PATCH", keysAPI+x1.ID+"/", x.Secret, map[string]any{"name": "x1b"}), http.StatusOK)
	wantStatus(t, "X reads itself", g.call("GET", keysAPI+x.ID+"/", x.Secret, nil), http.StatusOK)

	// A rotated X keeps managing what X minted (same lineage); Y still cannot.
	rot := g.call("POST", keysAPI+x.ID+"/rotate/", g.adminKey, nil)
	wantStatus(t, "admin rotates X", rot, http.StatusCreated)
	x2 := decodeJSON[admin.KeyView](t, rot)
	wantStatus(t, "rotated X reads x1", g.call("GET", keysAPI+x1.ID+"/", x2.Secret, nil), http.StatusOK)
	assertRejected(t, g.call("DELETE", keysAPI+x1.ID+"/", y.Secret, nil), http.StatusNotFound, "not_found")
	wantStatus(t, "x1 after", g.report(x1.Secret), http.StatusOK)
}

// TestReview06_AdminKeysFollowTheirUser: before the fix, carol's admin key outlived her:
// after root disabled carol it re-enabled her, and after carol was deleted it created a
// new admin user. Now a user's admin key is refused while the user is disabled (401, on
// both replicas, at the management API and at a protected route, the upstream never
// reached) and revoked, with its audit event, when the user is deleted.
func TestReview06_AdminKeysFollowTheirUser(t *testing.T) {
	rs := redistest.Start(t)
	o := issuerOpts(t.TempDir(), nil)
	a, b := serveLive(t, rs, o), serveLive(t, rs, o)
	waitForUser(t, rs, adminEmail)
	root := bearer(a.loginAs(adminEmail, adminPass, "").Access)
	created := a.call("POST", usersAPI, "", map[string]string{"email": "carol@example.com", "password": "carol's long password", "role": "admin"}, root)
	wantStatus(t, "create carol", created, http.StatusCreated)
	carol := decodeJSON[admin.UserView](t, created)
	carolTok := a.loginAs("carol@example.com", "carol's long password", "").Access
	k := a.createKeyBearer(carolTok, map[string]any{"name": "carol-admin", "type": "admin", "scopes": []string{"*"}})
	if k.Type != apikey.Admin || k.CreatedBy != carol.ID || k.MintedBy != "user:"+carol.ID {
		t.Fatalf("carol's admin key: type %s, created_by %s, minted_by %s", k.Type, k.CreatedBy, k.MintedBy)
	}
	for _, g := range []*liveGW{a, b} { // cached on both replicas
		wantStatus(t, "admin key lists users", g.call("GET", usersAPI, k.Secret, nil), http.StatusOK)
		wantStatus(t, "admin key at the upstream", g.report(k.Secret), http.StatusOK)
	}

	// Demoted: her admin key must not let her promote herself back.
	wantStatus(t, "root demotes carol", a.call("PATCH", usersAPI+carol.ID+"/", "", map[string]string{"role": "member"}, root), http.StatusOK)
	waitWithin(t, revocationBound, "B to refuse the demoted carol's admin key", func() bool { return b.report(k.Secret).status == http.StatusUnauthorized })
	seen := a.ups["api"].count() + b.ups["api"].count()
	for _, g := range []*liveGW{a, b} {
		assertRejected(t, g.report(k.Secret), http.StatusUnauthorized, "invalid_api_key")
		assertRejected(t, g.call("PATCH", usersAPI+carol.ID+"/", k.Secret, map[string]string{"role": "admin"}), http.StatusUnauthorized, "invalid_api_key")
	}
	if u := decodeJSON[admin.UserView](t, a.call("GET", usersAPI+carol.ID+"/", "", nil, root)); u.Role != "member" {
		t.Fatalf("carol promoted herself back to %s", u.Role)
	}

	wantStatus(t, "root disables carol", a.call("PATCH", usersAPI+carol.ID+"/", "", map[string]bool{"disabled": true}, root), http.StatusOK)
	waitWithin(t, revocationBound, "B to refuse carol's admin key", func() bool { return b.report(k.Secret).status == http.StatusUnauthorized })
	for _, g := range []*liveGW{a, b} {
		assertRejected(t, g.report(k.Secret), http.StatusUnauthorized, "invalid_api_key")
		assertRejected(t, g.call("GET", usersAPI, k.Secret, nil), http.StatusUnauthorized, "invalid_api_key")
		assertRejected(t, g.call("PATCH", usersAPI+carol.ID+"/", k.Secret, map[string]bool{"disabled": false}), http.StatusUnauthorized, "invalid_api_key")
		assertRejected(t, g.call("POST", usersAPI, k.Secret, map[string]string{"email": "mallory@example.com", "password": "mallory's long password", "role": "admin"}),
			http.StatusUnauthorized, "invalid_api_key")
	}
	if n := a.ups["api"].count() + b.ups["api"].count(); n != seen {
		t.Errorf("the upstreams saw %d requests of a disabled user's admin key, want 0", n-seen)
	}
	if u := decodeJSON[admin.UserView](t, a.call("GET", usersAPI+carol.ID+"/", "", nil, root)); !u.Disabled {
		t.Fatalf("carol was re-enabled")
	}

	wantStatus(t, "root deletes carol", a.call("DELETE", usersAPI+carol.ID+"/", "", nil, root), http.StatusNoContent)
	got := decodeJSON[admin.KeyView](t, b.call("GET", keysAPI+k.ID+"/", "", nil, root))
	if got.Status != apikey.StatusRevoked || got.RevokedAt == nil {
		t.Errorf("carol's admin key after her deletion: status %s, want revoked", got.Status)
	}
	stream, err := rs.Client(t).XRange(context.Background(), redisPrefix+"audit", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	audited := false
	for _, e := range stream {
		if e.Values["event"] == "revoked" && e.Values["key_id"] == k.ID {
			audited = true
		}
	}
	if !audited {
		t.Errorf("no audit event revoked for %s in %v", k.ID, stream)
	}
	waitWithin(t, revocationBound, "B to see the revocation", func() bool {
		return b.call("POST", usersAPI, k.Secret, map[string]string{"email": "mallory@example.com", "password": "mallory's long password", "role": "admin"}).status == http.StatusUnauthorized &&
			b.report(k.Secret).status == http.StatusUnauthorized
	})
	for _, g := range []*liveGW{a, b} {
		assertRejected(t, g.call("POST", usersAPI, k.Secret, map[string]string{"email": "mallory@example.com", "password": "mallory's long password", "role": "admin"}),
			http.StatusUnauthorized, "revoked_api_key")
		assertRejected(t, g.report(k.Secret), http.StatusUnauthorized, "revoked_api_key")
	}
	if list := a.call("GET", usersAPI+"?q=mallory", "", nil, root); strings.Contains(string(list.body), "mallory") {
		t.Errorf("a deleted admin's key created a user: %s", list.body)
	}
	if n := a.ups["api"].count() + b.ups["api"].count(); n != seen {
		t.Errorf("the upstreams saw %d requests of a refused key, want 0", n-seen)
	}
}

// TestReview07_RotationGraceSurvivesRefresh: before the fix, rotating with
// revoke_old_after shortened the old key's expiry, and its holder then self-refreshed it
// for 90 more days. Now the rotation records a hard end (hard_expires_at, replaced_by):
// self-refresh, management refresh and an expires_in_days edit are 409 key_rotated, and
// the expiry stays at the hard end. (The end itself passing: gateway/admin's
// TestReview07_RotatedKeyEndsAtItsGrace, on an injected clock.)
func TestReview07_RotationGraceSurvivesRefresh(t *testing.T) {
	rs := redistest.Start(t)
	g := serveLive(t, rs, liveOpts{})
	old := g.createKey(g.adminKey, map[string]any{"name": "ci", "scopes": []string{"reports:read"}, "expires_in_days": 90})
	rot := g.call("POST", keysAPI+old.ID+"/rotate/", g.adminKey, map[string]any{"revoke_old_after": "1h"})
	wantStatus(t, "rotate", rot, http.StatusCreated)
	nk := decodeJSON[admin.KeyView](t, rot)
	if nk.Lineage != old.ID || nk.HardExpiresAt != nil || nk.ReplacedBy != "" {
		t.Errorf("the new key: lineage %q, hard_expires_at %v, replaced_by %q", nk.Lineage, nk.HardExpiresAt, nk.ReplacedBy)
	}
	before := decodeJSON[admin.KeyView](t, g.call("GET", keysAPI+old.ID+"/", g.adminKey, nil))
	if before.ReplacedBy != nk.ID || before.HardExpiresAt == nil || before.ExpiresAt == nil || !before.ExpiresAt.Equal(*before.HardExpiresAt) ||
		!before.HardExpiresAt.Before(*old.ExpiresAt) {
		t.Fatalf("the old key after rotation: replaced_by %q, expires_at %v, hard_expires_at %v", before.ReplacedBy, before.ExpiresAt, before.HardExpiresAt)
	}
	wantStatus(t, "old key in its grace", g.report(old.Secret), http.StatusOK)

	seen := g.ups["api"].count()
	assertRejected(t, g.call("POST", "/api/refresh_token", "", nil, "Authorization: Token "+old.Secret), http.StatusConflict, "key_rotated")
	assertRejected(t, g.call("POST", keysAPI+old.ID+"/refresh/", g.adminKey, nil), http.StatusConflict, "key_rotated")
	assertRejected(t, g.call("PATCH", keysAPI+old.ID+"/", g.adminKey, map[string]any{"expires_in_days": 90}), http.StatusConflict, "key_rotated")
	if n := g.ups["api"].count(); n != seen {
		t.Errorf("the upstream saw %d requests, want 0", n-seen)
	}
	after := decodeJSON[admin.KeyView](t, g.call("GET", keysAPI+old.ID+"/", g.adminKey, nil))
	if after.ExpiresAt == nil || !after.ExpiresAt.Equal(*before.ExpiresAt) || !after.HardExpiresAt.Equal(*before.HardExpiresAt) {
		t.Errorf("expiry moved: %v -> %v (hard end %v)", before.ExpiresAt, after.ExpiresAt, after.HardExpiresAt)
	}
	// The new key refreshes as any key does.
	wantStatus(t, "new key self-refresh", g.call("POST", "/api/refresh_token", "", nil, "Authorization: Token "+nk.Secret), http.StatusOK)
}
