package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/authgate/authgate/gateway/credcache"
	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/jwtauth"
	"github.com/authgate/authgate/gateway/user"
	"github.com/authgate/authgate/policy"
)

var errStoreDown = errors.New("auth: store down")

// TokenTag is the invalidation tag of a cached token by its jti: publishing it after a
// logout makes every replica re-check the token, and find it revoked.
func TokenTag(jti string) string { return "jti:" + jti }

// SessionTag is the invalidation tag of the cached tokens of one refresh family (their
// sid): publishing it after the family was revoked (logout, refresh-token reuse) makes
// every replica re-check those tokens, and find them revoked.
func SessionTag(sid string) string { return "sid:" + sid }

// CachedToken is what the verified-token cache keeps: the claims of a token whose
// signature, issuer, audience and times were checked, and for a token of the built-in
// issuer, its user's state and whether it was revoked when it was read.
type CachedToken struct {
	Claims  jwtauth.Claims
	Owner   *Owner // built-in issuer only: the user's current role and state
	Revoked bool   // built-in issuer only: logged out
	// scopes memoises the union of the scope claims and the role claim's scopes.
	scopes scopeMemo
	// teams memoises the valid team IDs of the team claim (external issuers).
	teams     []string
	teamsOnce sync.Once
}

// claimTeams are the team IDs of an external token's team claim; entries that cannot be
// team IDs ("*" among them) are dropped, so a claim can never grant every team.
func (ct *CachedToken) claimTeams() []string {
	ct.teamsOnce.Do(func() {
		for _, t := range ct.Claims.Teams {
			if user.ValidTeamID(t) && !slices.Contains(ct.teams, t) {
				ct.teams = append(ct.teams, t)
			}
		}
	})
	return ct.teams
}

// Bounds on the scopes a token may carry. A token of a configured issuer is the issuer's
// to shape, and the scopes travel to every upstream in X-Auth-Scopes: a token beyond
// them is refused as 401 invalid_token rather than trimmed, since dropping scopes would
// change what it means (issue 9, item 13).
const (
	// MaxTokenScopes is the most scopes a token's scope claim may list.
	MaxTokenScopes = 256
	// MaxTokenScopeLen is the longest scope, in bytes, a token may carry.
	MaxTokenScopeLen = 256
)

// checkTokenScopes refuses claims whose scopes are beyond MaxTokenScopes or
// MaxTokenScopeLen.
func checkTokenScopes(c jwtauth.Claims) error {
	if len(c.Scopes) > MaxTokenScopes {
		return unauthorized("invalid_token", fmt.Sprintf("the bearer token carries more than %d scopes", MaxTokenScopes), nil)
	}
	for _, sc := range c.Scopes {
		if len(sc) > MaxTokenScopeLen {
			return unauthorized("invalid_token", fmt.Sprintf("the bearer token carries a scope longer than %d bytes", MaxTokenScopeLen), nil)
		}
	}
	return nil
}

// tokenVerifier checks a token's signature and claims.
type tokenVerifier interface {
	Verify(ctx context.Context, token string) (jwtauth.Claims, error)
}

// tokenCache is the part of credcache.Cache the token authenticator uses.
type tokenCache interface {
	Get(h [32]byte) (*CachedToken, credcache.Result)
	Epoch() uint64
	PutIfCurrent(epoch uint64, h [32]byte, v *CachedToken, tags ...string) bool
}

// TokenAuthenticatorOptions configure a TokenAuthenticator.
type TokenAuthenticatorOptions struct {
	Verifier tokenVerifier
	Cache    tokenCache
	// Builtin is the iss of the built-in issuer, "" without one. Its tokens name a user
	// whose current role gives the scopes (a demoted or disabled user's tokens narrow or
	// stop at once), and they can be revoked by logout.
	Builtin string
	// Owners finds the users of built-in tokens. Required with Builtin.
	Owners owners
	// Revoked reports whether a built-in token was revoked, by its jti or by its refresh
	// family (sid, "" for a token without one). Required with Builtin.
	Revoked func(ctx context.Context, jti, sid string) (bool, error)
	// Roles returns policy.roles of the configuration being served.
	Roles func() map[string][]string
	// Leeway is jwt.leeway: a cached token expires at exp + Leeway, as a verified one would.
	Leeway time.Duration
	// StorePolicy applies to built-in tokens only; tokens of other issuers are verified
	// without the store.
	StorePolicy
}

// TokenAuthenticator verifies bearer JWTs: the cache first (a hit costs a hash and a map
// lookup, no signature check and no store access), else the verifier and, for the
// built-in issuer, the store. It is safe for concurrent use.
type TokenAuthenticator struct {
	o TokenAuthenticatorOptions
}

// NewTokenAuthenticator returns a TokenAuthenticator.
func NewTokenAuthenticator(o TokenAuthenticatorOptions) *TokenAuthenticator {
	o.StorePolicy = o.StorePolicy.withDefaults()
	return &TokenAuthenticator{o: o}
}

// Authenticate verifies c, which must be a JWT.
func (a *TokenAuthenticator) Authenticate(ctx context.Context, c Credential) (Principal, error) {
	ct, err := a.check(ctx, c.Value)
	if err != nil {
		return Principal{}, err
	}
	if ct.Owner == nil {
		scopes := a.scopes(ct)
		return Principal{Subject: ct.Claims.Subject, Issuer: ct.Claims.Issuer, Org: ct.Claims.Org, Env: "live", Scopes: scopes,
			Teams: ct.claimTeams(), AllTeams: policy.Grants(scopes, "admin")}, nil
	}
	if EnrollOnly(ct.Claims) {
		// It may only enrol TOTP, which the issuer's own calls check themselves: no route
		// and no management call accepts it, not even one that needs no scope.
		return Principal{}, &httperr.Error{Status: http.StatusUnauthorized, Code: "mfa_required",
			Msg:    "this token may only set up TOTP; log in again with a code afterwards",
			Header: http.Header{"Www-Authenticate": {`Bearer error="invalid_token", error_description="mfa_required"`}}}
	}
	// The user's current organisation and teams, not the ones in the token: a move takes
	// effect at once. A token whose scopes grant admin acts for every team.
	scopes := a.scopes(ct)
	return Principal{Subject: ct.Claims.Subject, Org: ct.Owner.Org, Env: "live", Scopes: scopes,
		Teams: ct.Owner.Teams, AllTeams: policy.Grants(scopes, "admin")}, nil
}

// Session verifies token for the built-in issuer's own calls (logout, TOTP enrolment):
// the same checks as Authenticate, through the same cache (signature, times, revocation
// by jti and by refresh family, the user gone or disabled, the user's session epoch), but
// it accepts only tokens of the built-in issuer, enrolment-only ones included: those
// calls decide on that mark themselves (EnrollOnly).
func (a *TokenAuthenticator) Session(ctx context.Context, token string) (jwtauth.Claims, error) {
	ct, err := a.check(ctx, token)
	if err != nil {
		return jwtauth.Claims{}, err
	}
	if ct.Owner == nil || a.o.Builtin == "" || ct.Claims.Issuer != a.o.Builtin {
		return jwtauth.Claims{}, unauthorized("invalid_token", "this call needs an access token of this gateway's issuer", nil)
	}
	return ct.Claims, nil
}

// EnrollOnly reports whether a built-in token may only set up TOTP (claim mfa_enroll).
func EnrollOnly(c jwtauth.Claims) bool {
	enroll, _ := c.Raw["mfa_enroll"].(bool)
	return enroll
}

// SessionID is a built-in token's refresh family (claim sid), "" when absent.
func SessionID(c jwtauth.Claims) string {
	sid, _ := c.Raw["sid"].(string)
	return sid
}

// check is every check a token passes wherever one is accepted: Authenticate and
// Session share it.
func (a *TokenAuthenticator) check(ctx context.Context, value string) (*CachedToken, error) {
	h := sha256.Sum256([]byte(value))
	ct, res := a.o.Cache.Get(h)
	switch res {
	case credcache.Hit:
		if ct.Claims.Issuer == a.o.Builtin && a.o.FailClosed && a.o.StoreDown() {
			return nil, a.o.unavailable(errors.New("auth: store down, fail_closed"))
		}
	default:
		epoch := a.o.Cache.Epoch()
		claims, err := a.o.Verifier.Verify(ctx, value)
		if err != nil {
			return nil, verifyError(err)
		}
		if err := checkTokenScopes(claims); err != nil {
			return nil, err
		}
		fresh := &CachedToken{Claims: claims}
		if a.o.Builtin != "" && claims.Issuer == a.o.Builtin {
			err := errStoreDown
			if !a.o.StoreDown() {
				err = a.builtinState(ctx, fresh)
			}
			if err != nil {
				// Revocation and the user's role cannot be read: serve what was verified
				// within stale_ttl (serve_cached), else 503. Never a 401: the caller did
				// nothing wrong.
				if res != credcache.Stale || a.o.FailClosed {
					return nil, a.o.unavailable(err)
				}
				break
			}
		}
		ct = fresh
		tags := []string{TokenTag(claims.ID), OwnerTag(claims.Subject)}
		if sid := SessionID(claims); sid != "" {
			tags = append(tags, SessionTag(sid))
		}
		a.o.Cache.PutIfCurrent(epoch, h, ct, tags...)
	}
	if a.o.Now().After(ct.Claims.ExpiresAt.Add(a.o.Leeway)) {
		return nil, unauthorized("expired_token", "the token has expired", nil)
	}
	if ct.Revoked {
		return nil, unauthorized("revoked_token", "the token has been revoked", nil)
	}
	if ct.Owner == nil {
		return ct, nil
	}
	if ct.Owner.Disabled {
		return nil, unauthorized("invalid_token", "the token's user is disabled", nil)
	}
	if sessionEpoch(ct.Claims) < ct.Owner.SessionEpoch {
		return nil, unauthorized("revoked_token", "the token's session has ended (new password, or the user's sessions were ended)", nil)
	}
	return ct, nil
}

// sessionEpoch is a built-in token's sep claim: the user's SessionEpoch when it was
// minted (0 when absent).
func sessionEpoch(c jwtauth.Claims) int64 {
	f, _ := c.Raw["sep"].(float64)
	return int64(f)
}

// builtinState reads what a built-in token depends on: revocation and its user.
func (a *TokenAuthenticator) builtinState(ctx context.Context, ct *CachedToken) error {
	revoked, err := a.o.Revoked(ctx, ct.Claims.ID, SessionID(ct.Claims))
	if err != nil {
		a.o.StoreError("token_revocation")
		return fmt.Errorf("auth: revocation: %w", err)
	}
	ct.Revoked = revoked
	ct.Owner, err = a.o.lookupOwner(ctx, a.o.Owners, ct.Claims.Subject)
	return err
}

// scopes are the token's effective scopes. A built-in token has its user's current
// role's; another issuer's token has its scope
// claims plus those of its role claim mapped through policy.roles. The slices returned
// are shared: callers must not modify them.
func (a *TokenAuthenticator) scopes(ct *CachedToken) []string {
	roles := a.o.Roles()
	if ct.Owner != nil {
		return roles[ct.Owner.Role]
	}
	fromRole := roles[ct.Claims.Role]
	if len(fromRole) == 0 {
		return ct.Claims.Scopes
	}
	// Once per cache entry and role definition, with a set: not per request, and not
	// quadratic (issue 9, item 13).
	return ct.scopes.get(fromRole, func() []string { return union(ct.Claims.Scopes, fromRole) })
}

// union is a followed by the scopes of b that a lacks, without repeats.
func union(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	seen := make(map[string]struct{}, len(a)+len(b))
	for _, list := range [2][]string{a, b} {
		for _, s := range list {
			if _, dup := seen[s]; !dup {
				seen[s] = struct{}{}
				out = append(out, s)
			}
		}
	}
	return out
}

// verifyError maps the verifier's refusals onto answers.
func verifyError(err error) error {
	switch {
	case errors.Is(err, jwtauth.ErrExpired):
		return unauthorized("expired_token", "the token has expired", err)
	case errors.Is(err, jwtauth.ErrNoKeys):
		// The issuer's keys were never loaded (JWKS unreachable since start): not the
		// caller's fault, and retrying may work.
		return &httperr.Error{Status: http.StatusServiceUnavailable, Code: "store_unavailable",
			Msg: "the token issuer's keys cannot be fetched right now; retry shortly", Err: err, RetryAfter: 5 * time.Second}
	}
	return unauthorized("invalid_token", "the bearer token is not valid", err)
}
