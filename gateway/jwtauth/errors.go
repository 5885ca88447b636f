package jwtauth

import (
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
)

// Sentinel errors returned (wrapped) by Verifier.Verify. Each refusal wraps exactly one of
// them, so callers can map them to a response with errors.Is.
var (
	// ErrMalformed means the value is not a JWT or could not be decoded.
	ErrMalformed = errors.New("jwtauth: malformed token")
	// ErrUnknownIssuer means the iss claim names no configured issuer.
	ErrUnknownIssuer = errors.New("jwtauth: unknown issuer")
	// ErrAlgorithm means the alg is not pinned for the issuer, is none, or does not fit the
	// issuer's keys (algorithm confusion).
	ErrAlgorithm = errors.New("jwtauth: algorithm not allowed")
	// ErrSignature means the signature does not verify.
	ErrSignature = errors.New("jwtauth: invalid signature")
	// ErrExpired means exp is in the past, beyond the leeway.
	ErrExpired = errors.New("jwtauth: token expired")
	// ErrNotYetValid means nbf or iat is in the future, beyond the leeway.
	ErrNotYetValid = errors.New("jwtauth: token not valid yet")
	// ErrClaims means a claim is missing or wrong: exp, sub, aud, or a malformed scope,
	// role or org claim.
	ErrClaims = errors.New("jwtauth: invalid claims")
	// ErrUnknownKey means no key matches the token's kid, even after a (rate-limited) JWKS
	// refresh, or the matching key may not be used for signatures.
	ErrUnknownKey = errors.New("jwtauth: unknown key")
	// ErrNoKeys means the issuer's JWKS has never been loaded.
	ErrNoKeys = errors.New("jwtauth: no keys loaded")
)

// keyError is a refusal by one of our key functions. jwt/v5 wraps it in its own
// "unverifiable" error; classify unwraps it again so the message starts with ours.
type keyError struct{ error }

func (e keyError) Unwrap() error { return e.error }

// keyErrorf returns a keyError wrapping sentinel, explained by format and args.
func keyErrorf(sentinel error, format string, args ...any) error {
	return keyError{fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}

// classify maps an error from jwt/v5 (or from our key functions, which jwt wraps) onto our
// sentinels. The result never contains the token: jwt/v5's messages name the failed check,
// not the input.
func classify(err error) error {
	if ke, ok := errors.AsType[keyError](err); ok {
		return ke.error
	}
	var sentinel error
	switch {
	// Time checks first: an expired token that is also wrong in another way is reported
	// as expired, which is what a client can act on.
	case errors.Is(err, jwt.ErrTokenExpired):
		sentinel = ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		sentinel = ErrNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		sentinel = ErrUnknownIssuer
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		sentinel = ErrClaims
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		sentinel = ErrSignature
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		sentinel = ErrAlgorithm
	default:
		sentinel = ErrMalformed
	}
	return fmt.Errorf("%w: %w", sentinel, err)
}
