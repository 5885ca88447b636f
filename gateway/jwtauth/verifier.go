package jwtauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"

	"github.com/golang-jwt/jwt/v5"
)

// maxTokenLen bounds the work spent on one token; real access tokens are far shorter.
const maxTokenLen = 16 << 10

// Verifier verifies JWTs of the configured issuers. It is safe for concurrent use. Create
// it with New; the zero value is not usable.
type Verifier struct {
	issuers map[string]*issuer
	// pick decodes a token without verifying it, only to read iss.
	pick   *jwt.Parser
	cancel context.CancelFunc
}

// issuer holds what Verify needs for one issuer, built once in New.
type issuer struct {
	name      string
	algs      []string
	parser    *jwt.Parser
	keyFunc   jwt.Keyfunc
	jwks      *jwksSource // nil unless the issuer uses a JWKS URL
	roleClaim string
	teamClaim string
}

// issOnly decodes only iss, so choosing the issuer costs little.
type issOnly struct {
	Iss string `json:"iss"`
}

func (issOnly) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }
func (issOnly) GetIssuedAt() (*jwt.NumericDate, error)       { return nil, nil }
func (issOnly) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (i issOnly) GetIssuer() (string, error)                 { return i.Iss, nil }
func (issOnly) GetSubject() (string, error)                  { return "", nil }
func (issOnly) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

// New checks the issuers and builds a Verifier. Configuration problems are returned all at
// once. For each JWKS issuer it makes a first fetch (bounded by the HTTP client's timeout)
// and starts periodic refreshes that stop when ctx is done or Close is called; a fetch
// that fails is logged and reported to Options.OnJWKSRefresh, not returned, and that
// issuer's tokens are refused with ErrNoKeys until keys arrive.
func New(ctx context.Context, issuers []IssuerConfig, o Options) (*Verifier, error) {
	o = o.withDefaults()
	var errs []error
	if len(issuers) == 0 {
		errs = append(errs, errors.New("no issuers"))
	}
	if o.Leeway < 0 {
		errs = append(errs, fmt.Errorf("leeway: must be >= 0, got %s", o.Leeway))
	}
	seen := map[string]bool{}
	for i, c := range issuers {
		path := fmt.Sprintf("issuers[%d] %q", i, c.Issuer)
		if err := c.validate(path); err != nil {
			errs = append(errs, err)
		}
		if seen[c.Issuer] {
			errs = append(errs, fmt.Errorf("%s: duplicate issuer", path))
		}
		seen[c.Issuer] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("jwtauth: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	v := &Verifier{
		issuers: make(map[string]*issuer, len(issuers)),
		pick:    jwt.NewParser(jwt.WithStrictDecoding()),
		cancel:  cancel,
	}
	for i, c := range issuers {
		is, err := newIssuer(ctx, c, o)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("jwtauth: issuers[%d] %q: %w", i, c.Issuer, err)
		}
		v.issuers[c.Issuer] = is
	}
	return v, nil
}

// newIssuer precomputes the parser and key function of one valid issuer.
func newIssuer(ctx context.Context, c IssuerConfig, o Options) (*issuer, error) {
	algs := slices.Clone(c.Algorithms)
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithIssuer(c.Issuer),
		jwt.WithLeeway(o.Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(o.Now),
		jwt.WithStrictDecoding(),
	}
	if len(c.Audiences) > 0 {
		// In jwt/v5.3.1 WithAudience accepts the token when aud holds any one of these
		// (WithAllAudiences is the all-of variant); an absent aud is refused.
		opts = append(opts, jwt.WithAudience(slices.Clone(c.Audiences)...))
	}
	is := &issuer{name: c.Issuer, algs: algs, parser: jwt.NewParser(opts...), roleClaim: c.RoleClaim, teamClaim: c.TeamClaim}
	switch {
	case len(c.HMACSecret) > 0:
		is.keyFunc = hmacKey{secret: slices.Clone(c.HMACSecret)}.keyFunc
	case c.JWKSURL != "":
		if u, err := url.Parse(c.JWKSURL); err == nil && u.Scheme == "http" && !isLoopback(u.Hostname()) {
			o.Logger.WarnContext(ctx, "jwks url is not https", "issuer", c.Issuer)
		}
		src, err := newJWKSSource(ctx, c, o)
		if err != nil {
			return nil, err
		}
		is.jwks, is.keyFunc = src, src.keyFunc
	default:
		s, err := newStaticKeys(c)
		if err != nil {
			return nil, err
		}
		is.keyFunc = s.keyFunc
	}
	return is, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Verify checks token and returns its claims. Errors wrap one of the package's sentinels
// (see ErrMalformed and the others); they never contain the token. For a JWKS issuer, a
// token with an unknown kid may wait for one rate-limited JWKS fetch, bounded by ctx.
func (v *Verifier) Verify(ctx context.Context, token string) (Claims, error) {
	if token == "" || len(token) > maxTokenLen {
		return Claims{}, fmt.Errorf("%w: empty or longer than %d bytes", ErrMalformed, maxTokenLen)
	}
	var pre issOnly
	t, _, err := v.pick.ParseUnverified(token, &pre)
	if err != nil {
		return Claims{}, classify(err)
	}
	is, ok := v.issuers[pre.Iss]
	if !ok {
		return Claims{}, fmt.Errorf("%w: %.128q", ErrUnknownIssuer, pre.Iss)
	}
	// Refuse before any key is looked up; jwt/v5 checks WithValidMethods again.
	if alg := t.Method.Alg(); !slices.Contains(is.algs, alg) {
		return Claims{}, fmt.Errorf("%w: %.16q is not pinned for the issuer", ErrAlgorithm, alg)
	}
	// jwt/v5 ignores crit; RFC 7515 section 4.1.11 says a token with extensions we do not
	// understand must be refused.
	if _, ok := t.Header["crit"]; ok {
		return Claims{}, fmt.Errorf("%w: crit header not supported", ErrMalformed)
	}
	var before *jwksSnapshot
	if is.jwks != nil {
		before = is.jwks.store.snap.Load()
	}
	mc, err := is.parse(token)
	if errors.Is(err, errKeyMiss) {
		kid, _, _ := headerKID(t)
		// Parse again after a refresh, or when another caller's refresh replaced the keys
		// between our parse and now (it may have found this kid).
		if is.jwks.refresh(ctx, kid) || is.jwks.store.snap.Load() != before {
			mc, err = is.parse(token)
		}
		if errors.Is(err, errKeyMiss) {
			if !is.jwks.loaded() {
				return Claims{}, fmt.Errorf("%w: jwks of %.128q not loaded", ErrNoKeys, is.name)
			}
			return Claims{}, fmt.Errorf("%w: kid %.64q", ErrUnknownKey, kid)
		}
	}
	if err != nil {
		return Claims{}, classify(err)
	}
	return extract(mc, is.roleClaim, is.teamClaim)
}

// parse verifies token fully with the issuer's parser and key function.
func (is *issuer) parse(token string) (jwt.MapClaims, error) {
	mc := jwt.MapClaims{}
	if _, err := is.parser.ParseWithClaims(token, mc, is.keyFunc); err != nil {
		return nil, err
	}
	return mc, nil
}

// Close stops background JWKS refreshes. Verify keeps working with the keys already
// loaded. Close is idempotent.
func (v *Verifier) Close() { v.cancel() }
