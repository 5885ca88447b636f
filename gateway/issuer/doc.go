// Package issuer is the core of authgate's built-in token issuer: the signing key set and
// its JWKS, access tokens (JWTs signed with Ed25519 or ECDSA P-256), rotating refresh tokens
// grouped in families, access-token revocation and the TOTP check with its replay guard.
//
// It has no HTTP handlers: the login, refresh and logout endpoints are built on top of it.
// No error, log line or String output of this package contains a private key, a token, a
// refresh-token hash or a TOTP secret.
package issuer
