package issuer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authgate/authgate/gateway/store"
)

// revokedPrefix starts the store key of a revoked access token's ID.
const revokedPrefix = "revoked:jti:"

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
	ttl := exp.Add(revokeSlack).Sub(r.now())
	if ttl <= 0 {
		return nil
	}
	if err := r.st.Set(ctx, revokedPrefix+jti, []byte{'1'}, ttl); err != nil {
		return fmt.Errorf("issuer: revoke: %w", err)
	}
	return nil
}

// Revoked reports whether jti has been revoked. A store failure is an error, so the caller
// can fail closed.
func (r *Revocations) Revoked(ctx context.Context, jti string) (bool, error) {
	if jti == "" {
		return false, nil
	}
	_, err := r.st.Get(ctx, revokedPrefix+jti)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("issuer: revoked: %w", err)
	}
}
