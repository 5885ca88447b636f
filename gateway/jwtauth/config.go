package jwtauth

import (
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// IssuerConfig is one accepted issuer. Exactly one key source is set: HMACSecret, static
// public keys (PublicKeys and/or Keys), or JWKSURL.
type IssuerConfig struct {
	// Issuer is the exact iss value. Required and unique.
	Issuer string
	// Audiences lists accepted aud values: the token must carry at least one of them.
	// Empty means aud is not checked.
	Audiences []string
	// Algorithms pins the accepted alg values. Required. Supported: HS256, HS384, HS512,
	// RS256, RS384, RS512, PS256, ES256, ES384, EdDSA. HS* only with HMACSecret; the others
	// only with public keys or a JWKS.
	Algorithms []string
	// HMACSecret is the shared secret for HS* algorithms. It must be at least as long as
	// the hash output of every pinned HS* algorithm (RFC 7518 section 3.2).
	HMACSecret []byte
	// PublicKeys are keys without an id, e.g. from PEM files (LoadPublicKeyFiles). A token
	// whose kid is found in Keys is checked with that key only; otherwise every key here
	// (and, for a token without kid, every key in Keys) of the right type is tried in turn.
	PublicKeys []crypto.PublicKey
	// Keys are public keys by kid (the built-in issuer passes its keys here).
	Keys map[string]crypto.PublicKey
	// JWKSURL is the http(s) URL of the issuer's JWK Set.
	JWKSURL string
	// RoleClaim is the claim holding the user's role (a string). Empty means none.
	RoleClaim string
	// TeamClaim is the claim holding the teams the token acts for (an array of strings,
	// or a space separated string). Empty means none.
	TeamClaim string
}

// Options tunes a Verifier. The zero value is usable: no leeway, time.Now, a 10 s HTTP
// client, hourly JWKS refresh and at most one unknown-kid refresh per minute.
type Options struct {
	// Leeway is the clock skew allowed for exp, nbf and iat. Default 0.
	Leeway time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// HTTPClient fetches JWKS. Default: a client with a 10 s timeout.
	HTTPClient *http.Client
	// JWKSRefreshInterval is the periodic JWKS refresh. Default 1h.
	JWKSRefreshInterval time.Duration
	// UnknownKIDRefresh bounds refreshes caused by an unknown kid: at most one per this
	// long, per issuer. Default 1m.
	UnknownKIDRefresh time.Duration
	// OnJWKSRefresh, when set, is called after every JWKS fetch with the issuer and
	// "success" or "failure". It may be called from background goroutines concurrently.
	OnJWKSRefresh func(issuer, result string)
	// Logger receives JWKS fetch failures and configuration warnings. Default: discard.
	Logger *slog.Logger
}

// Results passed to Options.OnJWKSRefresh.
const (
	RefreshSuccess = "success"
	RefreshFailure = "failure"
)

const (
	defaultHTTPTimeout       = 10 * time.Second
	defaultRefreshInterval   = time.Hour
	defaultUnknownKIDRefresh = time.Minute
)

// withDefaults returns o with its zero fields filled in.
func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	if o.JWKSRefreshInterval <= 0 {
		o.JWKSRefreshInterval = defaultRefreshInterval
	}
	if o.UnknownKIDRefresh <= 0 {
		o.UnknownKIDRefresh = defaultUnknownKIDRefresh
	}
	if o.OnJWKSRefresh == nil {
		o.OnJWKSRefresh = func(string, string) {}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// hmacMinLen is the minimum secret length per HMAC algorithm (RFC 7518 section 3.2).
var hmacMinLen = map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}

// asymmetricAlgs lists the supported public-key algorithms.
var asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"}

// validate reports every problem of c at once, each prefixed with path.
func (c IssuerConfig) validate(path string) error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{path}, args...)...))
	}
	if c.Issuer == "" {
		bad("issuer is required")
	}
	if slices.Contains(c.Audiences, "") {
		bad("audiences: empty value")
	}
	sources := 0
	if len(c.HMACSecret) > 0 {
		sources++
	}
	if len(c.PublicKeys) > 0 || len(c.Keys) > 0 {
		sources++
	}
	if c.JWKSURL != "" {
		sources++
	}
	if sources != 1 {
		bad("exactly one of hmac secret, public keys or jwks url must be set, got %d", sources)
	}
	if len(c.Algorithms) == 0 {
		bad("algorithms: at least one is required")
	}
	for _, alg := range c.Algorithms {
		minLen, isHMAC := hmacMinLen[alg]
		switch {
		case isHMAC && len(c.HMACSecret) == 0:
			bad("algorithms: %q needs an hmac secret", alg)
		case isHMAC && len(c.HMACSecret) < minLen:
			// The length only, never the secret.
			bad("algorithms: %q needs a secret of at least %d bytes, got %d", alg, minLen, len(c.HMACSecret))
		case isHMAC:
		case !slices.Contains(asymmetricAlgs, alg):
			bad("algorithms: unsupported %q", alg)
		case len(c.HMACSecret) > 0:
			bad("algorithms: %q cannot be used with an hmac secret", alg)
		}
	}
	if c.JWKSURL != "" {
		if u, err := url.Parse(c.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("jwks url: want an absolute http(s) URL")
		}
	}
	return errors.Join(errs...)
}

// Check reports what New would refuse in c, without any network: a missing or second
// key source, algorithms that do not fit the keys, an HMAC secret too short for its
// algorithm. A JWKS issuer's keys are not fetched.
func Check(c IssuerConfig) error {
	if err := c.validate(fmt.Sprintf("issuer %q", c.Issuer)); err != nil {
		return err
	}
	if len(c.HMACSecret) == 0 && c.JWKSURL == "" {
		if _, err := newStaticKeys(c); err != nil {
			return err
		}
	}
	return nil
}
