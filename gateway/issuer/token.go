package issuer

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgate/authgate/gateway/randid"
)

// Errors returned by Minter.Parse, wrapped with the reason.
var (
	// ErrTokenInvalid means the token is malformed, not signed by a key of the set, signed
	// with a refused algorithm, from another issuer or audience, or missing a claim.
	ErrTokenInvalid = errors.New("issuer: invalid access token")
	// ErrTokenExpired means the token was valid but its exp has passed (beyond the leeway).
	ErrTokenExpired = errors.New("issuer: access token expired")
)

// jtiLength is the number of base62 characters of a token ID: 22 × 5.95 ≈ 131 bits.
const jtiLength = 22

// AccessClaims are the claims of an access token that the gateway reads.
type AccessClaims struct {
	Subject, Email, Role, Org string
	// Teams are the user's teams at minting (claim teams), for upstreams that read the
	// token itself; the gateway decides on the user's current teams, not on this claim.
	Teams []string
	// AMR lists the authentication methods: "pwd", plus "otp" after a TOTP check.
	AMR []string
	// EnrollOnly marks a token that may only enroll TOTP (MFA required but not set up yet).
	EnrollOnly bool
	// Session is the refresh family the token belongs to (claim sid), so logout can end
	// it with the access token alone; "" for a token without one.
	Session string
	// SessionEpoch is the user's session epoch at minting (claim sep): ending the user's
	// sessions moves the epoch on, and older tokens are refused.
	SessionEpoch int64
	// ID is the token ID (jti), filled by Mint.
	ID string
	// IssuedAt and ExpiresAt are filled by Mint, in whole seconds (UTC).
	IssuedAt, ExpiresAt time.Time
}

// Minter mints and parses the issuer's access tokens. Keys, Issuer and TTL are required;
// a nil Now means time.Now. A Minter is safe for concurrent use once set up.
type Minter struct {
	// Keys signs (its first key) and verifies (all keys).
	Keys *KeySet
	// Issuer is the iss claim and the single aud of every token.
	Issuer string
	// TTL is how long a minted token lives, e.g. issuer.access_ttl.
	TTL time.Duration
	// Now is the clock for iat, exp and expiry checks. Default: time.Now.
	Now func() time.Time
}

// jwtClaims is the JSON form of an access token's claims.
type jwtClaims struct {
	jwt.RegisteredClaims
	Email     string   `json:"email,omitempty"`
	Role      string   `json:"role,omitempty"`
	Org       string   `json:"org,omitempty"`
	Teams     []string `json:"teams,omitempty"`
	AMR       []string `json:"amr,omitempty"`
	MFAEnroll bool     `json:"mfa_enroll,omitempty"`
	Session   string   `json:"sid,omitempty"`
	Epoch     int64    `json:"sep,omitempty"`
}

// Validate adds our required claims to jwt's checks; the parser calls it.
func (c jwtClaims) Validate() error {
	if c.Subject == "" {
		return errors.New("sub is missing")
	}
	if c.ID == "" {
		return errors.New("jti is missing")
	}
	return nil
}

// now returns the Minter's time.
func (m *Minter) now() time.Time {
	if m.Now == nil {
		return time.Now()
	}
	return m.Now()
}

// check reports a Minter that is not set up.
func (m *Minter) check() error {
	switch {
	case m.Keys == nil || m.Keys.signer() == nil:
		return errors.New("issuer: minter has no keys")
	case m.Issuer == "":
		return errors.New("issuer: minter has no issuer")
	case m.TTL <= 0:
		return fmt.Errorf("issuer: minter TTL must be > 0, got %s", m.TTL)
	}
	return nil
}

// Mint signs an access token for c with the set's signing key. It fills c's ID, IssuedAt
// (now, in whole seconds) and ExpiresAt (IssuedAt + TTL) and returns them in out.
func (m *Minter) Mint(c AccessClaims) (token string, out AccessClaims, err error) {
	if err := m.check(); err != nil {
		return "", AccessClaims{}, err
	}
	sk := m.Keys.signer()
	iat := m.now().Truncate(time.Second).UTC()
	c.ID = randid.New("", jtiLength)
	c.IssuedAt = iat
	c.ExpiresAt = iat.Add(m.TTL)
	c.AMR = append([]string(nil), c.AMR...)
	claims := jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    m.Issuer,
			Subject:   c.Subject,
			Audience:  jwt.ClaimStrings{m.Issuer},
			ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
			NotBefore: jwt.NewNumericDate(iat),
			IssuedAt:  jwt.NewNumericDate(iat),
			ID:        c.ID,
		},
		Email:     c.Email,
		Role:      c.Role,
		Org:       c.Org,
		Teams:     c.Teams,
		AMR:       c.AMR,
		MFAEnroll: c.EnrollOnly,
		Session:   c.Session,
		Epoch:     c.SessionEpoch,
	}
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(sk.alg), claims)
	tok.Header["kid"] = sk.kid
	s, err := tok.SignedString(sk.priv)
	if err != nil {
		return "", AccessClaims{}, fmt.Errorf("issuer: sign access token: %w", err)
	}
	return s, c, nil
}

// Parse verifies token and returns its claims. The signature must come from a key of the
// set, found by kid, with that key's algorithm (so none, HMAC and algorithm confusion are
// refused); iss must be Issuer, aud must contain Issuer, and exp is required; exp, nbf and
// iat are checked with leeway. Errors wrap ErrTokenExpired for an expired token and
// ErrTokenInvalid for every other problem; they never contain the token.
func (m *Minter) Parse(token string, leeway time.Duration) (AccessClaims, error) {
	if err := m.check(); err != nil {
		return AccessClaims{}, err
	}
	p := jwt.NewParser(
		jwt.WithValidMethods(m.Keys.Algorithms()),
		jwt.WithIssuer(m.Issuer),
		jwt.WithAudience(m.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(m.now),
		jwt.WithStrictDecoding(),
	)
	var claims jwtClaims
	_, err := p.ParseWithClaims(token, &claims, m.keyFunc)
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired) && !errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return AccessClaims{}, fmt.Errorf("%w: %w", ErrTokenExpired, err)
	default:
		return AccessClaims{}, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
	}
	out := AccessClaims{
		Subject:      claims.Subject,
		Email:        claims.Email,
		Role:         claims.Role,
		Org:          claims.Org,
		Teams:        claims.Teams,
		AMR:          claims.AMR,
		EnrollOnly:   claims.MFAEnroll,
		Session:      claims.Session,
		SessionEpoch: claims.Epoch,
		ID:           claims.ID,
		ExpiresAt:    claims.ExpiresAt.Time.UTC(),
	}
	if claims.IssuedAt != nil {
		out.IssuedAt = claims.IssuedAt.Time.UTC()
	}
	return out, nil
}

// keyFunc finds the verification key by kid and pins it to that key's own algorithm.
func (m *Minter) keyFunc(t *jwt.Token) (any, error) {
	if typ, ok := t.Header["typ"]; ok && typ != "JWT" {
		return nil, errors.New("typ is not JWT")
	}
	kid, _ := t.Header["kid"].(string)
	sk, ok := m.Keys.lookup(kid)
	if !ok {
		return nil, errors.New("unknown kid")
	}
	if t.Method.Alg() != sk.alg {
		return nil, fmt.Errorf("alg %s does not match key %s", t.Method.Alg(), kid)
	}
	return sk.pub, nil
}
