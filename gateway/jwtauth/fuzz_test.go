package jwtauth_test

import (
	"context"
	"crypto"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgate/authgate/gateway/jwtauth"
)

var sentinels = []error{
	jwtauth.ErrMalformed, jwtauth.ErrUnknownIssuer, jwtauth.ErrAlgorithm, jwtauth.ErrSignature,
	jwtauth.ErrExpired, jwtauth.ErrNotYetValid, jwtauth.ErrClaims, jwtauth.ErrUnknownKey, jwtauth.ErrNoKeys,
}

// FuzzVerify: arbitrary input never panics, never verifies, always wraps a sentinel and
// never appears in the error. No seed is a valid token, and every seed's signature is
// bound to its content, so a mutation cannot make one valid.
func FuzzVerify(f *testing.F) {
	k := testKeys()
	v, _ := newVerifier(f, []jwtauth.IssuerConfig{
		{Issuer: "https://hs.example", Audiences: []string{"api"}, Algorithms: []string{"HS256"}, HMACSecret: testSecret, RoleClaim: "role"},
		{Issuer: "https://ed.example", Algorithms: []string{"EdDSA", "RS256"},
			Keys: map[string]crypto.PublicKey{"ed": k.ed.Public(), "rsa": &k.rsa.PublicKey}},
	}, jwtauth.Options{Leeway: time.Second})
	expired := claims("https://hs.example", map[string]any{"exp": t0.Add(-time.Hour).Unix()})
	f.Add(sign(f, jwt.SigningMethodHS256, testSecret, "", expired))
	f.Add(sign(f, jwt.SigningMethodHS256, []byte("wrong-secret-wrong-secret-wrong-"), "", claims("https://hs.example", nil)))
	f.Add(sign(f, jwt.SigningMethodEdDSA, k.ed, "ed", claims("https://ed.example", map[string]any{"sub": nil})))
	f.Add(sign(f, jwt.SigningMethodRS256, k.rsa2, "rsa", claims("https://ed.example", map[string]any{"scp": []any{1}})))
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2hzLmV4YW1wbGUiLCJzdWIiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5fQ.")
	f.Add("a.b.c")
	f.Add("..")
	f.Add("")
	f.Add("Bearer x")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(context.Background(), tok)
		if err == nil {
			t.Fatalf("random input verified: sub %q", c.Subject)
		}
		found := false
		for _, s := range sentinels {
			found = found || errors.Is(err, s)
		}
		if !found {
			t.Fatalf("error %q wraps no sentinel", err)
		}
		if len(tok) >= 16 && strings.Contains(err.Error(), tok) {
			t.Fatalf("error contains the input")
		}
	})
}
