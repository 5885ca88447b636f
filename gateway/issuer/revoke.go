package issuer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authgate/authgate/gateway/store"
)

// revokedPrefix starts the store key of a revoked access token's ID; revokedSessionPrefix
// that of a revoked refresh family (sid), whose access tokens are all refused.
const (
	revokedPrefix        = "revoked:jti:"
	revokedSessionPrefix = "revoked:sid:"
)

// revokeSlack keeps a revocation a little past the token's expiry, to cover the clock
// leeway that token checks allow.
const revokeSlack = time.Minute

// Revocations records revoked access tokens (logout) by their jti, each until the token
// would have expired anyway. It is safe for concurrent use.
type Revocations struct {
	st  store.Store
	now func() time.Time
}

// NewRevocations returns Revocations kept in st, timed by time.Now.
func NewRevocations(st store.Store) *Revocations {
	return NewRevocationsClock(st, time.Now)
}

// NewRevocationsClock is NewRevocations with a clock, for tests; a nil now means time.Now.
func NewRevocationsClock(st store.Store, now func() time.Time) *Revocations {
	if now == nil {
		now = time.Now
	}
	return &Revocations{st: st, now: now}
}

// Revoke records jti as revoked until exp plus one minute, then forgets it. Pass as exp
// the last moment the token could still be accepted: its exp claim plus jwt.leeway. A
// token already past that point needs no record, and Revoke stores nothing.
func (r *Revocations) Revoke(ctx context.Context, jti string, exp time.Time) error {
	if jti == "" {
		return errors.New("issuer: revoke: empty token ID")
	}
	return r.set(ctx, revokedPrefix+jti, exp)
}

// RevokeSession records the refresh family sid as revoked until exp plus one minute: every
// access token carrying it (claim sid) is refused, whatever its jti. Pass as exp the last
// moment the family's newest access token could still be accepted: now plus
// issuer.access_ttl plus jwt.leeway (the family mints no token after its revocation).
func (r *Revocations) RevokeSession(ctx context.Context, sid string, exp time.Time) error {
	if sid == "" {
		return errors.New("issuer: revoke: empty session ID")
	}
	return r.set(ctx, revokedSessionPrefix+sid, exp)
}

func (r *Revocations) set(ctx context.Context, key string, exp time.Time) error {
	ttl := exp.Add(revokeSlack).Sub(r.now())
	if ttl <= 0 {
		return nil
	}
	if err := r.st.Set(ctx, key, []byte{'1'}, ttl); err != nil {
		return fmt.Errorf("issuer: revoke: %w", err)
	}
	return nil
}

// TokenRevoked reports whether an access token was revoked, by its jti (logout) or by its
// refresh family sid ("" for a token without one: logout, refresh-token reuse). A store
// failure is an error, so the caller can fail closed.
func (r *Revocations) TokenRevoked(ctx context.Context, jti, sid string) (bool, error) {
	revoked, err := r.Revoked(ctx, jti)
	if err != nil || revoked || sid == "" {
		return revoked, err
	}
	return r.has(ctx, revokedSessionPrefix+sid)
}

// Revoked reports whether jti has been revoked. A store failure is an error, so the caller
// can fail closed.
func (r *Revocations) Revoked(ctx context.Context, jti string) (bool, error) {
	if jti == "" {
		return false, nil
	}
	return r.has(ctx, revokedPrefix+jti)
}

func (r *Revocations) has(ctx context.Context, key string) (bool, error) {
	_, err := r.st.Get(ctx, key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("issuer: revoked: %w", err)
	}
}

// RevokedTokenKey is the store key that records the revocation of the access token jti,
// for callers that must make that write durable (store.Redis.WaitReplicas).
func RevokedTokenKey(jti string) string { return revokedPrefix + jti }

// RevokedSessionKey is the store key that records the revocation of the session sid.
func RevokedSessionKey(sid string) string { return revokedSessionPrefix + sid }
