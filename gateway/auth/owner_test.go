package auth

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/credcache"
	"github.com/authgate/authgate/gateway/user"
)

func TestEffectiveScopes(t *testing.T) {
	member := []string{"reports:*", "dashboards:*", "goals:read", "keys:manage"}
	viewer := []string{"reports:read", "dashboards:read", "goals:read", "keys:manage"}
	tests := []struct {
		key, role []string
		want      string
	}{
		{nil, viewer, "[reports:read dashboards:read goals:read keys:manage]"},
		{[]string{"reports:read", "reports:generate"}, viewer, "[reports:read]"},
		{[]string{"reports:read", "reports:generate"}, member, "[reports:read reports:generate]"},
		{[]string{"reports:*"}, viewer, "[reports:read]"},
		{[]string{"reports:*"}, member, "[reports:*]"},
		{[]string{"*"}, viewer, "[reports:read dashboards:read goals:read keys:manage]"},
		{[]string{"reports:read"}, []string{"*"}, "[reports:read]"},
		{[]string{"admin"}, viewer, "[]"},
		{[]string{"reports:read"}, nil, "[]"},
	}
	for _, tt := range tests {
		if got := fmt.Sprint(EffectiveScopes(tt.key, tt.role)); got != tt.want {
			t.Errorf("EffectiveScopes(%v, %v) = %s, want %s", tt.key, tt.role, got, tt.want)
		}
	}
}

// TestKeyAuthFollowsOwner: a user's personal key can do only what both the key and the
// user's current role allow; demoting, promoting, disabling or deleting the user changes
// the key at once once the owner tag is invalidated (as the users API does).
func TestKeyAuthFollowsOwner(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	ctx := context.Background()
	keys := apikey.NewMemStore(clock)
	users := user.NewMemStore(clock)
	roles := map[string][]string{
		"member": {"reports:*", "keys:manage"},
		"viewer": {"reports:read", "keys:manage"},
		"admin":  {"*"},
	}
	cache, err := credcache.New[*CachedKey](credcache.Options{MaxEntries: 100, TTL: time.Minute, NegativeTTL: 5 * time.Second, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	hasher := apikey.NewHasher("")
	a := NewKeyAuthenticator(KeyAuthenticatorOptions{Prefix: "sk", Hasher: hasher, Records: keys, Cache: cache,
		Owners: users, Roles: func() map[string][]string { return roles }, StorePolicy: StorePolicy{Now: clock}})

	hash, err := user.HashPassword("correct horse battery", user.TestParams)
	if err != nil {
		t.Fatal(err)
	}
	alice := user.User{ID: user.NewID(), Email: "alice@example.com", PasswordHash: hash, Role: "viewer"}
	if err := users.Create(ctx, alice); err != nil {
		t.Fatal(err)
	}
	carol := user.User{ID: user.NewID(), Email: "carol@example.com", PasswordHash: hash, Role: "admin"}
	if err := users.Create(ctx, carol); err != nil {
		t.Fatal(err)
	}
	mk := func(typ, owner string, scopes ...string) string {
		plain, _ := apikey.Generate("sk", apikey.Live)
		k := apikey.Key{ID: apikey.NewID(), Name: "k", Type: typ, Environment: apikey.Live, Scopes: scopes,
			CreatedBy: owner, CreatedAt: now, Start: plain[:apikey.StartLen]}
		if err := keys.Create(ctx, k, hasher.Hash(plain)); err != nil {
			t.Fatal(err)
		}
		return plain
	}
	scopesOf := func(plain string) (string, error) {
		p, err := a.Authenticate(ctx, Credential{Kind: APIKey, Value: plain})
		return fmt.Sprint(p.Scopes), err
	}
	narrow := mk(apikey.Personal, alice.ID, "reports:read", "reports:generate")
	all := mk(apikey.Personal, alice.ID)
	adminKey := mk(apikey.Admin, carol.ID, "reports:generate")
	botKey := mk(apikey.Personal, "bootstrap", "reports:generate")

	check := func(what, plain, want string) {
		t.Helper()
		got, err := scopesOf(plain)
		if err != nil || got != want {
			t.Errorf("%s: scopes %s, err %v; want %s", what, got, err, want)
		}
	}
	check("viewer, narrow key", narrow, "[reports:read]")
	check("viewer, key without scopes", all, "[reports:read keys:manage]")
	check("admin-type key is not tied to the owner's role", adminKey, "[reports:generate]")
	check("owner that is not a user", botKey, "[reports:generate]")

	// An admin key whose maker is demoted is refused: it would let them undo the demotion.
	carol.Role = "member"
	if err := users.Update(ctx, carol); err != nil {
		t.Fatal(err)
	}
	cache.Invalidate(OwnerTag(carol.ID))
	_, err = a.Authenticate(ctx, Credential{Kind: APIKey, Value: adminKey})
	wantCode(t, err, http.StatusUnauthorized, "invalid_api_key")
	carol.Role = "admin"
	if err := users.Update(ctx, carol); err != nil {
		t.Fatal(err)
	}
	cache.Invalidate(OwnerTag(carol.ID))
	check("admin again", adminKey, "[reports:generate]")

	alice.Role = "member"
	if err := users.Update(ctx, alice); err != nil {
		t.Fatal(err)
	}
	check("cached until the owner tag is invalidated", narrow, "[reports:read]")
	cache.Invalidate(OwnerTag(alice.ID))
	check("promoted to member", narrow, "[reports:read reports:generate]")

	alice.Disabled = true
	if err := users.Update(ctx, alice); err != nil {
		t.Fatal(err)
	}
	cache.Invalidate(OwnerTag(alice.ID))
	carol.Disabled = true
	if err := users.Update(ctx, carol); err != nil {
		t.Fatal(err)
	}
	cache.Invalidate(OwnerTag(carol.ID))
	for _, k := range []string{narrow, all, adminKey} { // an admin key of a disabled user too (issue 9, item 6)
		_, err := a.Authenticate(ctx, Credential{Kind: APIKey, Value: k})
		wantCode(t, err, http.StatusUnauthorized, "invalid_api_key")
	}

	if err := users.Delete(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	cache.Invalidate(OwnerTag(alice.ID))
	_, err = a.Authenticate(ctx, Credential{Kind: APIKey, Value: narrow})
	wantCode(t, err, http.StatusUnauthorized, "invalid_api_key")
}
