package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/authgate/authgate/gateway/httperr"
	"github.com/authgate/authgate/gateway/user"
)

// StorePolicy is how an authenticator behaves towards the credential store, the same for
// API keys and the built-in issuer's tokens (store.on_store_error).
type StorePolicy struct {
	// FailClosed answers 503 to every credential that needs the store while it is down
	// (on_store_error: fail_closed); otherwise credentials verified good keep working for
	// stale_ttl (serve_cached).
	FailClosed bool
	// StoreDown reports whether the store is known to be unreachable; with FailClosed, a
	// cache hit is refused while it is. Default: never.
	StoreDown func() bool
	// RetryAfter is sent with 503 store_unavailable. Default: 1s.
	RetryAfter time.Duration
	// StoreError, when set, is told of every failed store read by operation ("key_lookup",
	// "owner_lookup", "token_revocation"), for authgate_store_errors_total.
	StoreError func(op string)
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

func (p StorePolicy) withDefaults() StorePolicy {
	if p.StoreDown == nil {
		p.StoreDown = func() bool { return false }
	}
	if p.RetryAfter <= 0 {
		p.RetryAfter = time.Second
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.StoreError == nil {
		p.StoreError = func(string) {}
	}
	return p
}

// unavailable is the 503 of a credential that cannot be checked: never a 401, the caller
// did nothing wrong.
func (p StorePolicy) unavailable(err error) error {
	return &httperr.Error{Status: http.StatusServiceUnavailable, Code: "store_unavailable",
		Msg: "credentials cannot be checked right now; retry shortly", Err: err, RetryAfter: p.RetryAfter}
}

// lookupOwner reads the user a credential belongs to. A user that no longer exists is a
// disabled owner; a failed read is counted and returned.
func (p StorePolicy) lookupOwner(ctx context.Context, users owners, id string) (*Owner, error) {
	u, err := users.Get(ctx, id)
	switch {
	case errors.Is(err, user.ErrNotFound):
		return &Owner{Disabled: true}, nil
	case err != nil:
		p.StoreError("owner_lookup")
		return nil, fmt.Errorf("auth: owner %s: %w", id, err)
	}
	return &Owner{Role: u.Role, Org: u.Organization, Disabled: u.Disabled, Teams: u.Teams, SessionEpoch: u.SessionEpoch}, nil
}

// unauthorized is a 401 refusal of a credential, with the RFC 6750 challenge.
func unauthorized(code, msg string, err error) *httperr.Error {
	return &httperr.Error{Status: http.StatusUnauthorized, Code: code, Msg: msg, Err: err,
		Header: http.Header{"Www-Authenticate": {`Bearer error="invalid_token"`}}}
}
