// Package logintest builds, for tests, the token checks the issuer's calls use in
// production (auth.TokenAuthenticator.Session), without a cache: tests change
// revocations and users directly, with no invalidation to publish.
package logintest

import (
	"context"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/credcache"
	"github.com/authgate/authgate/gateway/issuer"
	"github.com/authgate/authgate/gateway/jwtauth"
	"github.com/authgate/authgate/gateway/user"
)

// Users is what the checks read of the users.
type Users interface {
	Get(ctx context.Context, id string) (user.User, error)
}

// noCache never hits.
type noCache struct{}

func (noCache) Get([32]byte) (*auth.CachedToken, credcache.Result) { return nil, credcache.Miss }
func (noCache) Epoch() uint64                                      { return 0 }
func (noCache) PutIfCurrent(uint64, [32]byte, *auth.CachedToken, ...string) bool {
	return false
}

// Sessions returns the token authenticator of the tokens ks signs as iss, reading users
// and revoked (by jti or refresh family sid) at every check.
func Sessions(tb testing.TB, ks *issuer.KeySet, iss string, users Users,
	revoked func(ctx context.Context, jti, sid string) (bool, error), leeway time.Duration) *auth.TokenAuthenticator {
	tb.Helper()
	ver, err := jwtauth.New(context.Background(), []jwtauth.IssuerConfig{{Issuer: iss, Audiences: []string{iss},
		Algorithms: ks.Algorithms(), Keys: ks.Public(), RoleClaim: "role"}}, jwtauth.Options{Leeway: leeway})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(ver.Close)
	return auth.NewTokenAuthenticator(auth.TokenAuthenticatorOptions{Verifier: ver, Cache: noCache{}, Builtin: iss,
		Owners: users, Revoked: revoked, Roles: func() map[string][]string { return nil }, Leeway: leeway})
}
