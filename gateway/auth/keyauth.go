package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"

	"github.com/authgate/authgate/gateway/apikey"
	"github.com/authgate/authgate/gateway/credcache"
	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/user"
	"github.com/authgate/authgate/policy"
)

// keyRecords finds a key's record by the hash of its plaintext.
type keyRecords interface {
	ByHash(ctx context.Context, hash [32]byte) (apikey.Key, error)
}

// CachedKey is what the credential cache keeps for a verified key: the record, its
// allowed IPs already parsed (so a hit does no parsing) and, for a personal key of a user,
// the owner's role and state when it was read. Owner changes invalidate it by OwnerTag.
type CachedKey struct {
	Key        apikey.Key
	AllowedIPs []netip.Prefix
	Owner      *Owner // nil: the key is not tied to a user (bootstrap, cli, an external subject)
	// teams is the one-element team list of Key.Team, built once per cache entry.
	teams []string
	// scopes memoises the effective scopes for the role they were computed from, so a
	// cache hit does not recompute them (issue 9, item 13).
	scopes scopeMemo
}

// Owner is what a personal key's scopes depend on.
type Owner struct {
	Role     string
	Org      string // the user's organisation, for X-Auth-Org
	Disabled bool   // also true for an owner that no longer exists
	// Teams are the user's teams when it was read.
	Teams []string
	// SessionEpoch: the user's tokens minted in an earlier epoch are refused (new
	// password, disabled, TOTP removed). Keys are not sessions and do not use it.
	SessionEpoch int64
}

// owners finds the user a personal key belongs to.
type owners interface {
	Get(ctx context.Context, id string) (user.User, error)
}

// keyCache is the part of credcache.Cache the authenticator uses.
type keyCache interface {
	Get(h [32]byte) (*CachedKey, credcache.Result)
	Epoch() uint64
	PutIfCurrent(epoch uint64, h [32]byte, v *CachedKey, tags ...string) bool
	PutNegativeIfCurrent(epoch uint64, h [32]byte) bool
}

// KeyTag is the invalidation tag of every cached entry of key id: publishing it removes
// the key from the cache of every replica.
func KeyTag(id string) string { return "key:" + id }

// OwnerTag is the invalidation tag of every cached key of user, for changes to the owner
// (role, disabled) that change what their keys may do.
func OwnerTag(user string) string { return "user:" + user }

// KeyAuthenticatorOptions configure a KeyAuthenticator.
type KeyAuthenticatorOptions struct {
	Prefix  string        // api_keys.prefix
	Hasher  apikey.Hasher // how plaintexts become stored hashes
	Records keyRecords
	Cache   keyCache
	StorePolicy
	// Owners, when set, ties personal keys of users to their owner's current role: the
	// effective scopes are the key's scopes ∩ the role's (no key scopes: all the role's),
	// and a disabled or deleted owner disables the key. An admin key a user made keeps its
	// own scopes but is disabled with its owner too.
	Owners owners
	// Roles returns policy.roles of the configuration being served. Required with Owners.
	Roles func() map[string][]string
}

// KeyAuthenticator verifies API keys: form and checksum first (no store access for a
// made-up key), then the cache, then the store. It is safe for concurrent use.
type KeyAuthenticator struct {
	o KeyAuthenticatorOptions
	// effective computes a personal key's effective scopes; tests count its calls.
	effective func(key, role []string) []string
}

// NewKeyAuthenticator returns a KeyAuthenticator.
func NewKeyAuthenticator(o KeyAuthenticatorOptions) *KeyAuthenticator {
	o.StorePolicy = o.StorePolicy.withDefaults()
	return &KeyAuthenticator{o: o, effective: policy.EffectiveScopes}
}

var errMalformedKey = unauthorized("invalid_api_key", "the API key is not valid", apikey.ErrMalformed)

// Authenticate verifies c, which must be an API key. Store trouble is never a 401: the
// caller did nothing wrong, so it is 503 store_unavailable unless a cached good key may
// be served (serve_cached).
func (a *KeyAuthenticator) Authenticate(ctx context.Context, c Credential) (Principal, error) {
	if _, err := apikey.Parse(c.Value, a.o.Prefix); err != nil {
		return Principal{}, errMalformedKey
	}
	h := a.o.Hasher.Hash(c.Value)
	ck, res := a.o.Cache.Get(h)
	switch res {
	case credcache.NegativeHit:
		return Principal{}, unauthorized("invalid_api_key", "the API key is not valid", apikey.ErrNotFound)
	case credcache.Hit:
		if a.o.FailClosed && a.o.StoreDown() {
			return Principal{}, a.o.unavailable(errors.New("auth: store down, fail_closed"))
		}
	default: // Miss or Stale: ask the store, unless it is known to be down
		if a.o.StoreDown() {
			// Answer at once rather than wait out the client's dial retries: serve a key
			// verified good within stale_ttl (serve_cached), else 503.
			if res == credcache.Stale && !a.o.FailClosed {
				break
			}
			return Principal{}, a.o.unavailable(errors.New("auth: store down"))
		}
		epoch := a.o.Cache.Epoch()
		rec, err := a.o.Records.ByHash(ctx, h)
		switch {
		case errors.Is(err, apikey.ErrNotFound):
			a.o.Cache.PutNegativeIfCurrent(epoch, h)
			return Principal{}, unauthorized("invalid_api_key", "the API key is not valid", err)
		case err != nil:
			a.o.StoreError("key_lookup")
			if res != credcache.Stale || a.o.FailClosed {
				return Principal{}, a.o.unavailable(err)
			}
			// serve_cached: a key verified good within stale_ttl keeps working.
		default:
			ips, perr := parseIPs(rec.AllowedIPs)
			if perr != nil {
				return Principal{}, &httperr.Error{Status: http.StatusInternalServerError, Code: "internal", Msg: "internal error", Err: perr}
			}
			ck = &CachedKey{Key: rec, AllowedIPs: ips}
			if rec.Team != "" && rec.Team != apikey.AllTeams {
				ck.teams = []string{rec.Team}
			}
			if ck.Owner, err = a.owner(ctx, rec); err != nil {
				return Principal{}, a.o.unavailable(err)
			}
			a.o.Cache.PutIfCurrent(epoch, h, ck, KeyTag(rec.ID), OwnerTag(rec.CreatedBy))
		}
	}
	k := ck.Key
	switch k.Status(a.o.Now()) {
	case apikey.StatusRevoked:
		return Principal{}, unauthorized("revoked_api_key", "the API key has been revoked", nil)
	case apikey.StatusExpired:
		return Principal{}, unauthorized("expired_api_key", "the API key has expired", nil)
	}
	scopes, org := k.Scopes, ""
	if ck.Owner != nil {
		// A disabled or deleted user's keys are refused, admin keys too: an admin's
		// admin key must not outlive the admin (issue 9, item 6).
		if ck.Owner.Disabled {
			return Principal{}, unauthorized("invalid_api_key", "the API key's owner is disabled", nil)
		}
		if k.Type == apikey.Admin && !policy.Grants(a.o.Roles()[ck.Owner.Role], "admin") {
			// Only admins make admin keys; one whose maker has since been demoted
			// would let them undo the demotion.
			return Principal{}, unauthorized("invalid_api_key", "the API key's owner is no longer an admin", nil)
		}
		if k.Type == apikey.Personal {
			// Only a personal key's scopes follow its owner's role; an admin key's
			// scopes are its own. Computed once per cache entry and role definition,
			// not per request: a key's scopes and its owner's role can be long (issue 9,
			// item 13).
			role := a.o.Roles()[ck.Owner.Role]
			scopes = ck.scopes.get(role, func() []string { return a.effective(k.Scopes, role) })
			org = ck.Owner.Org
		}
	}
	pr := Principal{Subject: k.CreatedBy, KeyID: k.ID, Env: k.Environment, Scopes: scopes, Org: org,
		AllowedIPs: ck.AllowedIPs, KeyType: k.Type, RateLimit: k.RateLimit}
	pr.Teams, pr.AllTeams = a.keyTeams(ck)
	return pr, nil
}

// keyTeams is what teams a key acts for: an admin key its team or every team (AllTeams,
// also an admin key made before teams existed); a personal key its one team while its
// owner is a member of it (or an admin), so leaving a team stops the owner's keys for it
// at once; a personal key without team, none.
func (a *KeyAuthenticator) keyTeams(ck *CachedKey) (teams []string, all bool) {
	k := ck.Key
	team := k.TeamOf()
	switch {
	case team == apikey.AllTeams:
		return nil, k.Type == apikey.Admin // only admin keys act for every team
	case team == "":
		return nil, false
	case k.Type == apikey.Personal && ck.Owner != nil && !slices.Contains(ck.Owner.Teams, team) &&
		!policy.Grants(a.o.Roles()[ck.Owner.Role], "admin"):
		return nil, false // the owner left the team
	}
	return ck.teams, false
}

// owner reads the user a key belongs to (personal or admin); nil for keys that no user
// made (bootstrap, cli, an external issuer's subject).
func (a *KeyAuthenticator) owner(ctx context.Context, k apikey.Key) (*Owner, error) {
	if a.o.Owners == nil || !user.IsID(k.CreatedBy) {
		return nil, nil
	}
	return a.o.lookupOwner(ctx, a.o.Owners, k.CreatedBy)
}

// EffectiveScopes is policy.EffectiveScopes: what a personal key may do, the scopes both
// the key and its owner's role grant.
func EffectiveScopes(key, role []string) []string { return policy.EffectiveScopes(key, role) }

func parseIPs(list []string) ([]netip.Prefix, error) {
	if len(list) == 0 {
		return nil, nil
	}
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("auth: stored allowed_ips entry %q: %w", s, err)
			}
			a = a.Unmap()
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
