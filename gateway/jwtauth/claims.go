package jwtauth

import (
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are the verified claims of a token.
type Claims struct {
	Issuer   string   // iss
	Subject  string   // sub, never empty
	ID       string   // jti, "" when absent
	Audience []string // aud
	// ExpiresAt is exp; always set.
	ExpiresAt time.Time
	// IssuedAt is iat; zero when absent.
	IssuedAt time.Time
	// Scopes come from "scope" (a space separated string), else "scp", else "scopes" (an
	// array of strings or a space separated string). Nil when none is present.
	Scopes []string
	// Role is the string in the issuer's RoleClaim; "" when absent or not configured.
	Role string
	// Org is the "org" claim; "" when absent.
	Org string
	// Teams are the values of the issuer's TeamClaim; nil when absent or not configured.
	Teams []string
	// Raw holds every claim, for the caller (e.g. "mfa"). Treat it as read-only.
	Raw map[string]any
}

// scopeClaims lists the scope claims in order of precedence.
var scopeClaims = [...]string{"scope", "scp", "scopes"}

// extract builds Claims from verified map claims. jwt/v5 has already checked exp, nbf,
// iat, iss and aud; this checks sub and the types of the claims it reads.
func extract(mc jwt.MapClaims, roleClaim, teamClaim string) (Claims, error) {
	c := Claims{Raw: mc}
	var err error
	if c.Subject, err = mc.GetSubject(); err != nil || c.Subject == "" {
		return Claims{}, fmt.Errorf("%w: sub is required and must be a string", ErrClaims)
	}
	if c.Issuer, err = mc.GetIssuer(); err != nil {
		return Claims{}, fmt.Errorf("%w: iss: %w", ErrClaims, err)
	}
	if c.Audience, err = mc.GetAudience(); err != nil {
		return Claims{}, fmt.Errorf("%w: aud: %w", ErrClaims, err)
	}
	exp, err := mc.GetExpirationTime()
	if err != nil || exp == nil {
		return Claims{}, fmt.Errorf("%w: exp is required", ErrClaims)
	}
	c.ExpiresAt = exp.Time
	iat, err := mc.GetIssuedAt()
	if err != nil {
		return Claims{}, fmt.Errorf("%w: iat: %w", ErrClaims, err)
	}
	if iat != nil {
		c.IssuedAt = iat.Time
	}
	if c.ID, err = optionalString(mc, "jti"); err != nil {
		return Claims{}, err
	}
	if c.Org, err = optionalString(mc, "org"); err != nil {
		return Claims{}, err
	}
	if roleClaim != "" {
		if c.Role, err = optionalString(mc, roleClaim); err != nil {
			return Claims{}, err
		}
	}
	if v, ok := mc[teamClaim]; ok && teamClaim != "" {
		if c.Teams, err = parseScopes(v, true); err != nil {
			return Claims{}, fmt.Errorf("%w: %.64s: %w", ErrClaims, teamClaim, err)
		}
	}
	// Every scope claim present must be well formed, even one that is not used: a token
	// we cannot read fully is refused rather than half-trusted.
	found := false
	for i, name := range scopeClaims {
		v, ok := mc[name]
		if !ok {
			continue
		}
		scopes, err := parseScopes(v, i > 0)
		if err != nil {
			return Claims{}, fmt.Errorf("%w: %s: %w", ErrClaims, name, err)
		}
		if !found {
			c.Scopes, found = scopes, true
		}
	}
	return c, nil
}

// parseScopes reads a space separated string or, when arrays are allowed, an array of
// strings without spaces.
func parseScopes(v any, arrayOK bool) ([]string, error) {
	switch s := v.(type) {
	case string:
		return strings.Fields(s), nil
	case []any:
		if !arrayOK {
			return nil, fmt.Errorf("want a space separated string")
		}
		out := make([]string, 0, len(s))
		for _, e := range s {
			str, ok := e.(string)
			if !ok || str == "" || strings.ContainsAny(str, " \t\r\n") {
				return nil, fmt.Errorf("want an array of single scopes")
			}
			out = append(out, str)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("want a string or an array of strings")
	}
}

// optionalString returns claim name, "" when absent, or ErrClaims when not a string.
func optionalString(mc jwt.MapClaims, name string) (string, error) {
	v, ok := mc[name]
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%w: %.64s must be a string", ErrClaims, name)
	}
	return s, nil
}
