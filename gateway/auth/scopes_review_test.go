package auth

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/credcache"
	"github.com/authgate/authgate/gateway/jwtauth"
	"github.com/authgate/authgate/gateway/user"
	"github.com/authgate/authgate/policy"
)

// TestReview13_EffectiveScopesOncePerCacheEntry: a personal key's effective scopes are
// computed when its cache entry is first used, not on every request; again after the
// entry is invalidated, and again after a reload gives the role a new definition.
func TestReview13_EffectiveScopesOncePerCacheEntry(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	ctx := context.Background()
	keys := apikey.NewMemStore(clock)
	users := user.NewMemStore(clock)
	var roles atomic.Pointer[map[string][]string]
	r1 := map[string][]string{"member": {"reports:*", "keys:manage"}}
	roles.Store(&r1)
	cache, err := credcache.New[*CachedKey](credcache.Options{MaxEntries: 100, TTL: time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	hasher := apikey.NewHasher("")
	a := NewKeyAuthenticator(KeyAuthenticatorOptions{Prefix: "sk", Hasher: hasher, Records: keys, Cache: cache,
		Owners: users, Roles: func() map[string][]string { return *roles.Load() }, StorePolicy: StorePolicy{Now: clock}})
	var calls atomic.Int64
	a.effective = func(key, role []string) []string {
		calls.Add(1)
		return policy.EffectiveScopes(key, role)
	}
	hash, err := user.HashPassword("correct horse battery", user.TestParams)
	if err != nil {
		t.Fatal(err)
	}
	ann := user.User{ID: user.NewID(), Email: "ann@example.com", PasswordHash: hash, Role: "member"}
	if err := users.Create(ctx, ann); err != nil {
		t.Fatal(err)
	}
	plain, _ := apikey.Generate("sk", apikey.Live)
	k := apikey.Key{ID: apikey.NewID(), Name: "k", Type: apikey.Personal, Environment: apikey.Live,
		Scopes: []string{"reports:read", "reports:generate", "dashboards:read"}, CreatedBy: ann.ID, CreatedAt: now,
		Start: plain[:apikey.StartLen]}
	if err := keys.Create(ctx, k, hasher.Hash(plain)); err != nil {
		t.Fatal(err)
	}
	auth := func(want string) {
		t.Helper()
		p, err := a.Authenticate(ctx, Credential{Kind: APIKey, Value: plain})
		if err != nil || fmt.Sprint(p.Scopes) != want {
			t.Fatalf("scopes %v, err %v; want %s", p.Scopes, err, want)
		}
	}
	for range 50 {
		auth("[reports:read reports:generate]")
	}
	if got := calls.Load(); got != 1 {
		t.Fatalf("50 requests of one cached key computed the effective scopes %d times, want 1", got)
	}
	cache.Invalidate(KeyTag(k.ID))
	for range 10 {
		auth("[reports:read reports:generate]")
	}
	if got := calls.Load(); got != 2 {
		t.Fatalf("after an invalidation: %d computations, want 2", got)
	}
	// A reload: the role has a new definition, and the cached entry follows it at once.
	r2 := map[string][]string{"member": {"reports:read", "dashboards:read"}}
	roles.Store(&r2)
	for range 10 {
		auth("[reports:read dashboards:read]")
	}
	if got := calls.Load(); got != 3 {
		t.Fatalf("after a reload: %d computations, want 3", got)
	}
}

// TestReview13_TokenScopesBounded: a token of a configured issuer with more than
// MaxTokenScopes scopes, or a scope longer than MaxTokenScopeLen, is 401 invalid_token;
// at the bounds it is accepted, and its scopes (with its role's) are merged once per
// cache entry.
func TestReview13_TokenScopesBounded(t *testing.T) {
	many := func(n, size int) []string {
		out := make([]string, n)
		for i := range out {
			s := fmt.Sprintf("r%d:read", i)
			out[i] = s + strings.Repeat("x", max(0, size-len(s)))
		}
		return out
	}
	tests := []struct {
		name   string
		scopes []string
		ok     bool
	}{
		{"at the count bound", many(MaxTokenScopes, 8), true},
		{"one scope too many", many(MaxTokenScopes+1, 8), false},
		{"thousands", many(4000, 8), false},
		{"at the length bound", many(1, MaxTokenScopeLen), true},
		{"a scope too long", many(1, MaxTokenScopeLen+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Now()
			cache, err := credcache.New[*CachedToken](credcache.Options{MaxEntries: 10, TTL: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			claims := jwtauth.Claims{Issuer: "https://partner.example.com/", Subject: "p1", ID: "j1", Role: "reader",
				Scopes: tt.scopes, ExpiresAt: now.Add(time.Hour)}
			v := &claimsVerifier{claims: claims}
			roles := map[string][]string{"reader": {"reports:read"}}
			a := NewTokenAuthenticator(TokenAuthenticatorOptions{Verifier: v, Cache: cache,
				Roles: func() map[string][]string { return roles }})
			p, err := a.Authenticate(context.Background(), Credential{Kind: JWT, Value: "tok"})
			if !tt.ok {
				wantCode(t, err, http.StatusUnauthorized, "invalid_token")
				return
			}
			if err != nil {
				t.Fatalf("got %v, want accepted", err)
			}
			if got, want := len(p.Scopes), len(tt.scopes)+1; got != want {
				t.Fatalf("got %d scopes, want %d", got, want)
			}
			p2, _ := a.Authenticate(context.Background(), Credential{Kind: JWT, Value: "tok"})
			if &p2.Scopes[0] != &p.Scopes[0] {
				t.Errorf("a cached token's scopes were merged again")
			}
		})
	}
}

// claimsVerifier returns its claims for every token.
type claimsVerifier struct{ claims jwtauth.Claims }

func (f *claimsVerifier) Verify(context.Context, string) (jwtauth.Claims, error) {
	return f.claims, nil
}
