package jwtauth_test

import (
	"context"
	"crypto"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgate/authgate/gateway/jwtauth"
)

func benchVerify(b *testing.B, c jwtauth.IssuerConfig, m jwt.SigningMethod, key any, kid string) {
	v, _ := newVerifier(b, []jwtauth.IssuerConfig{c}, jwtauth.Options{})
	tok := sign(b, m, key, kid, claims(c.Issuer, map[string]any{"scope": "read:a write:b"}))
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyHS256(b *testing.B) {
	benchVerify(b, jwtauth.IssuerConfig{Issuer: "https://hs.example", Audiences: []string{"api"},
		Algorithms: []string{"HS256"}, HMACSecret: testSecret}, jwt.SigningMethodHS256, testSecret, "")
}

func BenchmarkVerifyEdDSA(b *testing.B) {
	k := testKeys()
	benchVerify(b, jwtauth.IssuerConfig{Issuer: "https://ed.example", Audiences: []string{"api"},
		Algorithms: []string{"EdDSA"}, Keys: map[string]crypto.PublicKey{"ed": k.ed.Public()}},
		jwt.SigningMethodEdDSA, k.ed, "ed")
}

func BenchmarkVerifyES256(b *testing.B) {
	k := testKeys()
	benchVerify(b, jwtauth.IssuerConfig{Issuer: "https://ec.example", Audiences: []string{"api"},
		Algorithms: []string{"ES256"}, Keys: map[string]crypto.PublicKey{"ec": &k.ec256.PublicKey}},
		jwt.SigningMethodES256, k.ec256, "ec")
}
