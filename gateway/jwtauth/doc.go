// Package jwtauth verifies bearer JWTs from configured issuers.
//
// A Verifier picks the issuer from the token's (unverified) iss claim, then verifies the
// token fully with that issuer's pinned algorithms and keys: an HMAC secret, public keys
// (from PEM files or by kid), or a JWKS URL that is fetched, refreshed periodically and on an
// unknown kid (rate limited), and kept while the endpoint is down. exp and sub are required;
// nbf, iat, iss and aud are checked with a clock leeway.
//
// Every refusal wraps one of the package's sentinel errors (ErrMalformed, ErrUnknownIssuer,
// ErrAlgorithm, ErrSignature, ErrExpired, ErrNotYetValid, ErrClaims, ErrUnknownKey,
// ErrNoKeys); compare with errors.Is. Error messages never contain the token.
package jwtauth
