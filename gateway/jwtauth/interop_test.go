package jwtauth_test

import (
	"context"
	"crypto"
	"errors"
	"slices"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/authgate/authgate/gateway/jwtauth"
)

// interopIssuers has one issuer per algorithm family, keyed the way configs do it.
func interopIssuers(t *testing.T) []jwtauth.IssuerConfig {
	k := testKeys()
	rsaKeys, err := jwtauth.LoadPublicKeyFiles([]string{pemFile(t, "PUBLIC KEY", pkixDER(t, &k.rsa.PublicKey))})
	if err != nil {
		t.Fatal(err)
	}
	return []jwtauth.IssuerConfig{
		{Issuer: "https://hs.example", Audiences: []string{"api"}, Algorithms: []string{"HS256"}, HMACSecret: testSecret},
		{Issuer: "https://rsa.example", Audiences: []string{"api"}, Algorithms: []string{"RS256", "PS256"}, PublicKeys: rsaKeys},
		{Issuer: "https://ec.example", Audiences: []string{"api"}, Algorithms: []string{"ES256", "ES384"},
			Keys: map[string]crypto.PublicKey{"p256": &k.ec256.PublicKey, "p384": &k.ec384.PublicKey}},
		{Issuer: "https://ed.example", Audiences: []string{"api"}, Algorithms: []string{"EdDSA"},
			Keys: map[string]crypto.PublicKey{"ed": k.ed.Public()}, RoleClaim: "role"},
	}
}

func TestInterop(t *testing.T) {
	k := testKeys()
	v, _ := newVerifier(t, interopIssuers(t), jwtauth.Options{})
	exp := t0.Add(time.Hour).Truncate(time.Second)
	iat := t0.Add(-time.Minute)
	claimsFor := func(iss string) map[string]any {
		return map[string]any{
			"iss": iss, "sub": "usr_42", "aud": []string{"other", "api"},
			"exp": exp.Unix(), "iat": iat.Unix(), "jti": "tok_9",
			"scope": "read:a write:b", "org": "org_7", "role": "admin", "mfa": true,
		}
	}
	tests := []struct {
		name  string
		iss   string
		token func(c map[string]any) string
	}{
		{"jose HS256", "https://hs.example", func(c map[string]any) string { return joseSign(t, jose.HS256, testSecret, "", c) }},
		{"jose RS256", "https://rsa.example", func(c map[string]any) string { return joseSign(t, jose.RS256, k.rsa, "", c) }},
		{"jose PS256", "https://rsa.example", func(c map[string]any) string { return joseSign(t, jose.PS256, k.rsa, "", c) }},
		{"jose ES256", "https://ec.example", func(c map[string]any) string { return joseSign(t, jose.ES256, k.ec256, "p256", c) }},
		{"jose ES384", "https://ec.example", func(c map[string]any) string { return joseSign(t, jose.ES384, k.ec384, "p384", c) }},
		{"jose ES256 without kid", "https://ec.example", func(c map[string]any) string { return joseSign(t, jose.ES256, k.ec256, "", c) }},
		{"jose EdDSA", "https://ed.example", func(c map[string]any) string { return joseSign(t, jose.EdDSA, k.ed, "ed", c) }},
		{"golang-jwt HS256", "https://hs.example", func(c map[string]any) string { return sign(t, jwt.SigningMethodHS256, testSecret, "", c) }},
		{"golang-jwt RS256", "https://rsa.example", func(c map[string]any) string { return sign(t, jwt.SigningMethodRS256, k.rsa, "x", c) }},
		{"golang-jwt PS256", "https://rsa.example", func(c map[string]any) string { return sign(t, jwt.SigningMethodPS256, k.rsa, "", c) }},
		{"golang-jwt ES256", "https://ec.example", func(c map[string]any) string { return sign(t, jwt.SigningMethodES256, k.ec256, "p256", c) }},
		{"golang-jwt ES384", "https://ec.example", func(c map[string]any) string { return sign(t, jwt.SigningMethodES384, k.ec384, "p384", c) }},
		{"golang-jwt EdDSA", "https://ed.example", func(c map[string]any) string { return sign(t, jwt.SigningMethodEdDSA, k.ed, "", c) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(context.Background(), tt.token(claimsFor(tt.iss)))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			wantRole := ""
			if tt.iss == "https://ed.example" {
				wantRole = "admin"
			}
			if got.Issuer != tt.iss || got.Subject != "usr_42" || got.ID != "tok_9" || got.Org != "org_7" || got.Role != wantRole {
				t.Errorf("got iss=%q sub=%q jti=%q org=%q role=%q, want %q usr_42 tok_9 org_7 %q",
					got.Issuer, got.Subject, got.ID, got.Org, got.Role, tt.iss, wantRole)
			}
			if !slices.Equal(got.Audience, []string{"other", "api"}) {
				t.Errorf("got aud %q, want [other api]", got.Audience)
			}
			if !got.ExpiresAt.Equal(exp) || !got.IssuedAt.Equal(iat) {
				t.Errorf("got exp %v iat %v, want %v %v", got.ExpiresAt, got.IssuedAt, exp, iat)
			}
			if !slices.Equal(got.Scopes, []string{"read:a", "write:b"}) {
				t.Errorf("got scopes %q, want [read:a write:b]", got.Scopes)
			}
			if got.Raw["mfa"] != true {
				t.Errorf("got raw mfa %v, want true", got.Raw["mfa"])
			}
		})
	}

	// A token of one issuer signed with another issuer's key never verifies.
	t.Run("cross issuer key", func(t *testing.T) {
		tok := joseSign(t, jose.ES256, k.ec256, "", claimsFor("https://ed.example"))
		if _, err := v.Verify(context.Background(), tok); !errors.Is(err, jwtauth.ErrAlgorithm) {
			t.Fatalf("got %v, want ErrAlgorithm", err)
		}
		tok = joseSign(t, jose.RS256, k.rsa2, "", claimsFor("https://rsa.example"))
		if _, err := v.Verify(context.Background(), tok); !errors.Is(err, jwtauth.ErrSignature) {
			t.Fatalf("got %v, want ErrSignature", err)
		}
	})
}
